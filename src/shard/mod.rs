//! Shard-per-core serving: one glommio executor per core, each with its own
//! `SO_REUSEPORT` listeners (the kernel spreads connections), STARTTLS acceptor, upstream
//! channel, buffer pool and scratch arena. Nothing is shared across shards after start.
//! Every shard reports ready (or its error) before `start` returns.

mod conn;
mod context;
mod cpus;
mod pool;

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use glommio::net::TcpListener;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};

use crate::config::{Config, ConfigError, UpstreamSource};
use crate::smtp::{Mode, SessionConfig};
use crate::tls::{Identity, TlsError, UpstreamTrust};
use crate::upstream::channel::ChannelConfig;
use crate::upstream::{Channel, Target, sink};

use context::{ListenerKind, ShardContext};

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
            Self::Listen { addr, error } => write!(f, "--listen {addr}: {error}"),
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
    /// The bound STARTTLS listener addresses (ports resolved when `:0` was asked for).
    pub listeners: Vec<SocketAddr>,
    /// The bound relay listener addresses.
    pub relay_listeners: Vec<SocketAddr>,
    /// The upstream URL in use (the in-process sink's under `--dev`).
    pub upstream: String,
    /// PEM of the self-signed certificate, when one was generated.
    pub self_signed_pem: Option<String>,
    handles: PoolThreadHandles<()>,
}

impl Server {
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
    listeners: Vec<(SocketAddr, ListenerKind)>,
    hostname: String,
    config: Config,
    identity: Option<Identity>,
    trust: UpstreamTrust,
    target: Target,
}

