//! A real gRPC upstream for the tests: tonic serving the contract's `MessagingService`
//! (the server trait generated from `proto/notify.proto` over the crate's own message
//! types) on 127.0.0.1, recording every call and answering as the test scripts it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtpgate::notify::{NotifyRequest, NotifyResponse};
use tonic::{Request, Response, Status};

#[allow(clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/tonic/notify.v2.rs"));
}
use generated::messaging_service_server::{MessagingService, MessagingServiceServer};

/// One call as the upstream saw it.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub authorization: Option<String>,
    pub grpc_timeout: Option<String>,
    pub content_type: Option<String>,
    pub request: NotifyRequest,
}

/// How the upstream answers.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// `OK` with message codes `MSG-1`, `MSG-2`, ...
    Accept,
    Fail(tonic::Code, String),
    /// Answer only after this long (to trip the gateway's deadline).
    Delay(Duration),
    /// Refuse the calls addressed to this recipient (a fan-out's group); accept others.
    FailRecipient(String, tonic::Code),
}

#[derive(Clone)]
struct Service {
    calls: Arc<Mutex<Vec<RecordedCall>>>,
    behavior: Arc<Mutex<Behavior>>,
}

#[tonic::async_trait]
impl MessagingService for Service {
    async fn notify(
        &self,
        request: Request<NotifyRequest>,
    ) -> Result<Response<NotifyResponse>, Status> {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let call = RecordedCall {
            authorization: header("authorization"),
            grpc_timeout: header("grpc-timeout"),
            content_type: header("content-type"),
            request: request.get_ref().clone(),
        };
        let behavior = self.behavior.lock().expect("lock").clone();
        let n = {
            let mut calls = self.calls.lock().expect("lock");
            calls.push(call);
            calls.len()
        };
        match behavior {
            Behavior::Accept => Ok(Response::new(NotifyResponse {
                message_code: format!("MSG-{n}"),
            })),
            Behavior::Fail(code, message) => Err(Status::new(code, message)),
            Behavior::FailRecipient(recipient, code) => {
                let to_it = match &request.get_ref().kind {
                    Some(smtpgate::notify::notify_request::Kind::Transactional(t)) => matches!(
                        &t.target,
                        Some(smtpgate::notify::notify_transactional::Target::Users(l))
                            if l.list.contains(&recipient)
                    ),
                    _ => false,
                };
                if to_it {
                    Err(Status::new(code, format!("refused {recipient}")))
                } else {
                    Ok(Response::new(NotifyResponse {
                        message_code: format!("MSG-{n}"),
                    }))
                }
            }
            Behavior::Delay(delay) => {
                tokio::time::sleep(delay).await;
                Ok(Response::new(NotifyResponse {
                    message_code: format!("LATE-{n}"),
                }))
            }
        }
    }
}

pub struct TestUpstream {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<RecordedCall>>>,
    behavior: Arc<Mutex<Behavior>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestUpstream {
    /// h2c on 127.0.0.1:<any>.
    pub fn start(behavior: Behavior) -> Self {
        Self::start_inner(behavior, None, 0)
    }

    /// h2c on a given port of 127.0.0.1 (to come back where an earlier one was).
    pub fn start_on(behavior: Behavior, port: u16) -> Self {
        Self::start_inner(behavior, None, port)
    }

    /// h2 over TLS with the given certificate and key (PEM), ALPN h2.
    pub fn start_tls(behavior: Behavior, cert_pem: String, key_pem: String) -> Self {
        Self::start_inner(behavior, Some((cert_pem, key_pem)), 0)
    }

    /// Graceful shutdown: tonic sends GOAWAY on open connections, then exits.
    pub fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("upstream thread");
        }
    }

    fn start_inner(behavior: Behavior, tls: Option<(String, String)>, port: u16) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let behavior = Arc::new(Mutex::new(behavior));
        let service = Service {
            calls: Arc::clone(&calls),
            behavior: Arc::clone(&behavior),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("report addr");
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let mut builder = tonic::transport::Server::builder();
                if let Some((cert, key)) = tls {
                    let identity = tonic::transport::Identity::from_pem(cert, key);
                    builder = builder
                        .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                        .expect("tls config");
                }
                // gRPC servers refuse requests over 4 MiB by default; 25 MiB mail needs more.
                let server =
                    MessagingServiceServer::new(service).max_decoding_message_size(64 << 20);
                builder
                    .add_service(server)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let addr = rx.recv().expect("upstream started");
        Self {
            addr,
            calls,
            behavior,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *self.behavior.lock().expect("lock") = behavior;
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().expect("lock").clone()
    }

    /// The only call made so far (fails the test if there were more or none).
    pub fn only_call(&self) -> RecordedCall {
        let calls = self.calls();
        assert_eq!(
            calls.len(),
            1,
            "expected exactly one Notify call, got {}",
            calls.len()
        );
        calls.into_iter().next().expect("one call")
    }
}
