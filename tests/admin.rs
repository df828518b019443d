//! The admin listener (`--admin`): metric values after a known mix of outcomes, counted
//! exactly; `promtool check metrics` on a real scrape; `/healthz`; `/readyz` through
//! start and drain. Requests are made with curl.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::process::Spawned;
use common::*;

/// `GET path` with curl: (status, body).
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.parse().expect("status"), body.to_owned())
}

/// The sum over shards of a metric's samples whose labels include every `labels` pair.
fn sum(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let wanted = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (metric == name && wanted).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

struct Observed {
    _upstream: TestUpstream,
    config: smtpgate::config::Config,
    gateway: Gateway,
    admin: std::net::SocketAddr,
}

/// A `--dev` gateway on `shards` shards with an admin listener on a free port.
fn observed_gateway(behavior: Behavior, shards: &str, flags: &[&str]) -> Observed {
    use clap::Parser as _;
    let upstream = TestUpstream::start(behavior);
    let url = upstream.url();
    let base = [
        "smtpgate",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--hostname",
        "mx.test",
    ];
    let args = smtpgate::config::Args::try_parse_from(
        base.iter()
            .chain(&["--shards", shards, "--upstream", &url])
            .chain(flags),
    )
    .expect("flags");
    let config = smtpgate::config::Config::from_args(args).expect("config");
    let gateway = Gateway::from_config(&config);
    let admin = smtpgate::admin::start(
        "127.0.0.1:0".parse().expect("address"),
        Arc::clone(&gateway.server.telemetry),
    )
    .expect("admin listener");
    Observed {
        _upstream: upstream,
        config,
        gateway,
        admin,
    }
}

#[test]
fn outcomes_are_counted_exactly() {
    let o = observed_gateway(
        Behavior::FailRecipient("gone@example.com".into(), tonic::Code::NotFound),
        "2",
        &["--max-recipients", "2"],
    );
    let (status, before) = get(o.admin, "/metrics");
    assert_eq!(status, 200);
    let mut smtp = o.gateway.login();
    for _ in 0..3 {
        let reply = send(&mut smtp, &["r@example.com"], &simple_message("ok", "b"));
        assert_code(&reply, "250 2.0.0");
    }
    for _ in 0..2 {
        let reply = send(&mut smtp, &["gone@example.com"], &simple_message("no", "b"));
        assert_code(&reply, "550 5.1.1");
    }
    // A limit refusing RCPT counts as that message's reply.
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "250");
    smtp.cmd("RCPT TO:<a@example.com>");
    smtp.cmd("RCPT TO:<b@example.com>");
    assert_code(&smtp.cmd("RCPT TO:<c@example.com>"), "452 4.5.3");
    assert_code(&smtp.cmd("RSET"), "250");
    // A failed AUTH and a failed TLS handshake.
    let mut bad = o.gateway.tls_client();
    assert_code(&bad.cmd("AUTH PLAIN !!!"), "501");
    let mut broken = std::net::TcpStream::connect(o.gateway.addr).expect("connect");
    broken
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 512];
    std::io::Write::write_all(&mut broken, b"EHLO c\r\nSTARTTLS\r\n").expect("write");
    while !String::from_utf8_lossy(&seen).contains("220 2.0.0") {
        let n = std::io::Read::read(&mut broken, &mut chunk).expect("read");
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&chunk[..n]);
    }
    std::io::Write::write_all(&mut broken, b"this is not a ClientHello\r\n").expect("write");
    // Whatever alert comes back, then the end.
    let _ = std::io::Read::read_to_end(&mut broken, &mut Vec::new());

    let (_, after) = get(o.admin, "/metrics");
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sum(&after, name, labels) - sum(&before, name, labels)
    };
    assert_eq!(grew("smtpgate_messages_total", &[("reply", "250")]), 3.0);
    assert_eq!(grew("smtpgate_messages_total", &[("reply", "550")]), 2.0);
    assert_eq!(grew("smtpgate_messages_total", &[("reply", "452")]), 1.0);
    assert_eq!(
        grew("smtpgate_upstream_requests_total", &[("status", "OK")]),
        3.0
    );
    assert_eq!(
        grew(
            "smtpgate_upstream_requests_total",
            &[("status", "NOT_FOUND")]
        ),
        2.0
    );
    assert_eq!(grew("smtpgate_upstream_duration_seconds_count", &[]), 5.0);
    assert_eq!(grew("smtpgate_message_size_bytes_count", &[]), 5.0);
    assert_eq!(
        grew("smtpgate_message_size_bytes_bucket", &[("le", "1024")]),
        5.0,
        "small messages"
    );
    assert_eq!(
        grew("smtpgate_connections_total", &[("listener", "starttls")]),
        3.0
    );
    assert_eq!(grew("smtpgate_auth_failures_total", &[]), 1.0);
    assert_eq!(grew("smtpgate_tls_handshake_failures_total", &[]), 1.0);
    assert_eq!(
        sum(
            &after,
            "smtpgate_connections_active",
            &[("listener", "starttls")]
        ),
        2.0
    );
    assert_eq!(
        sum(&after, "smtpgate_upstream_connected", &[]),
        1.0,
        "one shard dialled"
    );
    assert_eq!(sum(&after, "smtpgate_draining", &[]), 0.0);
    assert!(after.contains("smtpgate_build_info{version=\""));
    assert!(
        after.contains("smtpgate_messages_total{shard=\"1\",reply=\"250\"}"),
        "per shard"
    );
}

