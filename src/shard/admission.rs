//! Connection caps: at most `--max-connections` sessions in the process and
//! `--max-connections-per-ip` from one client address (after PROXY; loopback exempt).
//! A connection over either cap gets `421 4.7.0` and is closed; those already open are
//! untouched.
//!
//! The counts are process-wide, so shards share them: one atomic for the total and a
//! striped table for addresses, each touched once when a connection opens and once when
//! it closes (never per message).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::metrics::Rejection;
use crate::cidr::canonical;

/// Stripes of the per-address table: connections from different addresses rarely
/// contend for a lock.
const STRIPES: usize = 64;

pub struct Admission {
    max_total: usize,
    /// Zero: no per-address cap.
    max_per_ip: usize,
    open: AtomicUsize,
    per_ip: [Mutex<HashMap<IpAddr, usize>>; STRIPES],
}

/// A connection admitted; dropping it frees its places.
pub struct Admitted {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut table = self.admission.stripe(ip);
            if let Some(n) = table.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    table.remove(&ip);
                }
            }
        }
    }
}

impl Admission {
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            open: AtomicUsize::new(0),
            per_ip: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    fn stripe(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        let hash = match ip {
            IpAddr::V4(v4) => u32::from(v4) as usize,
            IpAddr::V6(v6) => (u128::from(v6) ^ (u128::from(v6) >> 64)) as usize,
        };
        // A poisoned stripe only means a panic elsewhere held it; the counts are whole.
        self.per_ip[hash.wrapping_mul(0x9E37_79B9) % STRIPES]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for a connection from `ip`, or says which cap refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Rejection> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_total {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Rejection::TooManyConnections);
        }
        let ip = canonical(ip);
        let counted = (self.max_per_ip > 0 && !ip.is_loopback()).then_some(ip);
        if let Some(ip) = counted {
            let mut table = self.stripe(ip);
            let n = table.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(table);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(Rejection::TooManyFromAddress);
            }
            *n += 1;
        }
        Ok(Admitted {
            admission: Arc::clone(self),
            ip: counted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn caps_refuse_the_next_connection_and_free_on_close() {
        let admission = Arc::new(Admission::new(3, 2));
        let a1 = admission.admit(ip("198.51.100.7")).expect("first");
        let _a2 = admission.admit(ip("198.51.100.7")).expect("second");
        assert!(matches!(
            admission.admit(ip("198.51.100.7")),
            Err(Rejection::TooManyFromAddress)
        ));
        assert!(
            matches!(
                admission.admit(ip("::ffff:198.51.100.7")),
                Err(Rejection::TooManyFromAddress)
            ),
            "the mapped form is the same address"
        );
        let _b = admission
            .admit(ip("198.51.100.8"))
            .expect("another address");
        assert!(matches!(
            admission.admit(ip("203.0.113.1")),
            Err(Rejection::TooManyConnections)
        ));
        drop(a1);
        let _again = admission
            .admit(ip("198.51.100.7"))
            .expect("a place was freed");
    }

    #[test]
    fn loopback_is_exempt_from_the_per_address_cap() {
        let admission = Arc::new(Admission::new(100, 1));
        let held: Vec<_> = (0..10)
            .map(|_| admission.admit(ip("127.0.0.1")).expect("loopback"))
            .collect();
        assert_eq!(held.len(), 10);
        let _one = admission.admit(ip("2001:db8::1")).expect("one");
        assert!(admission.admit(ip("2001:db8::1")).is_err());
    }
}
