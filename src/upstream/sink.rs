//! An upstream that implements the Notify contract: a real gRPC server (h2 on glommio)
//! that decodes each request and answers through a handler. `--dev` runs one in-process
//! and prints every request as JSON, so the gateway's production path (channel, framing,
//! verdicts) is what runs in development too. `smtpgate-sink` serves the same code and
//! injects connection faults through [`Connections`]: GOAWAY, TCP reset, or close with
//! calls in flight.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::rc::Rc;
use std::sync::mpsc;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt as _;

use bytes::{Bytes, BytesMut};
use glommio::net::{TcpListener, TcpStream};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::grpc::{self, Code, Status};
use crate::notify::{NotifyRequest, NotifyResponse, json};

/// Largest request the sink accepts: above the gateway's 25 MiB message limit plus
/// protobuf overhead (gRPC servers default to 4 MiB, which would refuse big mail).
pub const MAX_REQUEST: usize = 64 << 20;

/// What a handler sees of one call.
pub struct Call<'a> {
    /// The `authorization` header value after `Token `, if present.
    pub token: Option<&'a str>,
    pub request: NotifyRequest,
    /// Size of the framed request message.
    pub bytes: usize,
}

/// A handler's answer: a message code or a refusal, sent after `delay`.
pub struct Answer {
    pub result: Result<String, Status>,
    pub delay: Option<std::time::Duration>,
}

impl From<Result<String, Status>> for Answer {
    fn from(result: Result<String, Status>) -> Self {
        Self {
            result,
            delay: None,
        }
    }
}

/// Answers each call.
pub type Handler = Rc<dyn Fn(Call<'_>) -> Answer>;

/// How a fault cuts a sink's open connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// GOAWAY: the calls in flight are answered, no new stream is taken, then the
    /// connection closes (a server restarting gracefully).
    GoAway,
    /// TCP reset (`SO_LINGER` 0): the calls in flight are never answered.
    Reset,
    /// Closed with a FIN, calls in flight unanswered (a process that exits).
    Close,
}

/// The open connections of one executor's sink, so that a fault can cut them all.
#[derive(Default)]
pub struct Connections {
    next: Cell<u64>,
    open: RefCell<BTreeMap<u64, UnboundedSender<Cut>>>,
}

impl Connections {
    /// Cuts every open connection; returns how many there were.
    pub fn cut_all(&self, cut: Cut) -> usize {
        let open = self.open.borrow();
        open.values()
            .filter(|connection| connection.unbounded_send(cut).is_ok())
            .count()
    }

    fn register(self: &Rc<Self>) -> (Registered, UnboundedReceiver<Cut>) {
        let id = self.next.get();
        self.next.set(id + 1);
        let (tx, rx) = unbounded();
        self.open.borrow_mut().insert(id, tx);
        let registered = Registered {
            connections: Rc::clone(self),
            id,
        };
        (registered, rx)
    }
}

/// A connection's place in [`Connections`], given up when the connection ends.
struct Registered {
    connections: Rc<Connections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.open.borrow_mut().remove(&self.id);
    }
}

/// Accepts connections until the listener fails.
pub async fn serve(listener: TcpListener, method: String, handler: Handler) {
    let connections = Rc::new(Connections::default());
    serve_until(
        &listener,
        method.into(),
        handler,
        &connections,
        std::future::pending(),
    )
    .await;
}

