//! Command-line flags (each also read from an `SMTPGATE_*` environment variable) and
//! their validation into a `Config`. `--dev` fills in an embedded default: a
//! self-signed certificate and an in-process upstream sink.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use http::uri::PathAndQuery;

use crate::cidr::{AllowList, Cidr, Networks};
use crate::mime::MimeLimits;
use crate::smtp::{AuthPolicy, BareLf, Credentials, Limits, TokenOwner};
use crate::tls::{Identity, TlsError, UpstreamTrust};
use crate::upstream::target::{self, Target};

#[derive(Parser, Debug)]
#[command(
    name = "smtpgate",
    version,
    about = "SMTP submission gateway: forwards every message, synchronously, to a gRPC Notify API",
    long_about = None
)]
pub struct Args {
    /// STARTTLS submission listener address (repeatable).
    /// [default: 0.0.0.0:587, or 127.0.0.1:2525 with --dev]
    #[arg(
        long,
        value_name = "ADDR",
        env = "SMTPGATE_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<SocketAddr>,

    /// Implicit-TLS submission listener address (RFC 8314, usually port 465): the TLS
    /// handshake first, then SMTP with AUTH offered at once (repeatable).
    #[arg(
        long,
        value_name = "ADDR",
        env = "SMTPGATE_LISTEN_TLS",
        value_delimiter = ','
    )]
    pub listen_tls: Vec<SocketAddr>,

    /// PEM file with the certificate chain for STARTTLS and implicit TLS (required
    /// unless --dev).
    #[arg(long, value_name = "PEM", env = "SMTPGATE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key for STARTTLS and implicit TLS (required unless
    /// --dev).
    #[arg(long, value_name = "PEM", env = "SMTPGATE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Upstream gRPC endpoint: https://host[:port] (h2 over TLS) or http://host:port (h2c).
    /// Required unless --dev, which starts an in-process sink.
    #[arg(long, value_name = "URL", env = "SMTPGATE_UPSTREAM", value_parser = parse_upstream)]
    pub upstream: Option<Target>,

    /// gRPC method path of the Notify call.
    #[arg(
        long,
        value_name = "PATH",
        env = "SMTPGATE_UPSTREAM_METHOD",
        default_value = "/notify.v2.MessagingService/Notify",
        value_parser = parse_method
    )]
    pub upstream_method: PathAndQuery,

    /// Deadline of each upstream call (e.g. 500ms, 5s, 1m); sent as grpc-timeout too.
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// HTTP/2 PING to the upstream this often; a connection whose PONG is that late is
    /// dropped and the next call dials anew (0 turns it off).
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_UPSTREAM_KEEPALIVE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_keepalive: Duration,

    /// Extra CA certificate(s), PEM, trusted for an https:// upstream (private CAs).
    #[arg(long, value_name = "PEM", env = "SMTPGATE_UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,

    /// Number of shards: one executor per core, pinned to the CPUs this process may run on
    /// (taskset, systemd's CPUAffinity=). [default: those CPUs]
    #[arg(long, value_name = "N", env = "SMTPGATE_SHARDS", allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: Option<u16>,

    /// Name in the greeting and the EHLO reply. [default: the system host name]
    #[arg(long, value_name = "NAME", env = "SMTPGATE_HOSTNAME", value_parser = parse_hostname)]
    pub hostname: Option<String>,

    /// Largest message accepted, in bytes (advertised as SIZE).
    #[arg(long, value_name = "BYTES", env = "SMTPGATE_MAX_MESSAGE_SIZE", allow_negative_numbers = true, default_value_t = 26_214_400, value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824))]
    pub max_message_size: u64,

    /// Recipients per message; the next RCPT gets 452 4.5.3.
    #[arg(long, value_name = "N", env = "SMTPGATE_MAX_RECIPIENTS", allow_negative_numbers = true, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_recipients: u32,

    /// Idle time allowed between client commands (and data); then 421 4.4.2.
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_COMMAND_TIMEOUT", default_value = "300s", value_parser = parse_duration)]
    pub command_timeout: Duration,

    /// Connections open at once in the process; the next gets 421 4.7.0 and is closed.
    #[arg(long, value_name = "N", env = "SMTPGATE_MAX_CONNECTIONS", allow_negative_numbers = true, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_connections: u32,

    /// Connections open at once from one client address (after PROXY; loopback
    /// exempt; 0: no cap); the next gets 421 4.7.0 and is closed.
    #[arg(long, value_name = "N", env = "SMTPGATE_MAX_CONNECTIONS_PER_IP", allow_negative_numbers = true, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub max_connections_per_ip: u32,

    /// Silence required before the greeting (e.g. 3s; 0 turns it off): a client that
    /// talks first gets 554 5.5.0 and is closed.
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_GREET_PAUSE", default_value = "0s", value_parser = humantime::parse_duration)]
    pub greet_pause: Duration,

    /// Failed authentications per session (bad AUTH exchanges and tokens the upstream
    /// refused) before 421 4.7.0.
    #[arg(long, value_name = "N", env = "SMTPGATE_MAX_AUTH_FAILURES", allow_negative_numbers = true, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_auth_failures: u32,

    /// In DATA, one more second beyond --command-timeout per this many bytes received;
    /// a message dripped slower gets 421 4.4.2.
    #[arg(long, value_name = "BYTES_PER_S", env = "SMTPGATE_MIN_DATA_RATE", allow_negative_numbers = true, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub min_data_rate: u64,

    /// A lone LF in DATA: reject the message (550 5.6.0) or take it as a line ending.
    #[arg(long, value_enum, value_name = "MODE", env = "SMTPGATE_BARE_LF", default_value_t = BareLfArg::Reject)]
    pub bare_lf: BareLfArg,

    /// Local relay listener: plaintext SMTP without AUTH, for loopback and --relay-allow
    /// networks only, submitting with --relay-application and --relay-token-file
    /// (repeatable). Without --listen or --listen-tls, no TLS listener is opened.
    #[arg(
        long,
        value_name = "ADDR",
        env = "SMTPGATE_LISTEN_RELAY",
        value_delimiter = ','
    )]
    pub listen_relay: Vec<SocketAddr>,

    /// Network allowed to use the relay listener besides loopback (repeatable), e.g.
    /// 10.0.0.0/8. Required when a relay listener is not on a loopback address.
    #[arg(long, value_name = "CIDR", env = "SMTPGATE_RELAY_ALLOW", value_delimiter = ',', value_parser = parse_cidr)]
    pub relay_allow: Vec<Cidr>,

    /// Application code the relay listener submits with.
    #[arg(long, value_name = "CODE", env = "SMTPGATE_RELAY_APPLICATION")]
    pub relay_application: Option<String>,

    /// File holding the API token the relay listener submits with (surrounding
    /// whitespace trimmed).
    #[arg(long, value_name = "PATH", env = "SMTPGATE_RELAY_TOKEN_FILE")]
    pub relay_token_file: Option<PathBuf>,

    /// Upstream calls in flight at once for one message that fans out (X-SMTPAPI `sub`
    /// with distinct values per recipient: one call per distinct set).
    #[arg(long, value_name = "N", env = "SMTPGATE_FANOUT_CONCURRENCY", allow_negative_numbers = true, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub fanout_concurrency: u16,

    /// Application code for the provider user name forms: a Postmark server token given
    /// as both user name and password, or SparkPost's SMTP_Injection[:X-MSYS-SUBACCOUNT=N].
    /// Without it those logins are refused (535 5.7.8).
    #[arg(long, value_name = "CODE", env = "SMTPGATE_DEFAULT_APPLICATION")]
    pub default_application: Option<String>,

    /// Log lines on stderr: text, or one JSON object per line (for log shippers).
    #[arg(long, value_enum, value_name = "FORMAT", env = "SMTPGATE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The operator's HTTP listener: GET /metrics (Prometheus), /healthz, /readyz.
    /// [default: off; 127.0.0.1:9925 with --dev, skipped if that port is taken]
    #[arg(long, value_name = "ADDR", env = "SMTPGATE_ADMIN")]
    pub admin: Option<SocketAddr>,

    /// Network of load balancers whose connections must begin with a PROXY protocol
    /// header (v1 or v2) naming the client (repeatable). Others are served as they are.
    #[arg(long, value_name = "CIDR", env = "SMTPGATE_PROXY_TRUSTED", value_delimiter = ',', value_parser = parse_cidr)]
    pub proxy_trusted: Vec<Cidr>,

    /// How long a trusted balancer's PROXY header may take to arrive.
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_PROXY_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub proxy_timeout: Duration,

    /// Messages per connection (0: no limit); then the next MAIL gets 421 4.7.0 and the
    /// connection closes, so persistent clients spread again over the hosts behind a
    /// load balancer.
    #[arg(long, value_name = "N", env = "SMTPGATE_MAX_MESSAGES_PER_CONNECTION", allow_negative_numbers = true, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub max_messages_per_connection: u32,

    /// On SIGTERM or SIGINT: stop accepting, let transactions under way finish, and
    /// exit when no session is left or after this long (421 4.3.2 to those left).
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Let an idle shard spin this long before it sleeps (e.g. 50us): lower latency on
    /// dedicated cores, at the price of CPU that would otherwise be idle. Off by default.
    #[arg(long, value_name = "DURATION", env = "SMTPGATE_SPIN_BEFORE_PARK", value_parser = humantime::parse_duration)]
    pub spin_before_park: Option<Duration>,

    /// Development mode: self-signed certificate, in-process upstream sink printing each
    /// request as JSON, listener 127.0.0.1:2525.
    #[arg(long, env = "SMTPGATE_DEV")]
    pub dev: bool,
}

