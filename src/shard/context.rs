//! Everything one shard owns besides its listeners: the TLS acceptor, the upstream
//! channel, the body-buffer pool and the per-message scratch arena. Built on the shard's
//! own thread; nothing here is shared with another shard.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bumpalo::Bump;
use futures_rustls::TlsAcceptor;

use super::lifecycle::Lifecycle;
use super::metrics::{ShardMetrics, Telemetry};
use super::pool::BufferPool;
use crate::config::{Config, ProxyConfig};
use crate::mime::{self, Envelope, MimeLimits};
use crate::notify::Outgoing;
use crate::smtp::{Reply, Submission, TokenOwner};
use crate::upstream::{Channel, Outcome, fanout, verdict};

pub struct ShardContext {
    pub id: usize,
    /// Every shard's counters; this shard writes only its own (`metrics`).
    telemetry: Arc<Telemetry>,
    /// Open connections and the drain.
    pub lifecycle: Rc<Lifecycle>,
    /// Which peers begin with a PROXY header.
    pub proxy: ProxyConfig,
    /// The server side of TLS (STARTTLS and implicit TLS), when a listener uses it;
    /// replaced on reload (a handshake under way keeps the one it started with).
    pub tls: RefCell<Option<TlsAcceptor>>,
    /// Deadline for client IO (reads, writes, the TLS handshake).
    pub io_timeout: Duration,
    pub channel: Channel,
    pub mime_limits: MimeLimits,
    /// Upstream streams in flight for one fan-out message.
    pub fanout_limit: usize,
    pub bodies: BufferPool,
    scratch: RefCell<Bump>,
}

impl ShardContext {
    /// Shard `id`'s context: its own TLS acceptor and upstream channel, its counters in
    /// `telemetry`, the rest from the configuration.
    pub fn new(
        id: usize,
        config: &Config,
        telemetry: Arc<Telemetry>,
        tls: Option<TlsAcceptor>,
        channel: Channel,
    ) -> Self {
        Self {
            id,
            telemetry,
            lifecycle: Rc::new(Lifecycle::default()),
            proxy: config.proxy.clone(),
            tls: RefCell::new(tls),
            io_timeout: config.limits.command_timeout,
            channel,
            mime_limits: config.mime_limits,
            fanout_limit: config.fanout_concurrency,
            bodies: BufferPool::new(64, 1 << 20),
            scratch: RefCell::new(Bump::new()),
        }
    }

    /// This shard's counters.
    pub fn metrics(&self) -> &ShardMetrics {
        &self.telemetry.shards[self.id]
    }

    /// Maps a submission and forwards it (one upstream call, or a fan-out); returns
    /// the reply for the client.
    pub async fn forward(&self, submission: &Submission) -> Reply {
        let started = Instant::now();
        let credentials = &submission.credentials;
        let mapped = {
            let mut scratch = self.scratch.borrow_mut();
            scratch.reset();
            let envelope = Envelope {
                application: &credentials.application,
                recipients: &submission.recipients,
                subaccount: credentials.subaccount,
                received: SystemTime::now(),
            };
            mime::map(envelope, &submission.body, &self.mime_limits, &scratch)
        };
        let message = match mapped {
            Ok(message) => message,
            Err(error) => {
                tracing::info!(shard = self.id, application = %credentials.application, %error, "message refused");
                return error.reply();
            }
        };
        let calls = fanout::notify_all(
            &self.channel,
            &message,
            &credentials.token,
            self.fanout_limit,
        )
        .await;
        let metrics = self.metrics();
        metrics.message_size(submission.body.len());
        for (outcome, elapsed) in &calls {
            metrics.upstream_call(outcome, elapsed.as_micros() as u64);
        }
        let outcomes: Vec<Outcome> = calls.into_iter().map(|(outcome, _)| outcome).collect();
        let owner = credentials.owner;
        let reply = match &outcomes[..] {
            [only] => verdict::reply(only, owner),
            many => {
                let calls: Vec<(&Outcome, usize)> = many
                    .iter()
                    .zip(&message.deliveries)
                    .map(|(outcome, delivery)| (outcome, delivery.recipients.len()))
                    .collect();
                verdict::fanout_reply(&calls, owner)
            }
        };
        if owner == TokenOwner::Gateway && outcomes.iter().any(verdict::is_credentials_refusal) {
            tracing::error!(
                shard = self.id,
                application = %credentials.application,
                %reply,
                "the upstream refused the relay's own token: fix --relay-token-file and reload (SIGHUP); clients keep their messages meanwhile"
            );
        }
        let log = MessageLog {
            shard: self.id,
            application: &credentials.application,
            recipients: message.recipient_count(),
            calls: outcomes.len(),
            bytes: submission.body.len(),
            elapsed_us: started.elapsed().as_micros() as u64,
        };
        let all_accepted = outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Accepted { .. }));
        // Successes are debug: at full speed a line per message through the shared
        // stderr lock would cost more than the message itself, and the client already
        // has the message code in its 250. Refusals are worth a line, and so are the
        // SendCloud email ids a SendCloud user correlates webhooks with.
        if message.email_ids {
            let ids = EmailIds {
                message: &message,
                outcomes: &outcomes,
            };
            tracing::info!(%log, %reply, email_ids = %ids, "forwarded");
        } else if all_accepted {
            tracing::debug!(%log, %reply, "forwarded");
        } else {
            tracing::info!(%log, %reply, "not forwarded");
        }
        reply
    }
}

/// What a log line says about a message; formatted only if the line is written.
struct MessageLog<'a> {
    shard: usize,
    application: &'a str,
    recipients: usize,
    calls: usize,
    bytes: usize,
    elapsed_us: u64,
}

impl std::fmt::Display for MessageLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shard={} application={} recipients={} calls={} bytes={} elapsed_us={}",
            self.shard, self.application, self.recipients, self.calls, self.bytes, self.elapsed_us
        )
    }
}

/// SendCloud's per-recipient email ids, `<message code><index>$<address>` (index in the
/// message's recipient list, from 0, not zero-padded), for the calls accepted.
struct EmailIds<'a> {
    message: &'a Outgoing<'a>,
    outcomes: &'a [Outcome],
}

impl std::fmt::Display for EmailIds<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (delivery, outcome) in self.message.deliveries.iter().zip(self.outcomes) {
            let Outcome::Accepted { message_code } = outcome else {
                continue;
            };
            for (i, address) in delivery.recipients.iter().enumerate() {
                let separator = if first { "" } else { "," };
                first = false;
                write!(
                    f,
                    "{separator}{message_code}{}${address}",
                    delivery.position(i)
                )?;
            }
        }
        Ok(())
    }
}
