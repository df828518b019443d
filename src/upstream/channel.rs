//! The per-shard persistent HTTP/2 channel to the upstream: dialled lazily, shared by
//! every connection of the shard (multiplexed streams), re-dialled with exponential
//! backoff after a failure or GOAWAY, and with a deadline on every call (a local timer
//! plus the `grpc-timeout` header so the upstream knows it too).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_rustls::TlsConnector;
use glommio::net::TcpStream;
use h2::client::SendRequest;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, StatusCode};
use rustls_pki_types::ServerName;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::coalesce::Coalesce;
use super::grpc::{self, Code, Status};
use super::target::Target;
use super::verdict::{Outcome, TransportError};
use crate::metrics::Gauge;
use crate::notify::NotifyResponse;
use crate::smtp::Token;
use crate::tls::Io;

/// Re-dial pauses after a failed dial, doubling from the minimum to the maximum. The
/// maximum stays short: while it lasts every message gets `451`, so a recovered
/// upstream is used again within half a second (two dials a second per shard at most
/// while it is down).
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Large windows so a 25 MiB request and its tiny response are never stalled by flow
/// control on a fast link.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// Writes under h2 are gathered up to this much until it flushes (see `coalesce`).
const COALESCE_BUFFER: usize = 64 * 1024;

/// How to reach and call the upstream; one per shard.
#[derive(Clone)]
pub struct ChannelConfig {
    pub target: Target,
    pub method: PathAndQuery,
    pub timeout: Duration,
    /// `Some` for `https://` targets.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// Set to 1 while connected, 0 otherwise (the shard's `upstream_connected`).
    pub connected: Arc<Gauge>,
    /// A PING this often; a connection whose PONG does not come within it is dropped
    /// (a silent peer: a middlebox lost its state). `None`: no keepalive.
    pub keepalive: Option<Duration>,
}

enum State {
    Idle,
    Ready {
        sender: SendRequest<Bytes>,
        generation: u64,
    },
    /// The last dial failed; calls fail fast until `until`.
    Backoff {
        until: Instant,
    },
}

struct Shared {
    state: State,
    generation: u64,
    backoff: Duration,
    connected: Arc<Gauge>,
}

impl Shared {
    /// Every change of state goes through here, so the gauge follows it.
    fn set_state(&mut self, state: State) {
        self.connected
            .set(i64::from(matches!(state, State::Ready { .. })));
        self.state = state;
    }
}

pub struct Channel {
    config: ChannelConfig,
    shared: Rc<RefCell<Shared>>,
    dial_lock: glommio::sync::Semaphore,
    user_agent: HeaderValue,
    timeout_header: HeaderValue,
    /// The request URI, the same for every call.
    uri: http::Uri,
}

type UpstreamIo = Io<futures_rustls::client::TlsStream<TcpStream>>;

impl Channel {
    pub fn new(config: ChannelConfig) -> Self {
        let connected = Arc::clone(&config.connected);
        Self {
            timeout_header: grpc::timeout_header(config.timeout),
            uri: config.target.uri(&config.method),
            user_agent: HeaderValue::from_static(concat!("smtpgate/", env!("CARGO_PKG_VERSION"))),
            config,
            shared: Rc::new(RefCell::new(Shared {
                state: State::Idle,
                generation: 0,
                backoff: BACKOFF_MIN,
                connected,
            })),
            dial_lock: glommio::sync::Semaphore::new(1),
        }
    }

    /// One unary Notify call (`frame`: the encoded request) under the configured
    /// deadline.
    pub async fn notify(&self, frame: Bytes, token: &Token) -> Outcome {
        let Ok(authorization) = HeaderValue::from_str(&format!("Token {}", token.expose())) else {
            // A token that cannot be a header value cannot be valid either.
            return Outcome::Refused(Status::new(
                Code::UNAUTHENTICATED,
                "token is not a valid header value",
            ));
        };
        let call = async {
            let mut outcome = self.call(frame.clone(), &authorization).await;
            if let Err(Retry) = &outcome {
                // The upstream refused the stream without processing it (GOAWAY):
                // safe to send once more on a fresh connection.
                outcome = self.call(frame, &authorization).await;
            }
            Ok(outcome.unwrap_or_else(|Retry| {
                Outcome::Transport(TransportError::Http2("stream refused by upstream".into()))
            }))
        };
        match glommio::timer::timeout(self.config.timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Transport(TransportError::DeadlineExceeded),
        }
    }

