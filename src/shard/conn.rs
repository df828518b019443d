//! The connection driver: pumps bytes between a socket and a sans-IO `Session`, runs
//! the TLS handshake when the session asks for it, forwards submissions and enforces
//! the session's deadline with a timer. It makes no protocol decisions of its own.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::context::ShardContext;
use super::listener::Listener;
use super::message_log::{Origin, Record};
use super::metrics::Rejection;
use super::proxied;
use crate::proxy::Source;
use crate::smtp::{Event, Notice, Session, reply};
use crate::tls::Io;

type ServerIo = Io<futures_rustls::server::TlsStream<TcpStream>>;

/// The read buffer starts small, so an idle connection costs little memory, doubles
/// while reads fill it (bulk DATA) up to `MAX_READ_BUFFER`, and shrinks back once the
/// connection goes quiet. Its maximum holds the longest line a session accepts (an
/// AUTH line, 12288 octets) with room to spare.
const MIN_READ_BUFFER: usize = 1024;
const MAX_READ_BUFFER: usize = 64 * 1024;

/// Bytes read from the socket and not yet consumed by the session.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    fn new() -> Self {
        Self {
            buf: vec![0; MIN_READ_BUFFER],
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: compacts unconsumed bytes to the front, and grows the buffer
    /// when a line or a burst does not fit.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() && self.buf.len() < MAX_READ_BUFFER {
            self.buf
                .resize((self.buf.len() * 2).min(MAX_READ_BUFFER), 0);
        }
        &mut self.buf[self.end..]
    }

    /// After a read of `n` bytes that did (`filled`) or did not fill the room it had: a
    /// full read means more is coming, so the next read gets a bigger buffer; a small
    /// read leaving nothing pending in a large buffer means the burst is over, so the
    /// memory goes back.
    fn adapt(&mut self, n: usize, filled: bool) {
        if filled && self.buf.len() < MAX_READ_BUFFER {
            let grown = (self.buf.len() * 2).min(MAX_READ_BUFFER);
            self.buf.resize(grown, 0);
        } else if self.start == self.end
            && n <= MIN_READ_BUFFER
            && self.buf.len() > 4 * MIN_READ_BUFFER
        {
            self.buf = vec![0; MIN_READ_BUFFER];
            self.start = 0;
            self.end = 0;
        }
    }
}

pub async fn serve(mut tcp: TcpStream, ctx: Rc<ShardContext>, listener: Rc<Listener>) {
    let _open = ctx.lifecycle.open();
    let metrics = ctx.metrics();
    let _active = metrics.connection(listener.kind);
    let Ok(peer) = tcp.peer_addr() else {
        return; // Gone before we looked.
    };
    // The client: the peer, or whom a trusted balancer's PROXY header names.
    let client = if ctx.proxy.trusted.contains(peer.ip()) {
        match ctx
            .lifecycle
            .until_stopped(proxied::read_header(&mut tcp, &ctx.proxy))
            .await
        {
            Some(Ok(Source::Client(client))) => client,
            Some(Ok(Source::Peer)) => peer,
            Some(Err(refusal)) => {
                metrics.rejected(Rejection::Proxy);
                tracing::info!(shard = ctx.id, %peer, listener = %listener.kind, %refusal, "connection refused");
                return;
            }
            None => return,
        }
    } else {
        peer
    };
    // The caps: a connection over one gets 421 (after the handshake on implicit TLS, so
    // the client can read it), its session never begins.
    let admitted = ctx.admission.admit(client.ip());
    let mut io: ServerIo = Io::Plain(tcp);
    if listener.handshake_first() {
        match ctx.lifecycle.until_stopped(handshake(&mut io, &ctx)).await {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                metrics.rejected(Rejection::Tls);
                tracing::debug!(shard = ctx.id, %client, listener = %listener.kind, %error, "TLS handshake failed");
                return;
            }
            None => return,
        }
    }
    let (mut session, _admitted) = match admitted {
        Ok(admitted) => {
            let session = Session::accept(listener.session(), Instant::now(), client.ip());
            if session.is_closed() {
                metrics.rejected(Rejection::RelayDenied);
                tracing::info!(shard = ctx.id, %client, listener = %listener.kind, "connection refused");
            }
            (session, Some(admitted))
        }
        Err(cap) => {
            metrics.rejected(cap);
            tracing::info!(shard = ctx.id, %client, listener = %listener.kind, reason = ?cap, "connection refused");
            let refusal = &reply::TOO_MANY_CONNECTIONS;
            (
                Session::refused(listener.session(), Instant::now(), refusal),
                None,
            )
        }
    };
    let mut input = Input::new();
    let origin = Origin {
        session: ctx.next_session(),
        client,
        listener: listener.kind,
    };
    let driven = {
        let driving = drive(&mut io, &mut session, &mut input, &ctx, origin);
        ctx.lifecycle.until_stopped(driving).await
    };
    match driven {
        Some(Ok(())) => {}
        Some(Err(error)) => {
            tracing::debug!(shard = ctx.id, %client, listener = %listener.kind, %error, "connection ended");
        }
        None => {
            // The drain's deadline: the session's last words, briefly.
            session.shut_down_now();
            let farewell = async { Ok(write_all(&mut io, session.transmit()).await) };
            let _ = glommio::timer::timeout(FAREWELL_TIMEOUT, farewell).await;
        }
    }
    let _ = io.close().await;
}