/// Accepts connections into `connections` until `until` completes (the connections
/// already open go on).
pub async fn serve_until(
    listener: &TcpListener,
    method: Rc<str>,
    handler: Handler,
    connections: &Rc<Connections>,
    until: impl Future<Output = ()>,
) {
    let mut until = std::pin::pin!(until);
    loop {
        let accept = async { Some(listener.accept().await) };
        let stop = async {
            (&mut until).await;
            None
        };
        let Some(accepted) = futures_lite::future::or(accept, stop).await else {
            return;
        };
        match accepted {
            Ok(tcp) => {
                let _ = tcp.set_nodelay(true);
                let (method, handler) = (Rc::clone(&method), Rc::clone(&handler));
                let (registered, cuts) = connections.register();
                glommio::spawn_local(async move {
                    if let Err(error) = serve_connection(tcp, method, handler, cuts).await {
                        tracing::debug!(%error, "sink connection ended");
                    }
                    drop(registered);
                })
                .detach();
            }
            Err(error) => {
                tracing::warn!(%error, "sink accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    method: Rc<str>,
    handler: Handler,
    mut cuts: UnboundedReceiver<Cut>,
) -> Result<(), h2::Error> {
    let fd = tcp.as_raw_fd();
    let mut connection = h2::server::Builder::new()
        .initial_window_size(4 << 20)
        .initial_connection_window_size(16 << 20)
        .max_concurrent_streams(1024)
        .handshake::<_, Bytes>(tcp.compat())
        .await?;
    let mut watching = true;
    loop {
        let stream = async { Ok(connection.accept().await) };
        let cut = async {
            if watching {
                Err(cuts.next().await)
            } else {
                std::future::pending().await
            }
        };
        match futures_lite::future::or(stream, cut).await {
            Ok(None) => return Ok(()),
            Ok(Some(stream)) => {
                let (request, respond) = stream?;
                let (method, handler) = (Rc::clone(&method), Rc::clone(&handler));
                glommio::spawn_local(async move {
                    let answer = handle(request, &method, &handler).await;
                    if let Some(delay) = answer.delay {
                        glommio::timer::sleep(delay).await;
                    }
                    if let Err(error) = respond_with(respond, answer.result) {
                        tracing::debug!(%error, "sink could not respond");
                    }
                })
                .detach();
            }
            // Nobody can cut this connection any more.
            Err(None) => watching = false,
            Err(Some(Cut::GoAway)) => connection.graceful_shutdown(),
            Err(Some(Cut::Reset)) => {
                // SO_LINGER 0 makes the close below (when `connection` drops) a TCP reset.
                // The crate's second `unsafe`: glommio's stream offers only `AsRawFd`.
                // SAFETY: `fd` is the descriptor of the socket `connection` owns (taken
                // before the handshake); `connection` lives until this function returns,
                // past every use of `socket`, so the descriptor is open and not reused.
                #[allow(unsafe_code)]
                let socket = unsafe { BorrowedFd::borrow_raw(fd) };
                let linger =
                    socket2::SockRef::from(&socket).set_linger(Some(std::time::Duration::ZERO));
                if let Err(error) = linger {
                    tracing::warn!(%error, "sink could not set SO_LINGER");
                }
                return Ok(());
            }
            Err(Some(Cut::Close)) => return Ok(()),
        }
    }
}

async fn handle(request: Request<RecvStream>, method: &str, handler: &Handler) -> Answer {
    let (parts, mut body) = request.into_parts();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Err(Status::new(Code::CANCELLED, e.to_string())).into(),
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        if buffer.len() + chunk.len() > MAX_REQUEST + 5 {
            let refusal = Status::new(
                Code::RESOURCE_EXHAUSTED,
                "request message larger than the sink's limit",
            );
            return Err(refusal).into();
        }
        buffer.extend_from_slice(&chunk);
    }
    if parts.uri.path() != method {
        let refusal = Status::new(
            Code::UNIMPLEMENTED,
            format!("unknown method {}", parts.uri.path()),
        );
        return Err(refusal).into();
    }
    let request = match grpc::decode::<NotifyRequest>(&buffer, MAX_REQUEST) {
        Ok(request) => request,
        Err(e) => return Err(Status::new(Code::INVALID_ARGUMENT, e.to_string())).into(),
    };
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token "));
    handler(Call {
        token,
        request,
        bytes: buffer.len(),
    })
}

fn respond_with(
    mut respond: SendResponse<Bytes>,
    result: Result<String, Status>,
) -> Result<(), h2::Error> {
    let mut head = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap_or_default();
    match result {
        Ok(message_code) => {
            let mut stream = respond.send_response(head, false)?;
            stream.send_data(grpc::encode(&NotifyResponse { message_code }), false)?;
            stream.send_trailers(status_headers(&Status::new(Code::OK, "")))?;
        }
        Err(status) => {
            // Trailers-Only: the status rides in the response headers.
            head.headers_mut().extend(status_headers(&status));
            respond.send_response(head, true)?;
        }
    }
    Ok(())
}

fn status_headers(status: &Status) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", HeaderValue::from(status.code.0));
    if !status.message.is_empty()
        && let Ok(message) = HeaderValue::from_str(&grpc::percent_encode(&status.message))
    {
        headers.insert("grpc-message", message);
    }
    headers
}

/// Prints one call as one JSON line on stdout: its answer's message code, the
/// authorization (the token redacted) and the request in the upstream docs' JSON form,
/// `meta_data` and placeholders included.
pub fn print_call(call: &Call<'_>, message_code: &str) {
    let line = serde_json::json!({
        "message_code": message_code,
        "authorization": call.token.map(|_| "Token <redacted>"),
        "request": json::request(&call.request),
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Starts the `--dev` sink on its own thread and executor, on `127.0.0.1:<any>`: every
/// request is printed as one JSON line on stdout (the token redacted) and accepted.
pub fn spawn_dev(method: String) -> std::io::Result<SocketAddr> {
    let (ready, bound) = mpsc::channel();
    std::thread::Builder::new()
        .name("smtpgate-dev-sink".into())
        .spawn(move || {
            let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .name("dev-sink")
                .io_memory(512 << 10)
                .make();
            let executor = match executor {
                Ok(executor) => executor,
                Err(error) => {
                    let _ = ready.send(Err(std::io::Error::other(error.to_string())));
                    return;
                }
            };
            executor.run(async move {
                let listener = match TcpListener::bind("127.0.0.1:0") {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = ready.send(Err(std::io::Error::other(error.to_string())));
                        return;
                    }
                };
                let _ = ready.send(
                    listener
                        .local_addr()
                        .map_err(|e| std::io::Error::other(e.to_string())),
                );
                let counter = std::cell::Cell::new(0u64);
                let handler: Handler = Rc::new(move |call: Call<'_>| {
                    counter.set(counter.get() + 1);
                    let message_code = format!("DEV-{:08}", counter.get());
                    print_call(&call, &message_code);
                    Ok(message_code).into()
                });
                serve(listener, method, handler).await;
            });
        })?;
    bound
        .recv()
        .map_err(|_| std::io::Error::other("dev sink thread exited"))?
}
