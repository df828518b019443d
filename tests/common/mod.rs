//! Shared pieces of the end-to-end tests: a real gRPC upstream (tonic), the gateway
//! started in-process on 127.0.0.1, and a blocking SMTP client over real sockets and
//! real TLS (rustls, verifying the gateway's certificate).
#![allow(clippy::disallowed_methods)] // Tests may read the clock.
#![allow(dead_code)]

pub mod client;
pub mod process;
pub mod sink;
pub mod upstream;

use std::net::SocketAddr;

use clap::Parser as _;
use smtpgate::config::{Args, Config, ListenerKind};

pub use client::Smtp;
pub use upstream::{Behavior, TestUpstream};

/// A gateway running in this process (one shard unless a test asks for more).
pub struct Gateway {
    pub addr: SocketAddr,
    /// The self-signed certificate clients must trust.
    pub cert_pem: String,
    pub server: smtpgate::shard::Server,
}

impl Gateway {
    pub fn start(upstream: &str) -> Self {
        Self::start_with(upstream, &[])
    }

    /// Starts with extra command-line flags, parsed exactly as the binary parses them.
    pub fn start_with(upstream: &str, flags: &[&str]) -> Self {
        let base = ["--dev", "--listen", "127.0.0.1:0"];
        Self::from_config(&config(upstream, &base, flags))
    }

    pub fn from_config(config: &Config) -> Self {
        let server = smtpgate::shard::start(config).expect("gateway starts");
        Self {
            addr: server.addrs(ListenerKind::StartTls)[0],
            cert_pem: server
                .self_signed_pem
                .clone()
                .expect("--dev generates a certificate"),
            server,
        }
    }

    /// A client that went through EHLO, STARTTLS, EHLO and AUTH PLAIN.
    pub fn login(&self) -> Smtp {
        self.login_as("APP-CODE", "TOKEN-1")
    }

    pub fn login_as(&self, application: &str, token: &str) -> Smtp {
        let mut smtp = self.tls_client();
        let reply = smtp.auth_plain(application, token);
        assert_code(&reply, "235 2.7.0");
        smtp
    }

    /// A client after EHLO, STARTTLS and a second EHLO.
    pub fn tls_client(&self) -> Smtp {
        let mut smtp = Smtp::connect(self.addr);
        smtp.cmd("EHLO client.test");
        smtp.starttls(&self.cert_pem);
        assert_code(&smtp.cmd("EHLO client.test"), "250-mx.test");
        smtp
    }
}

/// A configuration from flags, parsed exactly as the binary parses them: one shard,
/// host name `mx.test`, the given upstream, then `base` and `flags`.
pub fn config(upstream: &str, base: &[&str], flags: &[&str]) -> Config {
    let common = [
        "smtpgate",
        "--shards",
        "1",
        "--hostname",
        "mx.test",
        "--upstream",
        upstream,
    ];
    let args =
        Args::try_parse_from(common.iter().chain(base).chain(flags)).expect("valid test flags");
    Config::from_args(args).expect("valid test config")
}

/// Waits (bounded, so a bug fails instead of hanging) until `done` holds. Not a
/// timing assertion: 30 s is only the point where waiting longer makes no sense.
#[track_caller]
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < give_up,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs a Python script (`python3 -c script PORT CAFILE`) that talks to a gateway on
/// `port`, trusting `cert_pem`; fails the test with its stderr if it fails.
pub fn run_python(script: &str, port: u16, cert_pem: &str) -> String {
    static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let ca = std::env::temp_dir().join(format!(
        "smtpgate-python-ca-{}-{}.pem",
        std::process::id(),
        FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&ca, cert_pem).expect("write CA");
    let output = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .arg(&ca)
        .output()
        .expect("python3 runs (install it: see .ci/run)");
    let _ = std::fs::remove_file(&ca);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// An upstream that accepts everything, and a gateway in front of it.
pub fn accepting_gateway() -> (TestUpstream, Gateway) {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start(&upstream.url());
    (upstream, gateway)
}

/// Asserts a reply starts with a code (and enhanced status), showing the reply if not.
#[track_caller]
pub fn assert_code(reply: &str, expected: &str) {
    assert!(
        reply.starts_with(expected),
        "expected {expected:?}, got {reply:?}"
    );
}

/// A plain message with the headers the tests need.
pub fn simple_message(subject: &str, body: &str) -> String {
    format!(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{}@test>\r\n\r\n{body}\r\n",
        subject.len() + body.len()
    )
}

/// MAIL, RCPT for each recipient and DATA, each asserted; the client may then send
/// the body.
pub fn begin_data(smtp: &mut Smtp, recipients: &[&str]) {
    assert_code(&smtp.cmd("MAIL FROM:<envelope@example.com>"), "250 2.1.0");
    for rcpt in recipients {
        assert_code(&smtp.cmd(&format!("RCPT TO:<{rcpt}>")), "250 2.1.5");
    }
    assert_code(&smtp.cmd("DATA"), "354");
}

/// Sends a whole transaction and returns the final reply.
pub fn send(smtp: &mut Smtp, recipients: &[&str], message: &str) -> String {
    begin_data(smtp, recipients);
    smtp.data(message)
}

/// The transactional part of a request (the gateway builds nothing else).
pub fn transactional(
    request: &smtpgate::notify::NotifyRequest,
) -> &smtpgate::notify::NotifyTransactional {
    match &request.kind {
        Some(smtpgate::notify::notify_request::Kind::Transactional(t)) => t,
        other => panic!("not a transactional request: {other:?}"),
    }
}

pub fn payload(request: &smtpgate::notify::NotifyRequest) -> &smtpgate::notify::EmailPayload {
    transactional(request)
        .email_payload
        .as_ref()
        .expect("email_payload is set")
}

/// Starts an accepting upstream and a gateway, logs in, sends one message to
/// `recipients`, asserts `250`, and returns the request the upstream received.
pub fn forward_one(recipients: &[&str], message: &str) -> smtpgate::notify::NotifyRequest {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let reply = send(&mut smtp, recipients, message);
    assert_code(&reply, "250 2.0.0 Ok: queued as MSG-1");
    upstream.only_call().request
}

/// A gateway with a relay listener (and no STARTTLS one unless `flags` add `--listen`).
pub struct RelayGateway {
    pub relay: SocketAddr,
    pub server: smtpgate::shard::Server,
    pub config: Config,
    /// The `--relay-token-file` (a test may rewrite it and reload).
    pub token_file: std::path::PathBuf,
}

impl RelayGateway {
    pub fn start(
        upstream: &str,
        application: &str,
        token_file_contents: &str,
        flags: &[&str],
    ) -> Self {
        let token_file = std::env::temp_dir().join(format!(
            "smtpgate-relay-token-{}-{}",
            std::process::id(),
            TOKEN_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&token_file, token_file_contents).expect("write token file");
        let token_path = token_file.to_str().expect("utf-8 path").to_owned();
        let base = [
            "--listen-relay",
            "127.0.0.1:0",
            "--relay-application",
            application,
            "--relay-token-file",
            &token_path,
        ];
        let config = config(upstream, &base, flags);
        let server = smtpgate::shard::start(&config).expect("gateway starts");
        Self {
            relay: server.addrs(ListenerKind::Relay)[0],
            server,
            config,
            token_file,
        }
    }
}

static TOKEN_FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
