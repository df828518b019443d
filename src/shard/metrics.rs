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
use crate::smtp::{Ending, Notice};
use crate::upstream::Outcome;
use crate::upstream::verdict::CallStatus;

/// Why a connection was refused: before it had a session, or by its session. A
/// counter row each, in this order (`ALL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A trusted balancer's PROXY header was missing, malformed, too long or late.
    Proxy,
    /// A relay listener's client outside loopback and the allow-list.
    RelayDenied,
    /// The implicit-TLS handshake failed.
    Tls,
    /// `--max-connections` reached.
    TooManyConnections,
    /// `--max-connections-per-ip` reached for the client's address.
    TooManyFromAddress,
    /// The session's ends (see [`Ending`]).
    TalkedFirst,
    AuthFailures,
    Timeout,
    Errors,
    Protocol,
}

impl From<Ending> for Rejection {
    fn from(ending: Ending) -> Self {
        match ending {
            Ending::TalkedFirst => Self::TalkedFirst,
            Ending::AuthFailures => Self::AuthFailures,
            Ending::Timeout => Self::Timeout,
            Ending::Errors => Self::Errors,
            Ending::Protocol => Self::Protocol,
        }
    }
}

impl Rejection {
    const ALL: [Self; 10] = [
        Self::Proxy,
        Self::RelayDenied,
        Self::Tls,
        Self::TooManyConnections,
        Self::TooManyFromAddress,
        Self::TalkedFirst,
        Self::AuthFailures,
        Self::Timeout,
        Self::Errors,
        Self::Protocol,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::RelayDenied => "relay_denied",
            Self::Tls => "tls_handshake",
            Self::TooManyConnections => "max_connections",
            Self::TooManyFromAddress => "max_connections_per_ip",
            Self::TalkedFirst => "greet_pause",
            Self::AuthFailures => "max_auth_failures",
            Self::Timeout => "timeout",
            Self::Errors => "errors",
            Self::Protocol => "protocol",
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
            Notice::Ended(why) => self.rejected(why.into()),
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
        let names: Vec<String> = (0..self.shards.len()).map(|i| i.to_string()).collect();
        let shards: Vec<(&ShardMetrics, &str)> = self
            .shards
            .iter()
            .zip(names.iter().map(String::as_str))
            .collect();
        // One sample per shard and label value (`values`: the label's values and their
        // counters' places); where `sparse`, zero rows are left out but the first value.
        let labelled = |out: &mut Exposition,
                        (name, kind, help): (&str, &str, &str),
                        label: &str,
                        values: &[(&str, usize)],
                        get: &dyn Fn(&ShardMetrics, usize) -> i64,
                        sparse: bool| {
            out.family(name, kind, help);
            for &(m, shard) in &shards {
                for (position, &(value, i)) in values.iter().enumerate() {
                    let n = get(m, i);
                    if n != 0 || !sparse || position == 0 {
                        out.sample(name, &[("shard", shard), (label, value)], n);
                    }
                }
            }
        };
        let single = |out: &mut Exposition,
                      (name, kind, help): (&str, &str, &str),
                      get: &dyn Fn(&ShardMetrics) -> i64| {
            out.family(name, kind, help);
            for &(m, shard) in &shards {
                out.sample(name, &[("shard", shard)], get(m));
            }
        };
        let histogram = |out: &mut Exposition,
                         (name, help): (&str, &str),
                         get: &dyn Fn(&ShardMetrics) -> &Histogram,
                         scale: f64| {
            out.family(name, "histogram", help);
            for &(m, shard) in &shards {
                out.histogram(name, &[("shard", shard)], get(m), scale);
            }
        };
        let count = |c: &Counter| c.get() as i64;

        let listeners: Vec<(&str, usize)> = ListenerKind::ALL
            .iter()
            .map(|k| (k.name(), k.index()))
            .collect();
        labelled(
            &mut out,
            (
                "smtpgate_connections_total",
                "counter",
                "Connections accepted, by listener.",
            ),
            "listener",
            &listeners,
            &|m, i| count(&m.connections[i]),
            false,
        );
        labelled(
            &mut out,
            (
                "smtpgate_connections_active",
                "gauge",
                "Connections open now, by listener.",
            ),
            "listener",
            &listeners,
            &|m, i| m.active[i].get(),
            false,
        );
        let reasons: Vec<(&str, usize)> = Rejection::ALL
            .iter()
            .map(|r| (r.name(), *r as usize))
            .collect();
        labelled(
            &mut out,
            (
                "smtpgate_connections_rejected_total",
                "counter",
                "Connections closed before a session, by reason.",
            ),
            "reason",
            &reasons,
            &|m, i| count(&m.rejected[i]),
            false,
        );
        // Codes never used are left out (an absent counter is zero); 250 comes first and
        // always, so a fresh gateway's scrape shows the family.
        let codes: Vec<String> = (0..REPLIES)
            .map(|i| (REPLY_BASE as usize + i).to_string())
            .collect();
        let replies: Vec<(&str, usize)> = std::iter::once(250 - REPLY_BASE as usize)
            .chain((0..REPLIES).filter(|&i| i != 250 - REPLY_BASE as usize))
            .map(|i| (codes[i].as_str(), i))
            .collect();
        labelled(
            &mut out,
            (
                "smtpgate_messages_total",
                "counter",
                "Final replies to messages (after DATA, or a limit refusing MAIL/RCPT), by reply code.",
            ),
            "reply",
            &replies,
            &|m, i| count(&m.messages[i]),
            true,
        );
        histogram(
            &mut out,
            (
                "smtpgate_message_size_bytes",
                "Sizes of the messages forwarded (after dot-unstuffing).",
            ),
            &|m| &m.message_size,
            1.0,
        );
        let statuses: Vec<(&str, usize)> = (0..CallStatus::COUNT)
            .map(|i| (CallStatus::from_index(i).name(), i))
            .collect();
        labelled(
            &mut out,
            (
                "smtpgate_upstream_requests_total",
                "counter",
                "Upstream Notify calls, by gRPC status (or CONNECT_ERROR, LOCAL_DEADLINE).",
            ),
            "status",
            &statuses,
            &|m, i| count(&m.upstream[i]),
            true,
        );
        histogram(
            &mut out,
            (
                "smtpgate_upstream_duration_seconds",
                "Upstream Notify call durations.",
            ),
            &|m| &m.upstream_duration,
            1e6,
        );
        single(
            &mut out,
            (
                "smtpgate_upstream_connected",
                "gauge",
                "Whether the shard's HTTP/2 channel to the upstream is connected (1) or not (0).",
            ),
            &|m| m.upstream_connected.get(),
        );
        single(
            &mut out,
            (
                "smtpgate_auth_failures_total",
                "counter",
                "AUTH exchanges that did not authenticate.",
            ),
            &|m| count(&m.auth_failures),
        );
        single(
            &mut out,
            (
                "smtpgate_tls_handshake_failures_total",
                "counter",
                "Server TLS handshakes that failed (STARTTLS and implicit TLS).",
            ),
            &|m| count(&m.tls_failures),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_its_own_row_and_name() {
        let names: std::collections::BTreeSet<&str> =
            Rejection::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), Rejection::ALL.len());
        for (row, rejection) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*rejection as usize, row, "{rejection:?}");
        }
    }
}