fn parse_cidr(text: &str) -> Result<Cidr, String> {
    text.parse()
}

fn parse_upstream(text: &str) -> Result<Target, String> {
    Target::parse(text).map_err(|e| e.to_string())
}

fn parse_method(text: &str) -> Result<PathAndQuery, String> {
    target::parse_method(text).map_err(|e| e.to_string())
}

/// A host name for the greeting: letters, digits, `-` and `.`, at most 253 bytes.
fn parse_hostname(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a host name"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BareLfArg {
    Reject,
    Normalize,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(duration)
}

/// What a listener serves; each is one variant here and one `Mode` of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Submission with STARTTLS (`--listen`, port 587).
    StartTls,
    /// Submission over implicit TLS (`--listen-tls`, port 465).
    Tls,
    /// The local relay (`--listen-relay`).
    Relay,
}

impl ListenerKind {
    pub const ALL: [Self; 3] = [Self::StartTls, Self::Tls, Self::Relay];

    /// Its place in `ALL` (per-kind counters are arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in logs, the start-up lines and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::Relay => "relay",
        }
    }

    /// Whether its sessions need the server certificate.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::StartTls | Self::Tls)
    }
}

impl std::fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener: where, and what it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub kind: ListenerKind,
}

/// Where the server certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// Where the upstream is.
#[derive(Clone, Debug)]
pub enum UpstreamSource {
    Url(Target),
    /// `--dev` without `--upstream`: the in-process sink.
    DevSink,
}