    async fn call(&self, body: Bytes, authorization: &HeaderValue) -> Result<Outcome, Retry> {
        let sender = match self.sender().await {
            Ok(sender) => sender,
            Err(error) => return Ok(Outcome::Transport(error)),
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .body(())
            .unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("grpc-timeout", self.timeout_header.clone());
        headers.insert("user-agent", self.user_agent.clone());
        let mut authorization = authorization.clone();
        authorization.set_sensitive(true);
        headers.insert("authorization", authorization);

        let mut sender = match sender.ready().await {
            Ok(sender) => sender,
            Err(error) => return self.connection_failed(&error),
        };
        let (response, mut stream) = match sender.send_request(request, false) {
            Ok(pair) => pair,
            Err(error) => return self.connection_failed(&error),
        };
        if let Err(error) = stream.send_data(body, true) {
            return self.connection_failed(&error);
        }
        let response = match response.await {
            Ok(response) => response,
            Err(error) => return self.connection_failed(&error),
        };
        Ok(read_response(response).await)
    }

    /// Maps an h2 error before any response: a refused stream may be retried; any other
    /// error drops the connection so the next call re-dials.
    fn connection_failed(&self, error: &h2::Error) -> Result<Outcome, Retry> {
        if error.reason() == Some(h2::Reason::REFUSED_STREAM) || error.is_go_away() {
            self.reset();
            return Err(Retry);
        }
        if !error.is_reset() || error.is_io() {
            self.reset();
        }
        Ok(Outcome::Transport(TransportError::Http2(error.to_string())))
    }

    fn reset(&self) {
        let mut shared = self.shared.borrow_mut();
        if matches!(shared.state, State::Ready { .. }) {
            shared.set_state(State::Idle);
        }
    }

    /// The current connection's sender, dialling if there is none.
    async fn sender(&self) -> Result<SendRequest<Bytes>, TransportError> {
        if let Some(sender) = self.ready_sender()? {
            return Ok(sender);
        }
        // One dial at a time per shard; the calls that waited reuse its result.
        let _permit = self
            .dial_lock
            .acquire_permit(1)
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        if let Some(sender) = self.ready_sender()? {
            return Ok(sender);
        }
        match self.dial().await {
            Ok(sender) => Ok(sender),
            Err(error) => {
                let mut shared = self.shared.borrow_mut();
                let until = Instant::now() + shared.backoff;
                shared.set_state(State::Backoff { until });
                shared.backoff = (shared.backoff * 2).min(BACKOFF_MAX);
                Err(error)
            }
        }
    }

    fn ready_sender(&self) -> Result<Option<SendRequest<Bytes>>, TransportError> {
        let shared = self.shared.borrow();
        match &shared.state {
            State::Ready { sender, .. } => Ok(Some(sender.clone())),
            State::Backoff { until } if Instant::now() < *until => Err(TransportError::Backoff),
            _ => Ok(None),
        }
    }

    async fn dial(&self) -> Result<SendRequest<Bytes>, TransportError> {
        let target = &self.config.target;
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        // glommio leaves Nagle on; a unary call is latency-bound.
        tcp.set_nodelay(true)
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let io: UpstreamIo = match &self.config.tls {
            None => Io::Plain(tcp),
            Some((config, name)) => {
                let tls = TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| TransportError::Tls(e.to_string()))?;
                let alpn = tls.get_ref().1.alpn_protocol();
                if alpn.is_some_and(|p| p != b"h2") {
                    return Err(TransportError::Tls("upstream did not negotiate h2".into()));
                }
                Io::Tls(Box::new(tls))
            }
        };
        let (sender, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(Coalesce::new(io, COALESCE_BUFFER).compat())
            .await
            .map_err(|e| TransportError::Http2(e.to_string()))?;

        let generation = {
            let mut shared = self.shared.borrow_mut();
            shared.generation += 1;
            shared.backoff = BACKOFF_MIN;
            let generation = shared.generation;
            shared.set_state(State::Ready {
                sender: sender.clone(),
                generation,
            });
            shared.generation
        };
        let shared = Rc::clone(&self.shared);
        let keepalive = connection.ping_pong().zip(self.config.keepalive);
        glommio::spawn_local(async move {
            // The connection runs until it ends, or until a PING goes unanswered.
            let running = async { connection.await.map_err(|e| e.to_string()) };
            let watched = async {
                match keepalive {
                    Some((pings, every)) => keep_alive(pings, every).await,
                    None => futures_lite::future::pending().await,
                }
            };
            if let Err(error) = futures_lite::future::or(running, watched).await {
                tracing::warn!(%error, "upstream connection closed");
            }
            // Forget this connection unless a newer one already replaced it.
            let mut shared = shared.borrow_mut();
            if matches!(shared.state, State::Ready { generation: g, .. } if g == generation) {
                shared.set_state(State::Idle);
            }
        })
        .detach();
        Ok(sender)
    }
}

/// PINGs every `every`; returns (ending the connection) when a PONG is late.
async fn keep_alive(mut pings: h2::PingPong, every: Duration) -> Result<(), String> {
    loop {
        glommio::timer::sleep(every).await;
        let ping = async { Ok(pings.ping(h2::Ping::opaque()).await) };
        match glommio::timer::timeout(every, ping).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(error)) => return Err(format!("PING failed: {error}")),
            Err(_) => {
                return Err(format!(
                    "no PONG within {every:?}: dropping a silent connection"
                ));
            }
        }
    }
}

