//! Shard-per-core serving: one glommio executor per core, each with its own
//! `SO_REUSEPORT` listeners (the kernel spreads connections), STARTTLS acceptor, upstream
//! channel, buffer pool and scratch arena. Nothing is shared across shards after start.
//! Every shard reports ready (or its error) before `start` returns.
#![allow(clippy::disallowed_methods)] // An IO layer: it may read the clock.

mod admission;
mod conn;
mod context;
mod cpus;
mod lifecycle;
pub mod listener;
mod message_log;
pub mod metrics;
mod pool;
mod proxied;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_rustls::TlsAcceptor;
use glommio::net::TcpListener;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};

use crate::config::{Config, ConfigError, ListenerConfig, ListenerKind, Reloaded, UpstreamSource};
use crate::tls::{Identity, TlsError, UpstreamTrust};
use crate::upstream::channel::ChannelConfig;
use crate::upstream::{Channel, Target, sink};

use admission::Admission;
use context::ShardContext;
use futures_util::StreamExt as _;
use lifecycle::{Control, ControlReceiver, ControlSender};
pub use listener::{Listener, listen, reserve};
use metrics::Telemetry;

#[derive(Debug)]
pub enum StartError {
    Config(ConfigError),
    /// A listener address cannot be bound.
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    DevSink(std::io::Error),
    /// An executor failed to start or a shard failed to set itself up.
    Shard(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Listen { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            Self::DevSink(e) => write!(f, "cannot start the --dev upstream sink: {e}"),
            Self::Shard(e) => write!(f, "shard failed to start: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

/// A running gateway.
pub struct Server {
    /// What the admin listener shows.
    pub telemetry: Arc<Telemetry>,
    /// Every listener as bound (ports resolved when `:0` was asked for), in the
    /// configuration's order.
    pub listeners: Vec<ListenerConfig>,
    /// The upstream URL in use (the in-process sink's under `--dev`).
    pub upstream: String,
    /// PEM of the self-signed certificate, when one was generated.
    pub self_signed_pem: Option<String>,
    controller: Controller,
    handles: PoolThreadHandles<()>,
}

/// Sends commands to every shard; cheap to clone, usable from any thread (a signal
/// handler's).
#[derive(Clone)]
pub struct Controller {
    shards: Vec<ControlSender>,
    telemetry: Arc<Telemetry>,
}

impl Controller {
    /// Counts a reload's result (`smtpgate_reloads_total`).
    pub fn reloaded(&self, ok: bool) {
        self.telemetry.process.reloaded(ok);
    }

    /// Hands every shard what `Config::reload` read, and waits until each has it in use.
    pub fn reload(&self, reloaded: &Reloaded) -> Result<(), String> {
        let (done, acks) = mpsc::channel();
        for shard in &self.shards {
            let reload = Control::Reload {
                reloaded: reloaded.clone(),
                done: done.clone(),
            };
            shard
                .unbounded_send(reload)
                .map_err(|_| "a shard is gone".to_owned())?;
        }
        for _ in &self.shards {
            acks.recv_timeout(Duration::from_secs(10))
                .map_err(|_| "a shard did not confirm the reload".to_owned())??;
        }
        Ok(())
    }

    /// Starts the drain (see `Control::Drain`); `Server::wait` returns when every shard
    /// is done.
    pub fn drain(&self, timeout: Duration) {
        self.telemetry.process.set_draining();
        let deadline = Instant::now() + timeout;
        for shard in &self.shards {
            // A shard that is gone has nothing left to drain.
            let _ = shard.unbounded_send(Control::Drain { deadline });
        }
    }
}

impl Server {
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// The bound addresses of one kind of listener.
    pub fn addrs(&self, kind: ListenerKind) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.addr)
            .collect()
    }

    /// Blocks while the shards run.
    pub fn wait(self) {
        for result in self.handles.join_all() {
            if let Err(error) = result {
                tracing::error!(%error, "shard exited with an error");
            }
        }
    }
}

/// What every shard is built from; cloned once per shard at start.
struct Blueprint {
    listeners: Vec<ListenerConfig>,
    telemetry: Arc<Telemetry>,
    admission: Arc<Admission>,
    hostname: String,
    config: Config,
    identity: Option<Identity>,
    trust: UpstreamTrust,
    target: Target,
}

pub fn start(config: &Config) -> Result<Server, StartError> {
    start_with(config, Arc::new(Telemetry::new(config.shards)))
}

/// Starts with telemetry made beforehand (so the admin listener can answer "not ready"
/// during start-up); `telemetry` must have one `ShardMetrics` per shard.
pub fn start_with(config: &Config, telemetry: Arc<Telemetry>) -> Result<Server, StartError> {
    if telemetry.shards.len() < config.shards.max(1) {
        return Err(StartError::Shard(
            "telemetry for fewer shards than configured".into(),
        ));
    }
    let (identity, self_signed_pem) = match config.identity()? {
        Some((identity, pem)) => (Some(identity), pem),
        None => (None, None),
    };
    let trust = config.upstream_trust()?;
    let target = match &config.upstream.source {
        UpstreamSource::Url(target) => target.clone(),
        UpstreamSource::DevSink => {
            let addr =
                sink::spawn_dev(config.upstream.method.to_string()).map_err(StartError::DevSink)?;
            Target::parse(&format!("http://{addr}"))
                .map_err(|e| StartError::DevSink(std::io::Error::other(e)))?
        }
    };
    // Resolve `:0` to one concrete port that every shard then shares; placeholders hold
    // the ports until the shards have bound them.
    let mut placeholders = Vec::new();
    let mut listeners = Vec::new();
    for wanted in &config.listeners {
        let (addr, placeholder) = reserve(wanted.addr)?;
        listeners.push(ListenerConfig { addr, ..*wanted });
        placeholders.extend(placeholder);
    }

    let blueprint = Arc::new(Blueprint {
        listeners: listeners.clone(),
        telemetry: Arc::clone(&telemetry),
        admission: Arc::new(Admission::new(
            config.max_connections,
            config.max_connections_per_ip,
        )),
        hostname: config.hostname.clone(),
        config: config.clone(),
        identity,
        trust,
        target: target.clone(),
    });
    let shards = config.shards.max(1);
    let placement = placement(shards);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let next_id = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards)
        .map(|_| {
            let (tx, rx) = futures_channel::mpsc::unbounded();
            (tx, Some(rx))
        })
        .unzip();
    let receivers = Arc::new(Mutex::new(receivers));
    let mut builder = LocalExecutorPoolBuilder::new(placement)
        .name("smtpgate-shard")
        .io_memory(512 << 10);
    if let Some(spin) = config.spin_before_park {
        builder = builder.spin_before_park(spin);
    }
    let handles = builder
        .on_all_shards(move || {
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let control = receivers
                .lock()
                .ok()
                .and_then(|mut all| all.get_mut(id)?.take());
            run_shard(id, blueprint, ready_tx, control)
        })
        .map_err(|e| StartError::Shard(e.to_string()))?;

    for _ in 0..shards {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(StartError::Shard(error)),
            Err(_) => return Err(StartError::Shard("a shard did not report ready".into())),
        }
    }
    drop(placeholders);
    telemetry.process.set_ready();
    Ok(Server {
        listeners,
        controller: Controller {
            shards: senders,
            telemetry: Arc::clone(&telemetry),
        },
        telemetry,
        upstream: format!("{}://{}", target.scheme, target.authority),
        self_signed_pem,
        handles,
    })
}