pub fn start(config: &Config) -> Result<Server, StartError> {
    let (identity, self_signed_pem) = match config.identity()? {
        Some((identity, pem)) => (Some(identity), pem),
        None => (None, None),
    };
    let trust = config.upstream_trust()?;
    let target = match &config.upstream {
        UpstreamSource::Url(target) => target.clone(),
        UpstreamSource::DevSink => {
            let addr =
                sink::spawn_dev(config.upstream_method.to_string()).map_err(StartError::DevSink)?;
            Target::parse(&format!("http://{addr}"))
                .map_err(|e| StartError::DevSink(std::io::Error::other(e)))?
        }
    };
    // Resolve `:0` to one concrete port that every shard then shares; placeholders hold
    // the ports until the shards have bound them.
    let mut placeholders = Vec::new();
    let mut listeners = Vec::new();
    let relay_addrs = config.relay.iter().flat_map(|relay| relay.listen.iter());
    let wanted = (config.listen.iter().map(|&a| (a, ListenerKind::Submission)))
        .chain(relay_addrs.map(|&a| (a, ListenerKind::Relay)));
    for (addr, kind) in wanted {
        let (bound, placeholder) = reserve(addr)?;
        listeners.push((bound, kind));
        placeholders.extend(placeholder);
    }
    let bound_of = |wanted: ListenerKind| {
        listeners
            .iter()
            .filter(|(_, kind)| *kind == wanted)
            .map(|&(addr, _)| addr)
            .collect()
    };
    let (submission_addrs, relay_addrs) = (
        bound_of(ListenerKind::Submission),
        bound_of(ListenerKind::Relay),
    );

    let blueprint = Arc::new(Blueprint {
        listeners: listeners.clone(),
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
    let mut builder = LocalExecutorPoolBuilder::new(placement)
        .name("smtpgate-shard")
        .io_memory(512 << 10);
    if let Some(spin) = config.spin_before_park {
        builder = builder.spin_before_park(spin);
    }
    let handles = builder
        .on_all_shards(move || {
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run_shard(id, blueprint, ready_tx)
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
    Ok(Server {
        listeners: submission_addrs,
        relay_listeners: relay_addrs,
        upstream: format!("{}://{}", target.scheme, target.authority),
        self_signed_pem,
        handles,
    })
}

/// Connections a listener queues before the kernel refuses more (capped by
/// `net.core.somaxconn`): glommio's own bind asks for 1024, short for a burst of
/// reconnecting clients.
const BACKLOG: i32 = 4096;

/// A shard's listener on `addr`: SO_REUSEPORT, so that every shard binds the same
/// address and the kernel spreads connections; SO_REUSEADDR, so that a restarted gateway
/// binds while the last run's connections still sit in TIME_WAIT (glommio's
/// `TcpListener::bind` sets only the first, and a restart under load then fails).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = bind_shared(addr)?;
    socket.listen(BACKLOG)?;
    // SAFETY: `into_raw_fd` gives up sole ownership of a bound, listening TCP socket,
    // which is what `from_raw_fd` takes over; no other owner will close the descriptor.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// A TCP socket bound to `addr` with SO_REUSEADDR and SO_REUSEPORT, as every shard's
/// listener (and the port-0 placeholder that reserves their port) must be.
fn bind_shared(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// How long a restart waits for the last run's listener to go away. An io_uring process
/// that exits with an accept pending releases its listening socket only when the kernel
/// tears the ring down, some milliseconds later (12 ms measured here): a restart binding
/// at once would otherwise fail with "address in use" against a dead process.
const RESTART_GRACE: Duration = Duration::from_secs(1);

/// Binds `addr` plainly (no SO_REUSEPORT) and lets it go, retrying "address in use" for
/// up to [`RESTART_GRACE`].
fn probe_bind(addr: SocketAddr) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + RESTART_GRACE;
    loop {
        match std::net::TcpListener::bind(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.map(drop),
        }
    }
}

/// Checks `addr` is free and, for port 0, picks the port: a socket bound with
/// SO_REUSEPORT (as glommio's listeners are) keeps it until the shards have bound it.
pub fn reserve(addr: SocketAddr) -> Result<(SocketAddr, Option<socket2::Socket>), StartError> {
    let listen_error = |error| StartError::Listen { addr, error };
    if addr.port() != 0 {
        // A plain bind fails if anyone (even another SO_REUSEPORT process of ours) holds
        // the port: refuse to silently share it.
        probe_bind(addr).map_err(listen_error)?;
        return Ok((addr, None));
    }
    let socket = bind_shared(addr).map_err(listen_error)?;
    let bound = socket
        .local_addr()
        .map_err(listen_error)?
        .as_socket()
        .ok_or_else(|| listen_error(std::io::Error::other("not an IP socket")))?;
    Ok((bound, Some(socket)))
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

async fn run_shard(id: usize, blueprint: Arc<Blueprint>, ready: mpsc::Sender<Result<(), String>>) {
    let setup = setup_shard(id, &blueprint);
    drop(blueprint);
    let (ctx, listeners) = match setup {
        Ok(pair) => pair,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|(listener, kind)| glommio::spawn_local(accept_loop(listener, kind, Rc::clone(&ctx))))
        .collect();
    for task in loops {
        task.await;
    }
}

type ShardListeners = Vec<(TcpListener, ListenerKind)>;

fn setup_shard(
    id: usize,
    blueprint: &Blueprint,
) -> Result<(Rc<ShardContext>, ShardListeners), String> {
    let config = &blueprint.config;
    let tls_error = |e: TlsError| e.to_string();
    let submission = match &blueprint.identity {
        Some(identity) => {
            let acceptor = TlsAcceptor::from(identity.server_config().map_err(tls_error)?);
            let mode = Mode::Submission(config.auth.clone());
            let session = SessionConfig::new(&blueprint.hostname, config.limits.clone(), mode);
            Some((session, acceptor))
        }
        None => None,
    };
    let relay = config.relay.as_ref().map(|relay| {
        let mode = Mode::Relay(Rc::new(relay.credentials.clone()));
        let session = SessionConfig::new(&blueprint.hostname, config.limits.clone(), mode);
        (session, relay.allow.clone())
    });
    let upstream_tls = if blueprint.target.tls {
        let name = blueprint.target.server_name().map_err(|e| e.to_string())?;
        Some((blueprint.trust.client_config().map_err(tls_error)?, name))
    } else {
        None
    };
    let channel = Channel::new(ChannelConfig {
        target: blueprint.target.clone(),
        method: config.upstream_method.clone(),
        timeout: config.upstream_timeout,
        tls: upstream_tls,
    });
    let ctx = Rc::new(ShardContext::new(
        id,
        submission,
        relay,
        channel,
        config.mime_limits,
        config.fanout_concurrency,
    ));
    let listeners = blueprint
        .listeners
        .iter()
        .map(|&(addr, kind)| {
            let listener = listen(addr).map_err(|e| format!("listener {addr}: {e}"))?;
            Ok((listener, kind))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((ctx, listeners))
}

async fn accept_loop(listener: TcpListener, kind: ListenerKind, ctx: Rc<ShardContext>) {
    loop {
        match listener.accept().await {
            Ok(tcp) => {
                // glommio leaves Nagle on: without this a session takes ~30 ms, not ~1 ms.
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                glommio::spawn_local(conn::serve(tcp, Rc::clone(&ctx), kind)).detach();
            }
            Err(error) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(shard = ctx.id, %error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
