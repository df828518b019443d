//! `smtpgate-load`: the bundled load generator. Speaks real SMTP (STARTTLS, AUTH,
//! PIPELINING) and measures latency against message size and recipient count: the
//! sweep is the cross product of `--size` and `--rcpts`, each cell bounded by
//! `--duration` or `--count`, closed-loop or at a fixed `--rate`.
#![allow(clippy::disallowed_methods)] // A tool: it may read the clock.

mod client;
mod idle;
mod message;
mod report;
// Shared with smtpgate-sink, which also draws `unit()`.
#[allow(dead_code)]
#[path = "../rng.rs"]
mod rng;
mod run;
mod stats;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use mimalloc::MiMalloc;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

use client::{AcceptAnyCertificate, Auth, Mechanism, Target};
use report::{CellResult, human_size};
use run::{Bound, Plan, Progress};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "smtpgate-load",
    version,
    about = "Load generator for SMTP submission (smtpgate or any server)"
)]
struct Args {
    /// Server to load (an operator's own; our tests only ever use 127.0.0.1).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2525")]
    target: String,

    /// Concurrent connections.
    #[arg(long, short = 'c', value_name = "C", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,

    /// Executor threads driving the connections. [default: min(cores, C)]
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,

    /// Time per cell (e.g. 30s). Default 10s unless --count is given.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, conflicts_with = "count")]
    duration: Option<Duration>,

    /// Messages per cell.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Open loop: total messages per second across all connections (latency at a fixed
    /// offered load, corrected for coordinated omission). Without it: closed loop, max
    /// throughput.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,

    /// Message sizes, comma-separated (B, KiB, MiB, KB, MB).
    #[arg(long, value_name = "SIZES", default_value = "1KiB", value_delimiter = ',', value_parser = parse_size)]
    size: Vec<usize>,

    /// Recipient counts, comma-separated.
    #[arg(long, value_name = "NS", default_value = "1", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=100_000))]
    rcpts: Vec<u32>,

    /// Extra header added to every message, as a mailer sends it, e.g.
    /// 'X-PM-Tag: welcome' or 'X-SMTPAPI: {...}' (repeatable; long values are folded).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = message::parse_header)]
    headers: Vec<String>,

    /// Messages per connection before reconnecting (0 = one message per connection,
    /// which measures handshakes). [default: keep each connection for the whole cell]
    #[arg(long, value_name = "N")]
    messages_per_conn: Option<u64>,

    /// Use STARTTLS (the default).
    #[arg(long, overrides_with = "no_tls")]
    tls: bool,

    /// Plain SMTP (for a relay listener).
    #[arg(long)]
    no_tls: bool,

    /// Accept any server certificate (a --dev gateway's self-signed one).
    #[arg(long)]
    insecure: bool,

    /// Resume TLS sessions (tickets) on new connections, as a mail client with a session
    /// cache does. Off by default: every connection pays a full handshake, the worst case.
    #[arg(long)]
    tls_resume: bool,

    /// Trust this CA (PEM) for the server certificate, besides the webpki roots.
    #[arg(long, value_name = "PEM")]
    ca: Option<std::path::PathBuf>,

    /// Server name to verify (default: the target's host).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,

    /// AUTH credentials.
    #[arg(long, value_name = "USER:TOKEN")]
    auth: Option<String>,

    /// AUTH mechanism.
    #[arg(long, value_name = "MECH", default_value = "plain", value_parser = ["plain", "login"])]
    auth_mechanism: String,

    /// Send multipart/alternative messages with an HTML part.
    #[arg(long)]
    html_body: bool,

    /// Base64 attachments per message (they take half of the size).
    #[arg(long, value_name = "N", default_value_t = 0)]
    attachments: usize,

    /// Seed of the message content: the same seed sends the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,

    /// Write an HTML report with latency plots.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,

    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,

    /// Instead of sending mail: open N sessions (STARTTLS and AUTH as configured), hold
    /// them idle for --duration (default 10s), then close them. For sizing a host's
    /// memory per idle session.
    #[arg(long, value_name = "N", conflicts_with_all = ["count", "rate"])]
    idle: Option<u32>,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "kb" => 1000,
        "mb" => 1_000_000,
        other => return Err(format!("unknown unit {other:?} (B, KiB, MiB, KB, MB)")),
    };
    let size = n.checked_mul(factor).ok_or("size too large")?;
    if size < 256 {
        return Err("a message needs at least 256 bytes".into());
    }
    Ok(size)
}

fn fail(message: &str) -> ! {
    eprintln!("smtpgate-load: {message}");
    std::process::exit(2);
}

