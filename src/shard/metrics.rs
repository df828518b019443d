//! What the gateway counts: one `ShardMetrics` per shard, written only by that shard,
//! and the process-wide state the main thread keeps (readiness, drain, reloads). The
//! admin listener renders them all at scrape time (`Telemetry::render`), per shard
//! where a family is per shard. Every family is a row of `render`; a kind of label
//! value (listener, reply, status, reason) is an index into a fixed array, so counting
//! is an array access and a relaxed store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::config::ListenerKind;
use crate::metrics::{Counter, Exposition, Gauge, Histogram};
use crate::smtp::Notice;
use crate::upstream::Outcome;
use crate::upstream::verdict::CallStatus;

/// Why a connection was closed before it had a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A trusted balancer's PROXY header was missing, malformed, too long or late.
    Proxy,
    /// A relay listener's client outside loopback and the allow-list.
    RelayDenied,
    /// The implicit-TLS handshake failed.
    Tls,
}

impl Rejection {
    const ALL: [Self; 3] = [Self::Proxy, Self::RelayDenied, Self::Tls];

    fn name(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::RelayDenied => "relay_denied",
            Self::Tls => "tls_handshake",
        }
    }
}

/// Message sizes, bytes: 1 KiB to the 25 MiB default limit and beyond.
static SIZE_BOUNDS: [u64; 9] = [
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    32 << 20,
];

/// Upstream call durations, microseconds: 1 ms to 30 s.
static DURATION_BOUNDS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000,
    30_000_000,
];

/// Replies are three digits, 200 to 599.
const REPLY_BASE: u16 = 200;
const REPLIES: usize = 400;

/// One shard's counters; only that shard writes them.
#[derive(Debug)]
pub struct ShardMetrics {
    connections: [Counter; ListenerKind::ALL.len()],
    active: [Gauge; ListenerKind::ALL.len()],
    rejected: [Counter; Rejection::ALL.len()],
    messages: Box<[Counter]>,
    message_size: Histogram,
    upstream: [Counter; CallStatus::COUNT],
    upstream_duration: Histogram,
    /// Shared with the shard's upstream channel, which sets it.
    pub upstream_connected: Arc<Gauge>,
    auth_failures: Counter,
    tls_failures: Counter,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self {
            connections: Default::default(),
            active: Default::default(),
            rejected: Default::default(),
            messages: (0..REPLIES).map(|_| Counter::default()).collect(),
            message_size: Histogram::new(&SIZE_BOUNDS),
            upstream: Default::default(),
            upstream_duration: Histogram::new(&DURATION_BOUNDS),
            upstream_connected: Arc::default(),
            auth_failures: Counter::default(),
            tls_failures: Counter::default(),
        }
    }
}

/// Keeps a connection counted as active while it lives.
pub struct Active<'a>(&'a Gauge);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl ShardMetrics {
    pub fn connection(&self, kind: ListenerKind) -> Active<'_> {
        self.connections[kind.index()].inc();
        let active = &self.active[kind.index()];
        active.add(1);
        Active(active)
    }

    pub fn rejected(&self, why: Rejection) {
        self.rejected[why as usize].inc();
    }

    pub fn tls_failure(&self) {
        self.tls_failures.inc();
    }

    pub fn notice(&self, notice: Notice) {
        match notice {
            Notice::Replied(code) | Notice::Refused(code) => {
                if let Some(counter) = code
                    .checked_sub(REPLY_BASE)
                    .and_then(|i| self.messages.get(usize::from(i)))
                {
                    counter.inc();
                }
            }
            Notice::AuthFailed => self.auth_failures.inc(),
        }
    }

    pub fn message_size(&self, bytes: usize) {
        self.message_size.observe(bytes as u64);
    }

    pub fn upstream_call(&self, outcome: &Outcome, micros: u64) {
        self.upstream[outcome.status().index()].inc();
        self.upstream_duration.observe(micros);
    }
}

/// Set by the main thread; read by the admin listener.
#[derive(Debug, Default)]
pub struct ProcessState {
    ready: AtomicBool,
    draining: AtomicBool,
    reloads_ok: Counter,
    reloads_error: Counter,
}

impl ProcessState {
    pub fn set_ready(&self) {
        self.ready.store(true, Relaxed);
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Ready: every shard listens and none drains.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Relaxed) && !self.is_draining()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// Only the signal thread counts reloads.
    pub fn reloaded(&self, ok: bool) {
        if ok {
            self.reloads_ok.inc();
        } else {
            self.reloads_error.inc();
        }
    }
}

/// Everything the admin listener shows.
#[derive(Debug)]
pub struct Telemetry {
    pub shards: Vec<ShardMetrics>,
    pub process: ProcessState,
}