/// The stream was refused before processing; the call may be retried.
struct Retry;

/// Reads a unary response: status from the headers (Trailers-Only) or the trailers.
async fn read_response(response: http::Response<h2::RecvStream>) -> Outcome {
    let (parts, mut body) = response.into_parts();
    if let Some(status) = Status::from_headers(&parts.headers) {
        return refused_or_bad(status);
    }
    if parts.status != StatusCode::OK {
        let code = Code::from_http(parts.status);
        return Outcome::Refused(Status::new(
            code,
            format!("upstream answered HTTP {}", parts.status),
        ));
    }
    let mut message = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return Outcome::Transport(TransportError::Http2(error.to_string())),
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        if message.len() + chunk.len() > grpc::MAX_RESPONSE + 5 {
            return Outcome::Transport(TransportError::BadResponse("response too large".into()));
        }
        message.extend_from_slice(&chunk);
    }
    let trailers = match body.trailers().await {
        Ok(trailers) => trailers,
        Err(error) => return Outcome::Transport(TransportError::Http2(error.to_string())),
    };
    let Some(status) = trailers.as_ref().and_then(Status::from_headers) else {
        return Outcome::Transport(TransportError::BadResponse("no grpc-status".into()));
    };
    if status.code != Code::OK {
        return Outcome::Refused(status);
    }
    match grpc::decode::<NotifyResponse>(&message, grpc::MAX_RESPONSE) {
        Ok(response) => Outcome::Accepted {
            message_code: response.message_code,
        },
        Err(error) => Outcome::Transport(TransportError::BadResponse(error.to_string())),
    }
}

/// A status in the response headers ends the call: an error, or an OK with no message.
fn refused_or_bad(status: Status) -> Outcome {
    if status.code == Code::OK {
        Outcome::Transport(TransportError::BadResponse(
            "OK without a response message".into(),
        ))
    } else {
        Outcome::Refused(status)
    }
}