/// The relay listeners' settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub allow: AllowList,
    pub application: String,
    /// Read again on reload.
    pub token_file: PathBuf,
    pub credentials: Credentials,
}

/// What a reload (SIGHUP) reads again: the server certificate and key, the relay
/// token. Each is `None` where the configuration has nothing to read (a self-signed
/// `--dev` certificate, no relay listener).
#[derive(Clone, Debug)]
pub struct Reloaded {
    pub identity: Option<Identity>,
    pub relay_credentials: Option<Credentials>,
}

/// Where the admin listener binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    pub addr: SocketAddr,
    /// Asked for with `--admin` (a bind failure stops the start), rather than `--dev`'s
    /// default (a taken port is reported and skipped).
    pub required: bool,
}

/// Which peers speak the PROXY protocol.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Connections from these must begin with a header; none from elsewhere may.
    pub trusted: Networks,
    /// How long the header may take.
    pub timeout: Duration,
}

/// The upstream and how each call is made.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    pub source: UpstreamSource,
    /// The gRPC method path of the Notify call.
    pub method: PathAndQuery,
    /// Deadline of each call.
    pub timeout: Duration,
    /// PING interval and PONG deadline (`None`: no keepalive).
    pub keepalive: Option<Duration>,
    /// Extra CA certificates trusted for an https:// upstream.
    pub ca: Option<PathBuf>,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Every listener, in flag order: `--listen`, `--listen-tls`, `--listen-relay`.
    pub listeners: Vec<ListenerConfig>,
    /// Present whenever a listener uses TLS.
    pub tls: Option<TlsSource>,
    /// Present whenever there is a relay listener.
    pub relay: Option<RelayConfig>,
    /// How submission listeners read AUTH user names.
    pub auth: AuthPolicy,
    pub admin: Option<AdminConfig>,
    pub proxy: ProxyConfig,
    pub upstream: UpstreamConfig,
    pub shards: usize,
    /// Upstream calls in flight for one fan-out message.
    pub fanout_concurrency: usize,
    /// How long a drain may take before the sessions left are closed.
    pub drain_timeout: Duration,
    /// Connections at once: in the process, and from one address (0: no cap).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// How long an idle shard spins before sleeping (`None`: it sleeps at once).
    pub spin_before_park: Option<Duration>,
    pub hostname: String,
    pub limits: Limits,
    pub mime_limits: MimeLimits,
}

