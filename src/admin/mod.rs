//! The operator's HTTP/1.1 listener (`--admin`): `GET /metrics` (the Prometheus text
//! format, summed from the shards' counters at scrape time), `GET /healthz` (the
//! process serves) and `GET /readyz` (every shard listens and none drains; the body
//! tells each shard's upstream channel state, which does not decide readiness: when
//! the upstream is down for every host, unready hosts would turn exact `451` replies
//! into refused connections).
//!
//! It runs on threads of its own with blocking sockets, one per request up to a cap:
//! scrapes and probes are rare, and nothing here touches a shard's thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::metrics::CONTENT_TYPE;
use crate::shard::metrics::Telemetry;

/// Requests served at once; more are closed unanswered.
const MAX_IN_FLIGHT: usize = 16;
/// A request's head must fit in this and arrive within `IO_TIMEOUT`.
const MAX_REQUEST: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves it from a thread; returns the bound address.
pub fn start(addr: SocketAddr, telemetry: Arc<Telemetry>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("smtpgate-admin".into())
        .spawn(move || accept(listener, telemetry))?;
    Ok(bound)
}

fn accept(listener: TcpListener, telemetry: Arc<Telemetry>) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of descriptors and the like: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::Relaxed);
            continue; // Dropped: closed.
        }
        let (shown, done) = (Arc::clone(&telemetry), Arc::clone(&in_flight));
        let spawned = std::thread::Builder::new()
            .name("smtpgate-admin-request".into())
            .spawn(move || {
                let _ = respond(stream, &shown);
                done.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An HTTP response, before it is written.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

fn respond(mut stream: TcpStream, telemetry: &Telemetry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let response = match read_head(&mut stream)? {
        Some(head) => route(&head, telemetry),
        None => Response::text("400 Bad Request", "bad request\n"),
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(response.body.as_bytes())?;
    stream.flush()
}

/// The request's head (request line and headers), or `None` if it is not one.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8(head).ok())
}

fn route(head: &str, telemetry: &Telemetry) -> Response {
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" {
        return Response::text("405 Method Not Allowed", "only GET\n");
    }
    match path {
        "/metrics" => Response {
            status: "200 OK",
            content_type: CONTENT_TYPE,
            body: telemetry.render(),
        },
        "/healthz" => Response::text("200 OK", "ok\n"),
        "/readyz" => readiness(telemetry),
        _ => Response::text("404 Not Found", "not found\n"),
    }
}

fn readiness(telemetry: &Telemetry) -> Response {
    let process = &telemetry.process;
    let (status, state) = if process.is_draining() {
        ("503 Service Unavailable", "draining")
    } else if process.is_ready() {
        ("200 OK", "ready")
    } else {
        ("503 Service Unavailable", "starting")
    };
    let mut body = format!("{state}\n");
    for (i, shard) in telemetry.shards.iter().enumerate() {
        let upstream = if shard.upstream_connected.get() == 1 {
            "connected"
        } else {
            "not connected"
        };
        body.push_str(&format!("shard {i}: upstream {upstream}\n"));
    }
    Response::text(status, body)
}
