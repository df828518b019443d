//! Everything one shard owns: the session settings, the STARTTLS acceptor, the upstream
//! channel, the body-buffer pool and the per-message scratch arena. Built on the shard's
//! own thread; nothing here is shared with another shard.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bumpalo::Bump;
use futures_rustls::TlsAcceptor;

use super::pool::BufferPool;
use crate::cidr::AllowList;
use crate::mime::{self, Envelope, MimeLimits};
use crate::smtp::{Reply, SessionConfig, Submission};
use crate::upstream::{Channel, Outcome, frame, verdict};

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    Submission,
    Relay,
}

/// The relay listener's settings on one shard.
pub struct Relay {
    pub session: Rc<SessionConfig>,
    pub allow: AllowList,
}

pub struct ShardContext {
    pub id: usize,
    /// STARTTLS submission: session settings and the TLS acceptor (when listening).
    pub submission: Option<(Rc<SessionConfig>, TlsAcceptor)>,
    pub relay: Option<Relay>,
    /// Deadline for client IO (reads, writes, the TLS handshake).
    pub io_timeout: Duration,
    pub channel: Channel,
    pub mime_limits: MimeLimits,
    pub bodies: BufferPool,
    scratch: RefCell<Bump>,
}

impl ShardContext {
    pub fn new(
        id: usize,
        submission: Option<(SessionConfig, TlsAcceptor)>,
        relay: Option<(SessionConfig, AllowList)>,
        channel: Channel,
        mime_limits: MimeLimits,
    ) -> Self {
        let io_timeout = submission
            .as_ref()
            .map(|(config, _)| config.limits.command_timeout)
            .or_else(|| {
                relay
                    .as_ref()
                    .map(|(config, _)| config.limits.command_timeout)
            })
            .unwrap_or(Duration::from_secs(300));
        Self {
            id,
            submission: submission.map(|(config, tls)| (Rc::new(config), tls)),
            relay: relay.map(|(config, allow)| Relay {
                session: Rc::new(config),
                allow,
            }),
            io_timeout,
            channel,
            mime_limits,
            bodies: BufferPool::new(64, 1 << 20),
            scratch: RefCell::new(Bump::new()),
        }
    }

    /// Maps a submission and forwards it; returns the reply for the client.
    pub async fn forward(&self, submission: &Submission) -> Reply {
        let started = Instant::now();
        let credentials = &submission.credentials;
        let frame = {
            let mut scratch = self.scratch.borrow_mut();
            scratch.reset();
            let envelope = Envelope {
                application: &credentials.application,
                recipients: &submission.recipients,
            };
            mime::map(envelope, &submission.body, &self.mime_limits, &scratch)
                .map(|message| frame::encode(&message, &message.deliveries[0]))
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                tracing::info!(shard = self.id, application = %credentials.application, %error, "message refused");
                return error.reply();
            }
        };
        let outcome = self.channel.notify(frame, &credentials.token).await;
        let reply = verdict::reply(&outcome);
        let elapsed_us = started.elapsed().as_micros() as u64;
        let message = MessageLog {
            shard: self.id,
            application: &credentials.application,
            recipients: submission.recipients.len(),
            bytes: submission.body.len(),
        };
        // Successes are debug: at full speed a line per message through the shared
        // stderr lock would cost more than the message itself, and the client already
        // has the message code in its 250. Refusals are worth a line.
        match &outcome {
            Outcome::Accepted { message_code } => {
                tracing::debug!(%message, %message_code, elapsed_us, "forwarded");
            }
            _ => tracing::info!(%message, %reply, elapsed_us, "not forwarded"),
        }
        reply
    }
}

/// What a log line says about a message; formatted only if the line is written.
struct MessageLog<'a> {
    shard: usize,
    application: &'a str,
    recipients: usize,
    bytes: usize,
}

impl std::fmt::Display for MessageLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shard={} application={} recipients={} bytes={}",
            self.shard, self.application, self.recipients, self.bytes
        )
    }
}