/// One shard per allowed CPU, spread over packages and cores; more shards than allowed
/// CPUs (an operator's choice) run unpinned.
fn placement(shards: usize) -> PoolPlacement {
    let Ok(online) = CpuSet::online() else {
        return PoolPlacement::Unbound(shards);
    };
    let cpus = match cpus::allowed() {
        Some(allowed) => online.filter(|l| allowed.binary_search(&l.cpu).is_ok()),
        None => online,
    };
    if shards <= cpus.len() {
        PoolPlacement::MaxSpread(shards, Some(cpus))
    } else {
        PoolPlacement::Unbound(shards)
    }
}

async fn run_shard(
    id: usize,
    blueprint: Arc<Blueprint>,
    ready: mpsc::Sender<Result<(), String>>,
    control: Option<ControlReceiver>,
) {
    let setup = setup_shard(id, &blueprint);
    drop(blueprint);
    let (ShardSetup { ctx, bound, kinds }, control) = match (setup, control) {
        (Ok(setup), Some(control)) => (setup, control),
        (Ok(_), None) => {
            let _ = ready.send(Err(format!("shard {id} has no control channel")));
            return;
        }
        (Err(error), _) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let accepting: Vec<_> = bound
        .into_iter()
        .map(|(socket, listener)| {
            glommio::spawn_local(accept_loop(socket, listener, Rc::clone(&ctx)))
        })
        .collect();
    serve_until_drained(&ctx, &kinds, accepting, control).await;
}

/// A reload on this shard: new handshakes get the new certificate, new relay sessions
/// the new token.
fn reload(
    ctx: &ShardContext,
    listeners: &[Rc<Listener>],
    reloaded: &Reloaded,
) -> Result<(), String> {
    if let Some(identity) = &reloaded.identity {
        let config = identity.server_config().map_err(|e| e.to_string())?;
        *ctx.tls.borrow_mut() = Some(TlsAcceptor::from(config));
    }
    if let Some(credentials) = &reloaded.relay_credentials {
        for listener in listeners {
            listener.reload_relay(credentials);
        }
    }
    Ok(())
}

/// Serves until the main thread asks for a drain, then drains: no more accepting,
/// sessions told, the shard over when none is left or at the deadline. Without a
/// controller (its `Server` dropped) the shard serves on.
async fn serve_until_drained(
    ctx: &ShardContext,
    listeners: &[Rc<Listener>],
    accepting: Vec<glommio::Task<()>>,
    mut control: ControlReceiver,
) {
    let deadline = loop {
        match control.next().await {
            Some(Control::Drain { deadline }) => break deadline,
            Some(Control::Reload { reloaded, done }) => {
                let _ = done.send(reload(ctx, listeners, &reloaded));
            }
            None => return futures_lite::future::pending().await,
        }
    };
    for task in accepting {
        task.cancel().await;
    }
    let lifecycle = &ctx.lifecycle;
    tracing::info!(
        shard = ctx.id,
        sessions = lifecycle.connections(),
        "draining"
    );
    lifecycle.begin_drain();
    let wait = deadline.saturating_duration_since(Instant::now());
    if !lifecycle.none_left_within(wait).await {
        tracing::info!(
            shard = ctx.id,
            sessions = lifecycle.connections(),
            "drain deadline: closing the sessions left"
        );
        lifecycle.stop();
        // They only write their 421 and close.
        lifecycle.none_left_within(Duration::from_secs(2)).await;
    }
    tracing::info!(shard = ctx.id, "drained");
}

/// A shard once set up: its context, each bound socket with what it serves, and the
/// distinct `Listener`s (one per kind, for reloads).
struct ShardSetup {
    ctx: Rc<ShardContext>,
    bound: Vec<(TcpListener, Rc<Listener>)>,
    kinds: Vec<Rc<Listener>>,
}

fn setup_shard(id: usize, blueprint: &Blueprint) -> Result<ShardSetup, String> {
    let config = &blueprint.config;
    let tls_error = |e: TlsError| e.to_string();
    let acceptor = match &blueprint.identity {
        Some(identity) => Some(TlsAcceptor::from(
            identity.server_config().map_err(tls_error)?,
        )),
        None => None,
    };
    let upstream_tls = if blueprint.target.tls {
        let name = blueprint.target.server_name().map_err(|e| e.to_string())?;
        Some((blueprint.trust.client_config().map_err(tls_error)?, name))
    } else {
        None
    };
    let channel = Channel::new(ChannelConfig {
        target: blueprint.target.clone(),
        method: config.upstream.method.clone(),
        timeout: config.upstream.timeout,
        tls: upstream_tls,
        connected: Arc::clone(&blueprint.telemetry.shards[id].upstream_connected),
        keepalive: config.upstream.keepalive,
    });
    let telemetry = Arc::clone(&blueprint.telemetry);
    let admission = Arc::clone(&blueprint.admission);
    let ctx = Rc::new(ShardContext::new(
        id, config, telemetry, admission, acceptor, channel,
    ));
    // One `Listener` per kind, shared by that kind's addresses.
    let mut kinds: Vec<Rc<Listener>> = Vec::new();
    let mut listeners = Vec::new();
    for wanted in &blueprint.listeners {
        let listener = match kinds.iter().find(|l| l.kind == wanted.kind) {
            Some(listener) => Rc::clone(listener),
            None => {
                let listener = Listener::new(wanted.kind, &blueprint.hostname, config)
                    .ok_or_else(|| format!("{} listener without its settings", wanted.kind))?;
                let listener = Rc::new(listener);
                kinds.push(Rc::clone(&listener));
                listener
            }
        };
        let socket = listen(wanted.addr).map_err(|e| format!("listener {}: {e}", wanted.addr))?;
        listeners.push((socket, listener));
    }
    Ok(ShardSetup {
        ctx,
        bound: listeners,
        kinds,
    })
}

async fn accept_loop(socket: TcpListener, listener: Rc<Listener>, ctx: Rc<ShardContext>) {
    loop {
        match socket.accept().await {
            Ok(tcp) => {
                // glommio leaves Nagle on: without this a session takes ~30 ms, not ~1 ms.
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let serve = conn::serve(tcp, Rc::clone(&ctx), Rc::clone(&listener));
                glommio::spawn_local(serve).detach();
            }
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(shard = ctx.id, listener = %listener.kind, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