fn target(args: &Args) -> Result<Target, String> {
    let addr: SocketAddr = args
        .target
        .to_socket_addrs()
        .map_err(|e| format!("--target {}: {e}", args.target))?
        .next()
        .ok_or_else(|| format!("--target {}: no address", args.target))?;
    let auth = match &args.auth {
        None => None,
        Some(pair) => {
            let (user, token) = pair.split_once(':').ok_or("--auth must be USER:TOKEN")?;
            let mechanism = if args.auth_mechanism == "login" {
                Mechanism::Login
            } else {
                Mechanism::Plain
            };
            Some(Auth {
                user: user.to_owned(),
                token: token.to_owned(),
                mechanism,
            })
        }
    };
    let tls = if args.no_tls {
        None
    } else {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut config = if args.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(ca) = &args.ca {
                for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)
                    .map_err(|e| format!("--ca: {e}"))?
                {
                    roots
                        .add(cert.map_err(|e| format!("--ca: {e}"))?)
                        .map_err(|e| format!("--ca: {e}"))?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        if !args.tls_resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        let host = args.server_name.clone().unwrap_or_else(|| {
            args.target
                .rsplit_once(':')
                .map_or(args.target.clone(), |(h, _)| h.to_owned())
        });
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| format!("server name: {e}"))?;
        Some((Arc::new(config), name))
    };
    Ok(Target { addr, tls, auth })
}

fn main() {
    let args = Args::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 2 } else { 0 });
    });
    let target = target(&args).unwrap_or_else(|e| fail(&e));
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        fail("--rate must be a positive number");
    }
    let bound = match (args.count, args.duration) {
        (Some(n), _) => Bound::Count(n),
        (None, Some(d)) => Bound::Duration(d),
        (None, None) => Bound::Duration(Duration::from_secs(10)),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args
        .threads
        .map_or(cores, |t| t as usize)
        .min(args.concurrency as usize);
    let plan = Arc::new(Plan {
        target,
        concurrency: args.concurrency as usize,
        threads,
        bound,
        rate: args.rate,
        messages_per_conn: args.messages_per_conn.map(|n| n.max(1)),
        seed: args.seed,
    });
    let parameters = json!({
        "tool": "smtpgate-load",
        "version": env!("CARGO_PKG_VERSION"),
        "target": args.target,
        "tls": !args.no_tls,
        "tls_resume": !args.no_tls && args.tls_resume,
        "auth": args.auth.as_ref().map(|_| args.auth_mechanism.clone()),
        "concurrency": args.concurrency,
        "threads": threads,
        "rate": args.rate,
        "duration_s": match bound { Bound::Duration(d) => Some(d.as_secs_f64()), Bound::Count(_) => None },
        "count": match bound { Bound::Count(n) => Some(n), Bound::Duration(_) => None },
        "messages_per_conn": plan.messages_per_conn,
        "html_body": args.html_body,
        "attachments": args.attachments,
        "seed": args.seed,
        "sizes": args.size,
        "rcpts": args.rcpts,
    });

    if let Some(sessions) = args.idle {
        let hold = match bound {
            Bound::Duration(d) => d,
            Bound::Count(_) => Duration::from_secs(10),
        };
        let report = idle::hold(Arc::clone(&plan), sessions as usize, hold, args.quiet);
        println!("{report}");
        if let Some(path) = &args.json {
            let mut report = report;
            report["parameters"] = parameters;
            let text = serde_json::to_string_pretty(&report).unwrap_or_default();
            std::fs::write(path, text + "\n")
                .unwrap_or_else(|e| fail(&format!("--json {}: {e}", path.display())));
        }
        return;
    }

    let cells: Vec<(usize, usize)> = args
        .size
        .iter()
        .flat_map(|&size| args.rcpts.iter().map(move |&n| (size, n as usize)))
        .collect();
    let mut results = Vec::with_capacity(cells.len());
    for (index, &(size, rcpts)) in cells.iter().enumerate() {
        let prepared = Arc::new(message::prepare(message::Spec {
            size,
            rcpts,
            html: args.html_body,
            attachments: args.attachments,
            seed: args.seed,
            headers: &args.headers,
        }));
        let progress = Arc::new(Progress::default());
        let label = format!(
            "cell {}/{} size={} rcpts={rcpts}",
            index + 1,
            cells.len(),
            human_size(size)
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (plan2, progress2) = (Arc::clone(&plan), Arc::clone(&progress));
        std::thread::spawn(move || {
            let _ = done_tx.send(run::run_cell(plan2, index, prepared, progress2));
        });
        let started = Instant::now();
        let (stats, elapsed) = loop {
            match done_rx.recv_timeout(Duration::from_secs(1)) {
                Ok(result) => break result,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if !args.quiet {
                        let done = progress.done.load(Ordering::Relaxed);
                        let rate = done as f64 / started.elapsed().as_secs_f64();
                        let errors = progress.errors.load(Ordering::Relaxed);
                        eprint!("\r{label}: {done} msgs, {rate:.0} msg/s, {errors} errors   ");
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    fail("the cell's runner died")
                }
            }
        };
        if !args.quiet {
            eprintln!("\r{label}: done in {:.1}s{:30}", elapsed.as_secs_f64(), "");
        }
        if let Some(error) = &stats.first_error {
            eprintln!("  first error: {error}");
        }
        results.push(CellResult {
            size,
            rcpts,
            stats,
            elapsed,
        });
    }
    print!("{}", report::table(&results));
    if let Some(path) = &args.json {
        let report = report::json_report(parameters.clone(), &results);
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .unwrap_or_else(|e| fail(&format!("--json {}: {e}", path.display())));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html_report(&parameters, &results))
            .unwrap_or_else(|e| fail(&format!("--html {}: {e}", path.display())));
    }
}
