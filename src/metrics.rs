//! Metric primitives and the Prometheus text exposition format (version 0.0.4).
//!
//! Counting must not slow the message path, so every counter, gauge and histogram here
//! has exactly one writer: the shard (or the one main-thread task) that owns it. A
//! write is a relaxed load and store on a cache line no other core writes (no `lock`
//! prefix, no lock); readers (the admin listener, at scrape time) see each value as of
//! some recent moment, which is all a scrape needs. Sums over shards happen when
//! scraped, never when counted.
//!
//! The text format is written here rather than through a client library: those keep
//! labelled families behind a lock and a map, which is exactly what the hot path must
//! not touch, and the format itself is a few lines (checked by `promtool` in the
//! tests).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A monotonically increasing count with a single writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    /// Only the owning thread calls this (see the module's doc).
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down, with a single writer.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed) + n, Relaxed);
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Observations counted into fixed buckets (upper bounds, in the histogram's integer
/// unit), with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, plus `+Inf`; not cumulative (the exposition cumulates).
    buckets: Box<[Counter]>,
    sum: Counter,
    count: Counter,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| Counter::default()).collect(),
            sum: Counter::default(),
            count: Counter::default(),
        }
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].inc();
        self.sum.add(value);
        self.count.inc();
    }
}

/// A metric family being written: its `# HELP` and `# TYPE` lines once, then samples.
pub struct Exposition {
    text: String,
}

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Default for Exposition {
    fn default() -> Self {
        Self {
            text: String::with_capacity(16 * 1024),
        }
    }
}

impl Exposition {
    /// Starts a family; `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A histogram's samples: cumulative `_bucket`s with `le`, then `_sum` and `_count`;
    /// values are divided by `scale` (1e6 for microseconds shown as seconds).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram, scale: f64) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, count) in h.buckets.iter().enumerate() {
            cumulative += count.get();
            let le = match h.bounds.get(i) {
                Some(&bound) => format_float(bound as f64 / scale),
                None => "+Inf".to_owned(),
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(
            &format!("{name}_sum"),
            labels,
            format_float(h.sum.get() as f64 / scale),
        );
        self.sample(&format!("{name}_count"), labels, h.count.get());
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn format_float(value: f64) -> String {
    // Integral values print without a fraction; others as Rust prints them (Go's
    // parser, Prometheus's, reads both).
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_as_the_text_format() {
        let requests = Counter::default();
        requests.inc();
        requests.add(2);
        let active = Gauge::default();
        active.add(3);
        active.add(-1);
        static BOUNDS: [u64; 3] = [1_000, 10_000, 100_000];
        let latency = Histogram::new(&BOUNDS);
        for us in [500, 1_000, 5_000, 2_000_000] {
            latency.observe(us);
        }
        let mut text = Exposition::default();
        text.family("x_requests_total", "counter", "Requests.");
        text.sample(
            "x_requests_total",
            &[("shard", "0"), ("status", "OK")],
            requests.get(),
        );
        text.family("x_active", "gauge", "Active.");
        text.sample("x_active", &[], active.get());
        text.family("x_seconds", "histogram", "Latency.");
        text.histogram("x_seconds", &[("shard", "0")], &latency, 1e6);
        assert_eq!(
            text.finish(),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n\
             x_requests_total{shard=\"0\",status=\"OK\"} 3\n\
             # HELP x_active Active.\n# TYPE x_active gauge\nx_active 2\n\
             # HELP x_seconds Latency.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{shard=\"0\",le=\"0.001\"} 2\n\
             x_seconds_bucket{shard=\"0\",le=\"0.01\"} 3\n\
             x_seconds_bucket{shard=\"0\",le=\"0.1\"} 3\n\
             x_seconds_bucket{shard=\"0\",le=\"+Inf\"} 4\n\
             x_seconds_sum{shard=\"0\"} 2.0065\n\
             x_seconds_count{shard=\"0\"} 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut text = Exposition::default();
        text.sample("x", &[("v", "a\"b\\c\nd")], 1);
        assert_eq!(text.finish(), "x{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    }
}
