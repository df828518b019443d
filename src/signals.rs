//! The process's signals, turned into shard commands: SIGTERM or SIGINT starts the
//! drain (a second one exits at once). Handled on a thread of their own, so the shards
//! never see a signal.

use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::shard::Controller;

/// The signals, caught from before start-up (one arriving then waits for `serve`).
pub struct Watcher(Signals);

impl Watcher {
    pub fn install() -> std::io::Result<Self> {
        Signals::new([SIGTERM, SIGINT]).map(Self)
    }

    /// Acts on the signals from now on, on a thread of its own.
    pub fn serve(self, controller: Controller, drain_timeout: Duration) -> std::io::Result<()> {
        let Self(mut signals) = self;
        std::thread::Builder::new()
            .name("smtpgate-signals".into())
            .spawn(move || {
                let mut draining = false;
                for signal in signals.forever() {
                    if draining {
                        tracing::warn!(signal, "second signal: exiting now");
                        std::process::exit(128 + signal);
                    }
                    draining = true;
                    tracing::info!(
                        signal,
                        timeout = ?drain_timeout,
                        "draining: no new connections, sessions finish their transactions"
                    );
                    controller.drain(drain_timeout);
                }
            })
            .map(drop)
    }
}
