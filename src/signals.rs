//! The process's signals, turned into shard commands: SIGTERM or SIGINT starts the
//! drain (a second one exits at once); SIGHUP reloads the certificate and the relay
//! token. Handled on a thread of their own, so the shards never see a signal.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::shard::Controller;

/// The signals, caught from before start-up (one arriving then waits for `serve`).
pub struct Watcher(Signals);

impl Watcher {
    pub fn install() -> std::io::Result<Self> {
        Signals::new([SIGTERM, SIGINT, SIGHUP]).map(Self)
    }

    /// Acts on the signals from now on, on a thread of its own.
    pub fn serve(self, controller: Controller, config: Config) -> std::io::Result<()> {
        let Self(mut signals) = self;
        std::thread::Builder::new()
            .name("smtpgate-signals".into())
            .spawn(move || {
                let mut draining = false;
                for signal in signals.forever() {
                    match signal {
                        SIGHUP => {
                            crate::service::reloading();
                            reload(&controller, &config);
                            crate::service::ready();
                        }
                        _ if draining => {
                            tracing::warn!(signal, "second signal: exiting now");
                            std::process::exit(128 + signal);
                        }
                        _ => {
                            draining = true;
                            tracing::info!(
                                signal,
                                timeout = ?config.drain_timeout,
                                "draining: no new connections, sessions finish their transactions"
                            );
                            crate::service::stopping();
                            controller.drain(config.drain_timeout);
                        }
                    }
                }
            })
            .map(drop)
    }
}

/// Reads the certificate, key and relay token again and hands them to the shards; on
/// any error the gateway keeps serving with what it has.
pub fn reload(controller: &Controller, config: &Config) {
    let result = config
        .reload()
        .map_err(|e| e.to_string())
        .and_then(|reloaded| controller.reload(&reloaded));
    controller.reloaded(result.is_ok());
    match result {
        Ok(()) => tracing::info!("reloaded the certificate and the relay token"),
        Err(reason) => tracing::error!(
            %reason,
            "reload failed: still serving with the previous certificate and token"
        ),
    }
}
