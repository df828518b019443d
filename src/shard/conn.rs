//! The connection driver: pumps bytes between a socket and a sans-IO `Session`, runs
//! the TLS handshake when the session asks for it, forwards submissions and enforces
//! the session's deadline with a timer. It makes no protocol decisions of its own.

use std::rc::Rc;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::context::{ListenerKind, ShardContext};
use crate::smtp::{Event, Session, reply};
use crate::tls::Io;

type ServerIo = Io<futures_rustls::server::TlsStream<TcpStream>>;

/// Read buffer size: holds the longest line a session accepts (an AUTH line, 12288
/// octets) with room to spare, and reads DATA in large chunks.
const READ_BUFFER: usize = 32 * 1024;

/// Bytes read from the socket and not yet consumed by the session.
struct Input {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Input {
    fn new() -> Self {
        Self {
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
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

    /// Room to read into, compacting unconsumed bytes to the front first.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }
}

pub async fn serve(tcp: TcpStream, ctx: Rc<ShardContext>, kind: ListenerKind) {
    let peer = tcp.peer_addr().ok();
    let mut io: ServerIo = Io::Plain(tcp);
    let config = match (kind, &ctx.submission, &ctx.relay) {
        (ListenerKind::Submission, Some((config, _)), _) => Rc::clone(config),
        (ListenerKind::Relay, _, Some(relay)) => {
            if !peer.is_some_and(|peer| relay.allow.allows(peer.ip())) {
                tracing::info!(shard = ctx.id, ?peer, "relay access denied");
                let mut refusal = Vec::new();
                reply::RELAY_ACCESS_DENIED.write_to(&mut refusal);
                let _ = write_all(&mut io, &refusal).await;
                let _ = io.close().await;
                return;
            }
            Rc::clone(&relay.session)
        }
        _ => return,
    };
    let mut session = Session::new(config, Instant::now());
    let mut input = Input::new();
    let result = drive(&mut io, &mut session, &mut input, &ctx).await;
    if let Err(error) = result {
        tracing::debug!(shard = ctx.id, ?peer, %error, "connection ended");
    }
    let _ = io.close().await;
}

async fn drive(
    io: &mut ServerIo,
    session: &mut Session,
    input: &mut Input,
    ctx: &ShardContext,
) -> std::io::Result<()> {
    loop {
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
                let reply = ctx.forward(&submission).await;
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
        if spare.is_empty() {
            // Cannot happen with a buffer larger than the longest line; never spin.
            return Err(std::io::Error::other("read buffer full"));
        }
        let read = match session.poll_timeout() {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                let read = async { Ok(io.read(spare).await) };
                match glommio::timer::timeout(wait, read).await {
                    Ok(read) => read,
                    Err(_) => {
                        session.handle_timeout(Instant::now());
                        continue;
                    }
                }
            }
            None => io.read(spare).await,
        };
        match read? {
            0 => return Ok(()),
            n => {
                input.end += n;
                offer(session, input);
            }
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
    let Some((_, acceptor)) = &ctx.submission else {
        return Err(std::io::Error::other(
            "STARTTLS without a TLS configuration",
        ));
    };
    let Some(tcp) = io.take_plain() else {
        return Err(std::io::Error::other("STARTTLS on a TLS socket"));
    };
    let handshake = async { Ok(acceptor.accept(tcp).await) };
    match glommio::timer::timeout(ctx.io_timeout, handshake).await {
        Ok(Ok(tls)) => {
            *io = Io::Tls(Box::new(tls));
            session.handle_tls_established(Instant::now());
            Ok(())
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}
