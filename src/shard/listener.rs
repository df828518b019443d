//! The listeners: binding an address the way every shard must (`SO_REUSEPORT` and
//! `SO_REUSEADDR`, port `0` resolved once for all shards), and what one shard serves
//! on each (`Listener`: the session settings of its kind, built once per shard).
//! A kind of listener is a `ListenerKind` and a session `Mode`; nothing else in the
//! shard matches on it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;

use super::StartError;
use crate::config::{Config, ListenerKind};
use crate::smtp::{Credentials, Mode, SessionConfig};

/// What one shard serves on the listeners of one kind.
#[derive(Debug)]
pub struct Listener {
    pub kind: ListenerKind,
    hostname: String,
    /// Replaced on reload; a session keeps the one it started with.
    session: RefCell<Rc<SessionConfig>>,
}

impl Listener {
    /// `None` for a relay listener without relay settings (`Config` never has one).
    pub fn new(kind: ListenerKind, hostname: &str, config: &Config) -> Option<Self> {
        let mode = match kind {
            ListenerKind::StartTls => Mode::Submission(config.auth.clone()),
            ListenerKind::Tls => Mode::SubmissionTls(config.auth.clone()),
            ListenerKind::Relay => {
                let relay = config.relay.as_ref()?;
                Mode::Relay {
                    credentials: Rc::new(relay.credentials.clone()),
                    allow: relay.allow.clone(),
                }
            }
        };
        let session = SessionConfig::new(hostname, config.limits.clone(), mode);
        Some(Self {
            kind,
            hostname: hostname.to_owned(),
            session: RefCell::new(Rc::new(session)),
        })
    }

    /// The settings a new session starts with.
    pub fn session(&self) -> Rc<SessionConfig> {
        Rc::clone(&self.session.borrow())
    }

    /// A relay listener's new credentials (the token file was read again).
    pub fn reload_relay(&self, new: &Credentials) {
        let current = self.session();
        if let Mode::Relay { allow, .. } = &current.mode {
            let mode = Mode::Relay {
                credentials: Rc::new(new.clone()),
                allow: allow.clone(),
            };
            let session = SessionConfig::new(&self.hostname, current.limits.clone(), mode);
            *self.session.borrow_mut() = Rc::new(session);
        }
    }

    /// Whether the TLS handshake comes before the session (implicit TLS).
    pub fn handshake_first(&self) -> bool {
        self.kind == ListenerKind::Tls
    }
}

/// Connections a listener queues before the kernel refuses more (capped by
/// `net.core.somaxconn`): glommio's own bind asks for 1024, short for a burst of
/// reconnecting clients.
const BACKLOG: i32 = 4096;

/// A shard's listener on `addr`: SO_REUSEPORT, so that every shard binds the same
/// address and the kernel spreads connections; SO_REUSEADDR, so that a restarted gateway
/// binds while the last run's connections still sit in TIME_WAIT (glommio's
/// `TcpListener::bind` sets only the first, and a restart under load then fails).
// One of the crate's two `unsafe`s (the other: the sink's TCP reset): handing a socket2
// listener to glommio.
#[allow(unsafe_code)]
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