/// A configuration error, naming the flag at fault.
#[derive(Debug)]
pub enum ConfigError {
    Missing(&'static str),
    Tls(TlsError),
    RelayMissing(&'static str),
    RelayToken { path: PathBuf, reason: String },
    RelayExposed(SocketAddr),
    DefaultApplication(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(flag) => write!(f, "{flag} is required (or use --dev)"),
            Self::Tls(e) => write!(f, "--tls-cert/--tls-key: {e}"),
            Self::RelayMissing(flag) => write!(f, "--listen-relay needs {flag}"),
            Self::RelayToken { path, reason } => {
                write!(
                    f,
                    "invalid value for '--relay-token-file': {}: {reason}",
                    path.display()
                )
            }
            Self::DefaultApplication(code) => write!(
                f,
                "invalid value for '--default-application': {code:?} is empty or has control characters"
            ),
            Self::RelayExposed(addr) => write!(
                f,
                "--listen-relay {addr} is not a loopback address: give --relay-allow for the networks that may use it"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        let relay = relay_config(&args)?;
        let mut listeners: Vec<ListenerConfig> = [
            (&args.listen, ListenerKind::StartTls),
            (&args.listen_tls, ListenerKind::Tls),
            (&args.listen_relay, ListenerKind::Relay),
        ]
        .into_iter()
        .flat_map(|(addrs, kind)| addrs.iter().map(move |&addr| ListenerConfig { addr, kind }))
        .collect();
        if listeners.is_empty() {
            let addr = if args.dev {
                SocketAddr::from(([127, 0, 0, 1], 2525))
            } else {
                SocketAddr::from(([0, 0, 0, 0], 587))
            };
            listeners.push(ListenerConfig {
                addr,
                kind: ListenerKind::StartTls,
            });
        }
        // A relay-only sidecar needs no certificate.
        let needs_tls = listeners.iter().any(|l| l.kind.uses_tls());
        let tls = match (needs_tls, args.tls_cert, args.tls_key) {
            (false, _, _) => None,
            (true, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
            (true, None, None) if args.dev => Some(TlsSource::SelfSigned),
            (true, None, _) => return Err(ConfigError::Missing("--tls-cert")),
            (true, Some(_), None) => return Err(ConfigError::Missing("--tls-key")),
        };
        let source = match args.upstream {
            Some(target) => UpstreamSource::Url(target),
            None if args.dev => UpstreamSource::DevSink,
            None => return Err(ConfigError::Missing("--upstream")),
        };
        let upstream = UpstreamConfig {
            source,
            method: args.upstream_method,
            timeout: args.upstream_timeout,
            keepalive: Some(args.upstream_keepalive).filter(|d| !d.is_zero()),
            ca: args.upstream_ca,
        };
        let hostname = args.hostname.unwrap_or_else(system_hostname);
        let shards = args.shards.map_or_else(online_cores, usize::from);
        let default_application = match args.default_application {
            Some(code) if code.is_empty() || code.chars().any(char::is_control) => {
                return Err(ConfigError::DefaultApplication(code));
            }
            other => other,
        };
        let limits = Limits {
            max_message_size: args.max_message_size as usize,
            max_recipients: args.max_recipients as usize,
            command_timeout: args.command_timeout,
            max_messages_per_connection: args.max_messages_per_connection as usize,
            greet_pause: args.greet_pause,
            max_auth_failures: args.max_auth_failures,
            min_data_rate: args.min_data_rate,
            bare_lf: match args.bare_lf {
                BareLfArg::Reject => BareLf::Reject,
                BareLfArg::Normalize => BareLf::Normalize,
            },
            ..Limits::default()
        };
        Ok(Self {
            listeners,
            tls,
            relay,
            auth: AuthPolicy {
                default_application,
            },
            admin: match args.admin {
                Some(addr) => Some(AdminConfig {
                    addr,
                    required: true,
                }),
                None if args.dev => Some(AdminConfig {
                    addr: SocketAddr::from(([127, 0, 0, 1], 9925)),
                    required: false,
                }),
                None => None,
            },
            proxy: ProxyConfig {
                trusted: Networks::new(args.proxy_trusted),
                timeout: args.proxy_timeout,
            },
            upstream,
            shards,
            fanout_concurrency: usize::from(args.fanout_concurrency),
            drain_timeout: args.drain_timeout,
            max_connections: args.max_connections as usize,
            max_connections_per_ip: args.max_connections_per_ip as usize,
            spin_before_park: args.spin_before_park.filter(|d| !d.is_zero()),
            hostname,
            limits,
            mime_limits: MimeLimits::default(),
        })
    }

    /// The server identity (when a listener uses TLS), loaded or generated once for all
    /// shards. For a self-signed one, also its certificate in PEM.
    pub fn identity(&self) -> Result<Option<(Identity, Option<String>)>, ConfigError> {
        let identity = match &self.tls {
            None => return Ok(None),
            Some(TlsSource::Files { cert, key }) => {
                Identity::from_pem_files(cert, key).map(|id| (id, None))
            }
            Some(TlsSource::SelfSigned) => {
                let names = vec![self.hostname.clone(), "localhost".into()];
                Identity::self_signed(&names).map(|(id, pem)| (id, Some(pem)))
            }
        };
        identity.map(Some).map_err(ConfigError::Tls)
    }

    /// Reads the reloadable files again, all or nothing: a certificate that does not
    /// load, or does not match its key, is an error and nothing changes.
    pub fn reload(&self) -> Result<Reloaded, ConfigError> {
        let identity = match &self.tls {
            Some(TlsSource::Files { cert, key }) => {
                let identity = Identity::from_pem_files(cert, key).map_err(ConfigError::Tls)?;
                // Builds (and so checks) a server configuration from the pair.
                identity.server_config().map_err(ConfigError::Tls)?;
                Some(identity)
            }
            Some(TlsSource::SelfSigned) | None => None,
        };
        let relay_credentials = match &self.relay {
            Some(relay) => Some(relay_credentials(&relay.application, &relay.token_file)?),
            None => None,
        };
        Ok(Reloaded {
            identity,
            relay_credentials,
        })
    }

    pub fn upstream_trust(&self) -> Result<UpstreamTrust, ConfigError> {
        UpstreamTrust::new(self.upstream.ca.as_deref()).map_err(ConfigError::Tls)
    }
}

fn relay_config(args: &Args) -> Result<Option<RelayConfig>, ConfigError> {
    if args.listen_relay.is_empty() {
        return Ok(None);
    }
    let application = args
        .relay_application
        .clone()
        .ok_or(ConfigError::RelayMissing("--relay-application"))?;
    let path = args
        .relay_token_file
        .clone()
        .ok_or(ConfigError::RelayMissing("--relay-token-file"))?;
    let credentials = relay_credentials(&application, &path)?;
    let allow = AllowList::new(args.relay_allow.clone());
    if let Some(&exposed) = args.listen_relay.iter().find(|a| !a.ip().is_loopback())
        && allow.is_empty()
    {
        return Err(ConfigError::RelayExposed(exposed));
    }
    Ok(Some(RelayConfig {
        allow,
        application,
        token_file: path,
        credentials,
    }))
}

/// The relay's credentials: the application code and the token read from its file.
fn relay_credentials(application: &str, path: &Path) -> Result<Credentials, ConfigError> {
    let token_error = |reason: String| ConfigError::RelayToken {
        path: path.to_owned(),
        reason,
    };
    let token = std::fs::read_to_string(path).map_err(|e| token_error(e.to_string()))?;
    let credentials = crate::smtp::auth::credentials(
        application.as_bytes(),
        token.trim().as_bytes(),
    )
    .map_err(|_| {
        token_error("the application code or the token is empty or has control characters".into())
    })?;
    // The gateway's own token: its refusal upstream is the operator's to fix.
    Ok(Credentials {
        owner: TokenOwner::Gateway,
        ..credentials
    })
}

fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let args = Args::try_parse_from(std::iter::once("smtpgate").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        Config::from_args(args).map_err(|e| e.to_string())
    }

    #[test]
    fn dev_defaults() {
        let c = parse(&["--dev"]).expect("dev alone is enough");
        assert_eq!(
            c.listeners,
            [ListenerConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 2525)),
                kind: ListenerKind::StartTls
            }]
        );
        assert!(matches!(c.tls, Some(TlsSource::SelfSigned)));
        assert!(c.relay.is_none());
        assert!(matches!(c.upstream.source, UpstreamSource::DevSink));
        assert_eq!(c.upstream.timeout, Duration::from_secs(30));
        assert_eq!(c.limits.max_message_size, 26_214_400);
        assert_eq!(c.limits.max_recipients, 50);
    }

