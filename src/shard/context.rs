//! Everything one shard owns besides its listeners: the TLS acceptor, the upstream
//! channel, the body-buffer pool and the per-message scratch arena. Built on the shard's
//! own thread; nothing here is shared with another shard.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bumpalo::Bump;
use futures_rustls::TlsAcceptor;

use super::admission::Admission;
use super::lifecycle::Lifecycle;
use super::message_log::{self, EmailIds, Origin, Record};
use super::metrics::{ShardMetrics, Telemetry};
use super::pool::BufferPool;
use crate::config::{Config, ProxyConfig};
use crate::mime::{self, Envelope, MimeLimits};
use crate::smtp::{Reply, Submission, TokenOwner};
use crate::upstream::{Channel, Outcome, fanout, verdict};

pub struct ShardContext {
    pub id: usize,
    /// Every shard's counters; this shard writes only its own (`metrics`).
    telemetry: Arc<Telemetry>,
    /// The process's connection caps.
    pub admission: Arc<Admission>,
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
    /// The number the next connection gets (its `session` in logs).
    sessions: Cell<u64>,
    scratch: RefCell<Bump>,
}

impl ShardContext {
    /// Shard `id`'s context: its own TLS acceptor and upstream channel, its counters in
    /// `telemetry`, the rest from the configuration.
    pub fn new(
        id: usize,
        config: &Config,
        telemetry: Arc<Telemetry>,
        admission: Arc<Admission>,
        tls: Option<TlsAcceptor>,
        channel: Channel,
    ) -> Self {
        Self {
            id,
            telemetry,
            admission,
            lifecycle: Rc::new(Lifecycle::default()),
            proxy: config.proxy.clone(),
            tls: RefCell::new(tls),
            io_timeout: config.limits.command_timeout,
            channel,
            mime_limits: config.mime_limits,
            fanout_limit: config.fanout_concurrency,
            bodies: BufferPool::new(64, 1 << 20),
            sessions: Cell::new(0),
            scratch: RefCell::new(Bump::new()),
        }
    }

    /// A number for a new connection, unique on this shard.
    pub fn next_session(&self) -> u64 {
        let n = self.sessions.get() + 1;
        self.sessions.set(n);
        n
    }

    /// This shard's counters.
    pub fn metrics(&self) -> &ShardMetrics {
        &self.telemetry.shards[self.id]
    }

    /// Maps a submission and forwards it (one upstream call, or a fan-out); returns
    /// the reply for the client.
    pub async fn forward(&self, submission: &Submission, origin: Origin) -> Reply {
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
                let reply = error.reply();
                Record {
                    shard: self.id,
                    origin,
                    application: &credentials.application,
                    recipients: submission.recipients.len(),
                    size: submission.body.len(),
                    upstream_status: "NONE",
                    message_code: "",
                    reply: reply.code(),
                    upstream: Duration::ZERO,
                    total: started.elapsed(),
                    calls: 0,
                }
                .log(None);
                tracing::debug!(shard = self.id, %error, "message refused");
                return reply;
            }
        };
        let upstream_started = Instant::now();
        let metrics = self.metrics();
        let observe = |outcome: &Outcome, elapsed: Duration| {
            metrics.upstream_call(outcome, elapsed.as_micros() as u64);
        };
        let outcomes = fanout::notify_all(
            &self.channel,
            &message,
            &credentials.token,
            self.fanout_limit,
            &observe,
        )
        .await;
        let upstream_elapsed = upstream_started.elapsed();
        metrics.message_size(submission.body.len());
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
        let record = Record {
            shard: self.id,
            origin,
            application: &credentials.application,
            recipients: message.recipient_count(),
            size: submission.body.len(),
            upstream_status: message_log::summary_status(&outcomes),
            message_code: message_log::first_code(&outcomes),
            reply: reply.code(),
            upstream: upstream_elapsed,
            total: started.elapsed(),
            calls: outcomes.len(),
        };
        let email_ids = message.email_ids.then_some(EmailIds {
            message: &message,
            outcomes: &outcomes,
        });
        record.log(email_ids);
        reply
    }
}
