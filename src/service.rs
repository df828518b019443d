//! What the service manager is told (systemd's `sd_notify` protocol, `Type=notify`):
//! `READY=1` once every shard listens; `RELOADING=1` (with the monotonic time systemd
//! 253+ requires) and `READY=1` again around a reload; `STOPPING=1` when the drain
//! begins. Without `$NOTIFY_SOCKET` (not under systemd) each is a no-op.

use sd_notify::NotifyState;

pub fn ready() {
    send(&[NotifyState::Ready]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(error) => tracing::debug!(%error, "no monotonic clock for RELOADING=1"),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify the service manager");
    }
}