#[test]
fn sessions_refused_by_their_limits_are_counted_by_reason() {
    let o = observed_gateway(
        Behavior::Accept,
        "1",
        &[
            "--greet-pause",
            "300ms",
            "--max-auth-failures",
            "1",
            "--command-timeout",
            "2s",
        ],
    );
    let (_, before) = get(o.admin, "/metrics");
    // Talks before the greeting.
    let mut eager = Smtp::connect_silent(o.gateway.addr);
    assert_code(&eager.cmd("EHLO spam.test"), "554 5.5.0");
    // Fails its one authentication.
    let mut guesser = o.gateway.tls_client();
    let reply = guesser.cmd("AUTH PLAIN !!!");
    assert_code(&reply, "501");
    assert_code(&guesser.read_reply(), "421 4.7.0");
    // Says nothing after the greeting.
    let mut idle = Smtp::connect(o.gateway.addr);
    assert_code(&idle.read_reply(), "421 4.4.2");
    // Not SMTP.
    let mut browser = Smtp::connect(o.gateway.addr);
    assert_code(&browser.cmd("GET / HTTP/1.1"), "500 5.5.1");

    let reasons = [
        ("greet_pause", 1.0),
        ("max_auth_failures", 1.0),
        ("timeout", 1.0),
        ("protocol", 1.0),
        ("errors", 0.0),
    ];
    let mut after = String::new();
    eventually("every refusal counted", || {
        after = get(o.admin, "/metrics").1;
        reasons.iter().all(|&(reason, n)| {
            let labels = [("reason", reason)];
            let name = "smtpgate_connections_rejected_total";
            sum(&after, name, &labels) - sum(&before, name, &labels) == n
        })
    });
    let grew = |name: &str| sum(&after, name, &[]) - sum(&before, name, &[]);
    assert_eq!(grew("smtpgate_auth_failures_total"), 1.0);
}

#[test]
fn a_real_scrape_passes_promtool() {
    let o = observed_gateway(Behavior::Accept, "1", &[]);
    let mut smtp = o.gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "250",
    );
    let (_, scrape) = get(o.admin, "/metrics");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus: see .ci/run)");
    std::io::Write::write_all(promtool.stdin.as_mut().expect("stdin"), scrape.as_bytes())
        .expect("write");
    let output = promtool.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "{}{}\n{scrape}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn not_ready_while_starting() {
    // The binary starts the admin listener before the shards, with this telemetry.
    let telemetry = Arc::new(smtpgate::shard::metrics::Telemetry::new(2));
    let admin = smtpgate::admin::start("127.0.0.1:0".parse().expect("address"), telemetry)
        .expect("admin listener");
    let (status, body) = get(admin, "/readyz");
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "starting\nshard 0: upstream not connected\nshard 1: upstream not connected\n"
    );
    assert_eq!(get(admin, "/healthz").0, 200);
}

#[test]
fn health_and_readiness_through_a_drain() {
    let o = observed_gateway(Behavior::Accept, "1", &[]);
    assert_eq!(get(o.admin, "/healthz"), (200, "ok\n".to_owned()));
    let (status, body) = get(o.admin, "/readyz");
    assert_eq!(status, 200);
    assert!(body.starts_with("ready\nshard 0: upstream "), "{body}");
    assert_eq!(get(o.admin, "/nothing").0, 404);
    // Reload counts, good or not.
    smtpgate::signals::reload(&o.gateway.server.controller(), &o.config);
    o.gateway.server.controller().drain(Duration::from_secs(5));
    let (status, body) = get(o.admin, "/readyz");
    assert_eq!(status, 503);
    assert!(body.starts_with("draining\n"), "{body}");
    assert_eq!(get(o.admin, "/healthz").0, 200, "alive while it drains");
    let (_, scrape) = get(o.admin, "/metrics");
    assert_eq!(sum(&scrape, "smtpgate_draining", &[]), 1.0);
    assert_eq!(
        sum(&scrape, "smtpgate_reloads_total", &[("result", "ok")]),
        1.0
    );
}

#[test]
fn the_binary_serves_admin_when_asked_and_refuses_a_taken_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_smtpgate"))
        .args(["--dev", "--listen", "127.0.0.1:0", "--admin", &taken_addr])
        .output()
        .expect("runs");
    assert!(
        !output.status.success(),
        "an explicit --admin that cannot bind stops the start"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("--admin"));

    let process = Spawned::start(
        Command::new(env!("CARGO_BIN_EXE_smtpgate"))
            .args([
                "--dev",
                "--shards",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
            ])
            .stderr(Stdio::null()),
    );
    assert!(process.next_line().starts_with("smtpgate listening on "));
    let line = process.next_line();
    let admin = line
        .strip_prefix("smtpgate admin on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .expect("address");
    assert_eq!(get(admin, "/readyz").0, 200);
    assert_eq!(get(admin, "/metrics").0, 200);
}
