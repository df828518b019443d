//! Per-cell measurements: latency histograms (hdrhistogram, microseconds), reply codes,
//! errors and bytes. Each worker thread keeps its own and they are merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest value recorded: one hour in microseconds (anything slower is clamped).
const MAX_US: u64 = 3_600_000_000;

pub struct CellStats {
    /// From the first byte of MAIL to the final reply (from the *intended* start in
    /// `--rate` mode, which corrects coordinated omission).
    pub latency: Histogram<u64>,
    /// Connect + TLS + AUTH, per connection.
    pub setup: Histogram<u64>,
    pub replies: BTreeMap<u16, u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub attempted: u64,
    /// Bytes of the messages that were answered (whatever the answer).
    pub message_bytes: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

impl CellStats {
    pub fn new() -> Self {
        Self {
            latency: histogram(),
            setup: histogram(),
            replies: BTreeMap::new(),
            errors: 0,
            first_error: None,
            attempted: 0,
            message_bytes: 0,
        }
    }

    pub fn record_reply(&mut self, code: u16, latency: Duration, bytes: usize) {
        self.attempted += 1;
        self.message_bytes += bytes as u64;
        *self.replies.entry(code).or_default() += 1;
        let _ = self.latency.record(micros(latency));
    }

    pub fn record_setup(&mut self, took: Duration) {
        let _ = self.setup.record(micros(took));
    }

    /// A connection-level failure (no reply to count).
    pub fn record_error(&mut self, error: String, attempted: bool) {
        self.errors += 1;
        if attempted {
            self.attempted += 1;
        }
        self.first_error.get_or_insert(error);
    }

    pub fn ok(&self) -> u64 {
        self.replies
            .iter()
            .filter(|(code, _)| (200..300).contains(*code))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn merge(&mut self, other: CellStats) {
        let _ = self.latency.add(&other.latency);
        let _ = self.setup.add(&other.setup);
        for (code, n) in other.replies {
            *self.replies.entry(code).or_default() += n;
        }
        self.errors += other.errors;
        self.attempted += other.attempted;
        self.message_bytes += other.message_bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = CellStats::new();
        a.record_reply(250, Duration::from_micros(100), 10);
        a.record_reply(451, Duration::from_millis(2), 10);
        let mut b = CellStats::new();
        b.record_reply(250, Duration::from_millis(1), 10);
        b.record_error("boom".into(), true);
        a.merge(b);
        assert_eq!(
            (a.attempted, a.ok(), a.errors, a.message_bytes),
            (4, 2, 1, 30)
        );
        assert_eq!(a.replies[&250], 2);
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.first_error.as_deref(), Some("boom"));
        assert!(a.latency.max() >= 1999);
    }
}