impl Telemetry {
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| ShardMetrics::default())
                .collect(),
            process: ProcessState::default(),
        }
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        let shard_names: Vec<String> = (0..self.shards.len()).map(|i| i.to_string()).collect();
        let shards = || self.shards.iter().zip(&shard_names);

        out.family(
            "smtpgate_connections_total",
            "counter",
            "Connections accepted, by listener.",
        );
        for (m, shard) in shards() {
            for kind in ListenerKind::ALL {
                let labels = [("shard", shard.as_str()), ("listener", kind.name())];
                out.sample(
                    "smtpgate_connections_total",
                    &labels,
                    m.connections[kind.index()].get(),
                );
            }
        }
        out.family(
            "smtpgate_connections_active",
            "gauge",
            "Connections open now, by listener.",
        );
        for (m, shard) in shards() {
            for kind in ListenerKind::ALL {
                let labels = [("shard", shard.as_str()), ("listener", kind.name())];
                out.sample(
                    "smtpgate_connections_active",
                    &labels,
                    m.active[kind.index()].get(),
                );
            }
        }
        out.family(
            "smtpgate_connections_rejected_total",
            "counter",
            "Connections closed before a session, by reason.",
        );
        for (m, shard) in shards() {
            for why in Rejection::ALL {
                let labels = [("shard", shard.as_str()), ("reason", why.name())];
                out.sample(
                    "smtpgate_connections_rejected_total",
                    &labels,
                    m.rejected[why as usize].get(),
                );
            }
        }
        out.family(
            "smtpgate_messages_total",
            "counter",
            "Final replies to messages (after DATA, or a limit refusing MAIL/RCPT), by reply code.",
        );
        for (m, shard) in shards() {
            for (i, counter) in m.messages.iter().enumerate() {
                // Codes never used are left out (a counter absent is zero); 250 always
                // appears, so a fresh gateway's scrape shows the family.
                let code = REPLY_BASE + i as u16;
                if counter.get() > 0 || code == 250 {
                    let code = code.to_string();
                    let labels = [("shard", shard.as_str()), ("reply", code.as_str())];
                    out.sample("smtpgate_messages_total", &labels, counter.get());
                }
            }
        }
        out.family(
            "smtpgate_message_size_bytes",
            "histogram",
            "Sizes of the messages forwarded (after dot-unstuffing).",
        );
        for (m, shard) in shards() {
            out.histogram(
                "smtpgate_message_size_bytes",
                &[("shard", shard)],
                &m.message_size,
                1.0,
            );
        }
        out.family(
            "smtpgate_upstream_requests_total",
            "counter",
            "Upstream Notify calls, by gRPC status (or CONNECT_ERROR, LOCAL_DEADLINE).",
        );
        for (m, shard) in shards() {
            for (i, counter) in m.upstream.iter().enumerate() {
                if counter.get() > 0 || i == 0 {
                    let status = CallStatus::from_index(i).name();
                    let labels = [("shard", shard.as_str()), ("status", status)];
                    out.sample("smtpgate_upstream_requests_total", &labels, counter.get());
                }
            }
        }
        out.family(
            "smtpgate_upstream_duration_seconds",
            "histogram",
            "Upstream Notify call durations.",
        );
        for (m, shard) in shards() {
            out.histogram(
                "smtpgate_upstream_duration_seconds",
                &[("shard", shard)],
                &m.upstream_duration,
                1e6,
            );
        }
        out.family(
            "smtpgate_upstream_connected",
            "gauge",
            "Whether the shard's HTTP/2 channel to the upstream is connected (1) or not (0).",
        );
        for (m, shard) in shards() {
            out.sample(
                "smtpgate_upstream_connected",
                &[("shard", shard)],
                m.upstream_connected.get(),
            );
        }
        out.family(
            "smtpgate_auth_failures_total",
            "counter",
            "AUTH exchanges that did not authenticate.",
        );
        for (m, shard) in shards() {
            out.sample(
                "smtpgate_auth_failures_total",
                &[("shard", shard)],
                m.auth_failures.get(),
            );
        }
        out.family(
            "smtpgate_tls_handshake_failures_total",
            "counter",
            "Server TLS handshakes that failed (STARTTLS and implicit TLS).",
        );
        for (m, shard) in shards() {
            out.sample(
                "smtpgate_tls_handshake_failures_total",
                &[("shard", shard)],
                m.tls_failures.get(),
            );
        }
        let process = &self.process;
        out.family(
            "smtpgate_reloads_total",
            "counter",
            "Reloads (SIGHUP) of the certificate and the relay token, by result.",
        );
        out.sample(
            "smtpgate_reloads_total",
            &[("result", "ok")],
            process.reloads_ok.get(),
        );
        out.sample(
            "smtpgate_reloads_total",
            &[("result", "error")],
            process.reloads_error.get(),
        );
        out.family("smtpgate_draining", "gauge", "1 while the gateway drains.");
        out.sample("smtpgate_draining", &[], u8::from(process.is_draining()));
        out.family("smtpgate_build_info", "gauge", "The running build.");
        out.sample(
            "smtpgate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        out.finish()
    }
}