/// How long the `421` at the drain's deadline may take to write.
const FAREWELL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What ended a wait for the client.
enum Woken {
    Read(std::io::Result<usize>),
    Deadline,
    Drain,
}

async fn drive(
    io: &mut ServerIo,
    session: &mut Session,
    input: &mut Input,
    ctx: &ShardContext,
    origin: Origin,
) -> std::io::Result<()> {
    // Whether the session was told of the drain (it is told once).
    let mut told_of_drain = false;
    loop {
        for notice in session.take_notices() {
            ctx.metrics().notice(notice);
            if let Notice::Refused(reply) = notice {
                // Refused by the session itself; forwarded messages log in `forward`.
                Record {
                    shard: ctx.id,
                    origin,
                    application: session.application().unwrap_or_default(),
                    recipients: 0,
                    size: 0,
                    upstream_status: "NONE",
                    message_code: "",
                    reply,
                    upstream: Duration::ZERO,
                    total: Duration::ZERO,
                    calls: 0,
                }
                .log(None);
            }
        }
        if !session.transmit().is_empty() {
            // A client that stops reading must not pin the connection: writes get the
            // same deadline as reads.
            let write = async { Ok(write_all(io, session.transmit()).await) };
            match glommio::timer::timeout(ctx.io_timeout, write).await {
                Ok(written) => written?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "write timed out",
                    ));
                }
            }
            session.transmitted();
        }
        if session.is_closed() {
            return Ok(());
        }
        match session.poll_event() {
            Some(Event::Submit(submission)) => {
                let reply = ctx.forward(&submission, origin).await;
                session.handle_verdict(Instant::now(), &reply);
                ctx.bodies.put(submission.body);
                // Pipelined commands may already be waiting behind the message.
                offer(session, input);
                continue;
            }
            Some(Event::StartTls) => {
                starttls(io, session, ctx).await?;
                continue;
            }
            None => {}
        }
        if session.wants_body_buffer() {
            session.provide_body_buffer(ctx.bodies.take());
        }
        let spare = input.spare();
        let room = spare.len();
        if spare.is_empty() {
            // Cannot happen: the buffer's maximum exceeds the longest line; never spin.
            return Err(std::io::Error::other("read buffer full"));
        }
        let deadline = session.poll_timeout();
        let read = async {
            match deadline {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    let read = async { Ok(io.read(spare).await) };
                    match glommio::timer::timeout(wait, read).await {
                        Ok(read) => Woken::Read(read),
                        Err(_) => Woken::Deadline,
                    }
                }
                None => Woken::Read(io.read(spare).await),
            }
        };
        let woken = if told_of_drain {
            read.await
        } else {
            let drain = async {
                ctx.lifecycle.drain_begun().await;
                Woken::Drain
            };
            futures_lite::future::or(read, drain).await
        };
        match woken {
            Woken::Deadline => session.handle_timeout(Instant::now()),
            Woken::Drain => {
                told_of_drain = true;
                session.shut_down();
            }
            Woken::Read(read) => match read? {
                0 => return Ok(()),
                n => {
                    input.end += n;
                    offer(session, input);
                    input.adapt(n, n == room);
                }
            },
        }
    }
}

