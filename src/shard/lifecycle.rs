//! A shard's life after start: the commands the main thread sends it (`Control`), its
//! open connections counted, and the drain. The drain has two moments every connection
//! watches: its start (idle sessions end with `421 4.3.2`, the others finish their
//! transaction) and its deadline (every session left ends with `421 4.3.2`).
//!
//! The control path is an unbounded channel per shard: sending needs no executor (the
//! main thread's signal handler sends), and glommio wakes a shard's task from another
//! thread through its own notifier.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use crate::config::Reloaded;

/// What the main thread asks of a shard.
#[derive(Debug)]
pub enum Control {
    /// Stop accepting, let sessions finish, and end the shard when none is left or at
    /// `deadline`.
    Drain { deadline: Instant },
    /// New handshakes use the new certificate and new relay sessions the new token
    /// (sessions under way keep theirs); the shard says when it is done.
    Reload {
        reloaded: Reloaded,
        done: std::sync::mpsc::Sender<Result<(), String>>,
    },
}

pub type ControlSender = futures_channel::mpsc::UnboundedSender<Control>;
pub type ControlReceiver = futures_channel::mpsc::UnboundedReceiver<Control>;

/// A one-way switch tasks wait on: `set` wakes every waiter, and a wait begun after it
/// ends at once. (A closed glommio semaphore with no units: closing wakes its waiters
/// with an error and it stays closed; dropped waits leave no trace.)
struct Latch {
    semaphore: Semaphore,
    set: Cell<bool>,
}

impl Latch {
    fn new() -> Self {
        Self {
            semaphore: Semaphore::new(0),
            set: Cell::new(false),
        }
    }

    fn set(&self) {
        if !self.set.replace(true) {
            self.semaphore.close();
        }
    }

    fn is_set(&self) -> bool {
        self.set.get()
    }

    async fn wait(&self) {
        // Never acquires: it has no units. It returns when the semaphore closes.
        let _ = self.semaphore.acquire(1).await;
    }
}

/// The shard's connections and where its drain stands.
pub struct Lifecycle {
    open: Cell<usize>,
    draining: Latch,
    stopping: Latch,
    none_left: Latch,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            open: Cell::new(0),
            draining: Latch::new(),
            stopping: Latch::new(),
            none_left: Latch::new(),
        }
    }
}

/// Counts one connection while it lives.
pub struct Open(Rc<Lifecycle>);

impl Drop for Open {
    fn drop(&mut self) {
        let left = self.0.open.get() - 1;
        self.0.open.set(left);
        if left == 0 && self.0.draining.is_set() {
            self.0.none_left.set();
        }
    }
}

impl Lifecycle {
    /// Counts a new connection until the guard is dropped.
    pub fn open(self: &Rc<Self>) -> Open {
        self.open.set(self.open.get() + 1);
        Open(Rc::clone(self))
    }

    pub fn connections(&self) -> usize {
        self.open.get()
    }

    /// Resolves when the drain begins.
    pub async fn drain_begun(&self) {
        self.draining.wait().await;
    }

    /// Runs `work` unless the drain's deadline comes first (`None` then).
    pub async fn until_stopped<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let work = async { Some(work.await) };
        let stopped = async {
            self.stopping.wait().await;
            None
        };
        futures_lite::future::or(work, stopped).await
    }

    /// The drain begins: sessions are told, and `none_left` fires once they are gone.
    pub fn begin_drain(&self) {
        self.draining.set();
        if self.open.get() == 0 {
            self.none_left.set();
        }
    }

    /// The drain's deadline: every session left ends now.
    pub fn stop(&self) {
        self.stopping.set();
    }

    /// Resolves once draining and no connection is left.
    pub async fn none_left(&self) {
        self.none_left.wait().await;
    }

    /// Whether no connection is left (draining) within `wait`.
    pub async fn none_left_within(&self, wait: Duration) -> bool {
        let gone = async {
            self.none_left().await;
            Ok(())
        };
        glommio::timer::timeout(wait, gone).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T: 'static>(test: impl Future<Output = T> + 'static) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 << 10)
            .make()
            .expect("executor")
            .run(test)
    }

    #[test]
    fn the_drain_ends_when_the_last_connection_goes() {
        run(async {
            let life = Rc::new(Lifecycle::default());
            let first = life.open();
            let second = life.open();
            assert_eq!(life.connections(), 2);
            let waiter = glommio::spawn_local({
                let life = Rc::clone(&life);
                async move { life.none_left().await }
            })
            .detach();
            life.begin_drain();
            drop(first);
            glommio::yield_if_needed().await;
            assert_eq!(life.connections(), 1);
            drop(second);
            assert_eq!(waiter.await, Some(()), "woken by the last connection");
            // Waits begun afterwards end at once.
            life.drain_begun().await;
            life.none_left().await;
        });
    }

    #[test]
    fn the_deadline_cuts_work_short() {
        run(async {
            let life = Rc::new(Lifecycle::default());
            assert_eq!(life.until_stopped(async { 7 }).await, Some(7));
            let stopper = glommio::spawn_local({
                let life = Rc::clone(&life);
                async move { life.stop() }
            })
            .detach();
            let cut = life
                .until_stopped(futures_lite::future::pending::<()>())
                .await;
            assert_eq!(cut, None);
            stopper.await;
        });
    }

    #[test]
    fn a_drain_with_no_connection_is_over_at_once() {
        run(async {
            let life = Rc::new(Lifecycle::default());
            life.begin_drain();
            life.none_left().await;
        });
    }
}