    #[test]
    fn production_requires_certificate_and_upstream() {
        assert!(parse(&[]).unwrap_err().contains("--tls-cert"));
        let err = parse(&["--tls-cert", "c", "--tls-key", "k"]).unwrap_err();
        assert!(err.contains("--upstream"), "{err}");
        let c = parse(&[
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--upstream",
            "http://10.0.0.5:50051",
        ])
        .expect("valid");
        assert_eq!(
            c.listeners,
            [ListenerConfig {
                addr: SocketAddr::from(([0, 0, 0, 0], 587)),
                kind: ListenerKind::StartTls
            }]
        );
    }

    #[test]
    fn listeners_of_every_kind_in_flag_order() {
        let token = token_file("kinds", "tok");
        let c = parse(&[
            "--dev",
            "--listen-relay",
            "127.0.0.1:2526",
            "--relay-application",
            "A",
            "--relay-token-file",
            &token,
            "--listen-tls",
            "127.0.0.1:465,[::1]:465",
            "--listen",
            "127.0.0.1:587",
        ])
        .expect("valid");
        let kinds: Vec<(String, &str)> = c
            .listeners
            .iter()
            .map(|l| (l.addr.to_string(), l.kind.name()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("127.0.0.1:587".to_owned(), "starttls"),
                ("127.0.0.1:465".to_owned(), "tls"),
                ("[::1]:465".to_owned(), "tls"),
                ("127.0.0.1:2526".to_owned(), "relay"),
            ]
        );
        // Implicit TLS alone replaces the default listener and needs the certificate.
        let c = parse(&["--dev", "--listen-tls", "127.0.0.1:465"]).expect("valid");
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].kind, ListenerKind::Tls);
        let err = parse(&[
            "--listen-tls",
            "127.0.0.1:465",
            "--upstream",
            "http://127.0.0.1:1",
        ])
        .unwrap_err();
        assert!(err.contains("--tls-cert"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_flag() {
        assert!(
            parse(&["--dev", "--upstream-timeout", "soon"])
                .unwrap_err()
                .contains("--upstream-timeout")
        );
        assert!(
            parse(&["--dev", "--shards", "0"])
                .unwrap_err()
                .contains("--shards")
        );
        assert!(
            parse(&["--dev", "--bare-lf", "maybe"])
                .unwrap_err()
                .contains("--bare-lf")
        );
        assert!(
            parse(&["--dev", "--upstream", "ftp://x"])
                .unwrap_err()
                .contains("--upstream")
        );
        assert!(
            parse(&["--dev", "--upstream-method", "x"])
                .unwrap_err()
                .contains("--upstream-method")
        );
        assert!(
            parse(&["--dev", "--hostname", "a b"])
                .unwrap_err()
                .contains("--hostname")
        );
        assert!(
            parse(&["--dev", "--listen", "nowhere"])
                .unwrap_err()
                .contains("--listen")
        );
    }

    fn token_file(name: &str, contents: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("smtpgate-config-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write token file");
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn relay_only_needs_no_certificate_and_opens_no_starttls_listener() {
        let token = token_file("relay-only", "  tok-123\n");
        let c = parse(&[
            "--listen-relay",
            "127.0.0.1:2526",
            "--relay-application",
            "APP",
            "--relay-token-file",
            &token,
            "--upstream",
            "http://127.0.0.1:50051",
        ])
        .expect("valid");
        assert!(c.listeners.iter().all(|l| l.kind == ListenerKind::Relay) && c.tls.is_none());
        let relay = c.relay.expect("relay");
        assert_eq!(relay.credentials.application, "APP");
        assert_eq!(
            relay.credentials.token.expose(),
            "tok-123",
            "whitespace and newline trimmed"
        );
    }

    #[test]
    fn relay_needs_credentials_and_an_allow_list_off_loopback() {
        let token = token_file("exposed", "tok");
        let base = ["--dev", "--listen-relay", "0.0.0.0:2526"];
        let err = parse(&base).unwrap_err();
        assert!(err.contains("--relay-application"), "{err}");
        let err = parse(&[&base[..], &["--relay-application", "A"]].concat()).unwrap_err();
        assert!(err.contains("--relay-token-file"), "{err}");
        let with_creds = [
            &base[..],
            &["--relay-application", "A", "--relay-token-file", &token],
        ]
        .concat();
        let err = parse(&with_creds).unwrap_err();
        assert!(err.contains("--relay-allow"), "{err}");
        let c =
            parse(&[&with_creds[..], &["--relay-allow", "10.0.0.0/8"]].concat()).expect("valid");
        assert!(
            c.listeners.iter().all(|l| l.kind == ListenerKind::Relay) && c.tls.is_none(),
            "relay only, even with --dev"
        );
        let empty = token_file("empty", " \n");
        let err = parse(&[
            "--dev",
            "--listen-relay",
            "127.0.0.1:1",
            "--relay-application",
            "A",
            "--relay-token-file",
            &empty,
        ])
        .unwrap_err();
        assert!(err.contains("--relay-token-file"), "{err}");
        let err = parse(&["--dev", "--relay-allow", "10.0.0.1/8"]).unwrap_err();
        assert!(err.contains("--relay-allow"), "{err}");
    }

    #[test]
    fn default_application() {
        assert_eq!(
            parse(&["--dev"]).expect("valid").auth,
            AuthPolicy::default()
        );
        let c = parse(&["--dev", "--default-application", "APP-1"]).expect("valid");
        assert_eq!(c.auth.default_application.as_deref(), Some("APP-1"));
        let err = parse(&["--dev", "--default-application", ""]).unwrap_err();
        assert!(err.contains("--default-application"), "{err}");
    }

    #[test]
    fn durations_and_modes() {
        let c = parse(&[
            "--dev",
            "--upstream-timeout",
            "500ms",
            "--command-timeout",
            "5s",
            "--bare-lf",
            "normalize",
        ])
        .expect("valid");
        assert_eq!(c.upstream.timeout, Duration::from_millis(500));
        assert_eq!(c.limits.command_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.bare_lf, BareLf::Normalize);
    }
}
