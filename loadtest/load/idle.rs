//! `--idle N`: open N sessions (connect, EHLO, STARTTLS, AUTH as configured), hold them
//! idle, then close them: what a host's memory per idle session is, measured from the
//! outside (RSS of the server) while they are held.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use serde_json::{Value, json};

use crate::client::Connection;
use crate::run::Plan;
use crate::stats::CellStats;

/// Sessions a thread opens at once (a burst of thousands of handshakes would only
/// measure the accept queue).
const OPENING_AT_ONCE: u64 = 64;

pub fn hold(plan: Arc<Plan>, sessions: usize, hold: Duration, quiet: bool) -> Value {
    let threads = plan.threads.min(sessions).max(1);
    let opened = Arc::new(AtomicU64::new(0));
    // Attempts that ended, opened or failed: the opening phase is over at `sessions`.
    let finished = Arc::new(AtomicU64::new(0));
    let next_thread = Arc::new(AtomicU64::new(0));
    let all_open = Arc::new(std::sync::Barrier::new(threads + 1));
    let (plan2, opened2, barrier2) = (
        Arc::clone(&plan),
        Arc::clone(&opened),
        Arc::clone(&all_open),
    );
    let finished2 = Arc::clone(&finished);
    let started = Instant::now();
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(threads))
        .name("smtpgate-load-idle")
        .io_memory(512 << 10)
        .on_all_shards(move || {
            let thread = next_thread.fetch_add(1, Ordering::Relaxed) as usize;
            async move {
                let mine = (0..sessions).filter(|i| i % threads == thread).count();
                let gate = Rc::new(glommio::sync::Semaphore::new(OPENING_AT_ONCE));
                let tasks: Vec<_> = (0..mine)
                    .map(|_| {
                        let (plan, gate, opened) =
                            (Arc::clone(&plan2), Rc::clone(&gate), Arc::clone(&opened2));
                        let finished = Arc::clone(&finished2);
                        glommio::spawn_local(async move {
                            let permit = gate.acquire_permit(1).await;
                            let began = Instant::now();
                            let result = Connection::open(&plan.target).await;
                            drop(permit);
                            if result.is_ok() {
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                            finished.fetch_add(1, Ordering::Relaxed);
                            (result, began.elapsed())
                        })
                    })
                    .collect();
                let mut stats = CellStats::new();
                let mut connections = Vec::with_capacity(mine);
                for task in tasks {
                    match task.await {
                        (Ok(connection), took) => {
                            stats.record_setup(took);
                            connections.push(connection);
                        }
                        (Err(error), _) => stats.record_error(error.to_string(), false),
                    }
                }
                // Every thread holds its sessions until all are open, then for `hold`.
                let barrier = Arc::clone(&barrier2);
                let _ = glommio::executor()
                    .spawn_blocking(move || barrier.wait())
                    .await;
                glommio::timer::sleep(hold).await;
                for connection in connections {
                    connection.quit().await;
                }
                stats
            }
        });
    let handles = match handles {
        Ok(handles) => handles,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut last_print = Instant::now();
    while finished.load(Ordering::Relaxed) < sessions as u64 {
        std::thread::sleep(Duration::from_millis(100));
        if !quiet && last_print.elapsed() >= Duration::from_secs(1) {
            eprint!(
                "\ropening: {} of {sessions} sessions   ",
                opened.load(Ordering::Relaxed)
            );
            last_print = Instant::now();
        }
    }
    all_open.wait();
    let open_after = started.elapsed();
    if !quiet {
        eprintln!(
            "\r{} sessions open after {:.1}s; holding them {:.0}s",
            opened.load(Ordering::Relaxed),
            open_after.as_secs_f64(),
            hold.as_secs_f64()
        );
    }
    let mut stats = CellStats::new();
    for result in handles.join_all() {
        match result {
            Ok(s) => stats.merge(s),
            Err(e) => stats.record_error(e.to_string(), false),
        }
    }
    let setup = |q: f64| {
        if stats.setup.is_empty() {
            0
        } else {
            stats.setup.value_at_quantile(q)
        }
    };
    json!({
        "idle_sessions_requested": sessions,
        "idle_sessions_open": stats.setup.len(),
        "errors": stats.errors,
        "first_error": stats.first_error,
        "opened_in_s": open_after.as_secs_f64(),
        "held_s": hold.as_secs_f64(),
        "setup_us": { "p50": setup(0.5), "p99": setup(0.99), "max": stats.setup.max() },
    })
}
