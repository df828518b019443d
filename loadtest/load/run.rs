//! Runs one cell of the sweep: worker connections spread over executor threads, each
//! sending the cell's message until the count or the duration is reached, closed-loop
//! (as fast as replies come) or open-loop at a fixed total rate.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use crate::client::{Connection, Target};
use crate::message::{self, Prepared};
use crate::stats::CellStats;

#[derive(Clone, Copy, Debug)]
pub enum Bound {
    Duration(Duration),
    /// Messages per cell.
    Count(u64),
}

/// Everything a cell's workers share.
pub struct Plan {
    pub target: Target,
    pub concurrency: usize,
    pub threads: usize,
    pub bound: Bound,
    /// Total messages per second across all connections (open loop).
    pub rate: Option<f64>,
    /// Messages per connection before reconnecting; `None` keeps it for the whole cell.
    pub messages_per_conn: Option<u64>,
    pub seed: u64,
}

/// Live counters for the progress line.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    started: AtomicU64,
}

/// Runs the cell; returns merged statistics and the wall time it took.
pub fn run_cell(
    plan: Arc<Plan>,
    cell: usize,
    prepared: Arc<Prepared>,
    progress: Arc<Progress>,
) -> (CellStats, Duration) {
    let started = Instant::now();
    let threads = plan.threads.min(plan.concurrency).max(1);
    let deadline = match plan.bound {
        Bound::Duration(d) => Some(started + d),
        Bound::Count(_) => None,
    };
    let next_thread = Arc::new(AtomicU64::new(0));
    let (plan2, prepared2, progress2) = (
        Arc::clone(&plan),
        Arc::clone(&prepared),
        Arc::clone(&progress),
    );
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(threads))
        .name("smtpgate-load")
        .io_memory(512 << 10)
        .on_all_shards(move || {
            let thread = next_thread.fetch_add(1, Ordering::Relaxed) as usize;
            async move {
                let workers: Vec<_> = (0..plan2.concurrency)
                    .filter(|w| w % threads == thread)
                    .map(|w| {
                        let shared = Shared {
                            plan: Arc::clone(&plan2),
                            prepared: Arc::clone(&prepared2),
                            progress: Arc::clone(&progress2),
                            cell,
                            deadline,
                        };
                        glommio::spawn_local(worker(w, Rc::new(shared)))
                    })
                    .collect();
                let mut stats = CellStats::new();
                for worker in workers {
                    stats.merge(worker.await);
                }
                stats
            }
        });
    let mut total = CellStats::new();
    match handles {
        Ok(handles) => {
            for result in handles.join_all() {
                match result {
                    Ok(stats) => total.merge(stats),
                    Err(e) => total.record_error(format!("worker thread failed: {e}"), false),
                }
            }
        }
        Err(e) => total.record_error(format!("cannot start worker threads: {e}"), false),
    }
    (total, started.elapsed())
}

struct Shared {
    plan: Arc<Plan>,
    prepared: Arc<Prepared>,
    progress: Arc<Progress>,
    cell: usize,
    deadline: Option<Instant>,
}

impl Shared {
    /// Claims the next message slot, or `None` when the cell is over.
    fn claim(&self) -> Option<()> {
        match self.plan.bound {
            Bound::Count(total) => {
                (self.progress.started.fetch_add(1, Ordering::Relaxed) < total).then_some(())
            }
            Bound::Duration(_) => (Instant::now() < self.deadline?).then_some(()),
        }
    }
}

async fn worker(index: usize, shared: Rc<Shared>) -> CellStats {
    let plan = &shared.plan;
    let mut stats = CellStats::new();
    let mut connection: Option<Connection> = None;
    let mut on_connection = 0u64;
    // Open loop: this worker's share of the rate, offset so workers interleave.
    let schedule = plan.rate.map(|rate| {
        let interval = Duration::from_secs_f64(plan.concurrency as f64 / rate);
        let offset = Duration::from_secs_f64(index as f64 / rate);
        (interval, offset)
    });
    let mut n = 0u64;
    // Where this worker's schedule starts: when its first session is up, so that the
    // handshakes of a cell's start are not charged to its first messages.
    let mut origin: Option<Instant> = None;
    while shared.claim().is_some() {
        // The session is set up before the message's clock starts: message latency runs
        // from MAIL to the final reply, and connect+TLS+AUTH is measured on its own.
        if connection.is_none() {
            let began = Instant::now();
            match Connection::open(&plan.target).await {
                Ok(opened) => {
                    stats.record_setup(began.elapsed());
                    connection = Some(opened);
                    on_connection = 0;
                }
                Err(error) => {
                    stats.record_error(error.to_string(), true);
                    shared.progress.errors.fetch_add(1, Ordering::Relaxed);
                    // Do not spin against a server that refuses connections.
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let intended = match schedule {
            Some((interval, offset)) => {
                let origin = *origin.get_or_insert_with(Instant::now);
                let at = origin + offset + interval.mul_f64(n as f64);
                if shared.deadline.is_some_and(|d| at >= d) {
                    break;
                }
                let now = Instant::now();
                if at > now {
                    glommio::timer::sleep(at - now).await;
                }
                at
            }
            None => Instant::now(),
        };
        n += 1;
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let id = message::message_id_header(plan.seed, shared.cell, index, n);
        match conn.send(&shared.prepared, id.as_bytes()).await {
            Ok(code) => {
                // Latency from the intended start: a stalled server is not excused by
                // the generator having waited for it (coordinated omission).
                stats.record_reply(code, intended.elapsed(), shared.prepared.message_bytes);
                shared.progress.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                stats.record_error(error.to_string(), true);
                shared.progress.errors.fetch_add(1, Ordering::Relaxed);
                connection = None;
                continue;
            }
        }
        on_connection += 1;
        if plan
            .messages_per_conn
            .is_some_and(|max| on_connection >= max)
            && let Some(conn) = connection.take()
        {
            conn.quit().await;
        }
    }
    if let Some(conn) = connection {
        conn.quit().await;
    }
    stats
}