async fn write_all(io: &mut ServerIo, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

fn offer(session: &mut Session, input: &mut Input) {
    let used = session.handle_bytes(Instant::now(), input.pending());
    input.consume(used);
}

/// STARTTLS: the `220` is already sent; the session guaranteed nothing was pipelined
/// behind the command, so the socket's next bytes are the ClientHello.
async fn starttls(
    io: &mut ServerIo,
    session: &mut Session,
    ctx: &ShardContext,
) -> std::io::Result<()> {
    handshake(io, ctx).await?;
    session.handle_tls_established(Instant::now());
    Ok(())
}

/// The server TLS handshake on the plain socket in `io`, within the IO deadline.
async fn handshake(io: &mut ServerIo, ctx: &ShardContext) -> std::io::Result<()> {
    let Some(acceptor) = ctx.tls.borrow().clone() else {
        return Err(std::io::Error::other("TLS without a TLS configuration"));
    };
    let Some(tcp) = io.take_plain() else {
        return Err(std::io::Error::other("TLS on a TLS socket"));
    };
    let handshake = async { Ok(acceptor.accept(tcp).await) };
    match glommio::timer::timeout(ctx.io_timeout, handshake).await {
        Ok(Ok(tls)) => {
            *io = Io::Tls(Box::new(tls));
            Ok(())
        }
        Ok(Err(error)) => {
            ctx.metrics().tls_failure();
            Err(error)
        }
        Err(_) => {
            ctx.metrics().tls_failure();
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a read of `n` bytes into the spare room.
    fn read(input: &mut Input, n: usize) -> bool {
        let room = input.spare().len();
        let n = n.min(room);
        input.end += n;
        n == room
    }

    #[test]
    fn grows_under_bursts_and_shrinks_when_quiet() {
        let mut input = Input::new();
        assert_eq!(input.buf.len(), MIN_READ_BUFFER);
        for _ in 0..10 {
            let filled = read(&mut input, usize::MAX);
            let n = input.end - input.start;
            input.consume(n);
            input.adapt(n, filled);
        }
        assert_eq!(
            input.buf.len(),
            MAX_READ_BUFFER,
            "bulk reads grew it to the maximum"
        );
        read(&mut input, 6);
        input.consume(6);
        input.adapt(6, false);
        assert_eq!(
            input.buf.len(),
            MIN_READ_BUFFER,
            "a quiet command gives the memory back"
        );
    }

    #[test]
    fn an_unfinished_line_gets_room_up_to_the_maximum() {
        let mut input = Input::new();
        // An AUTH line of 12 KiB arrives in pieces and is not consumed until complete.
        let mut total = 0;
        while total < 12 * 1024 {
            total += input.spare().len().min(12 * 1024 - total);
            input.end = total;
        }
        assert_eq!(input.pending().len(), 12 * 1024);
        assert!(input.buf.len() >= 12 * 1024 && input.buf.len() <= MAX_READ_BUFFER);
        // Shrinking never drops pending bytes.
        input.adapt(10, false);
        assert_eq!(input.pending().len(), 12 * 1024);
    }
}
