//! `smtpgate-load` as a process against a gateway on 127.0.0.1: the JSON report's shape
//! (a contract), TLS + AUTH, reply accounting, the open-loop mode, and that a seed
//! fixes the bytes sent. Counts only; nothing here depends on timing.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("smtpgate-load-test-{}-{name}", std::process::id()))
}

/// Runs the load generator; returns its JSON report.
fn load(args: &[&str]) -> Value {
    let json = temp_file(&format!(
        "{}.json",
        args.join("_").replace(['/', ':', ' '], "")
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_smtpgate-load"))
        .args(args)
        .args(["--quiet", "--json", json.to_str().expect("utf-8")])
        .output()
        .expect("smtpgate-load runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("msg/s"), "prints a table: {stdout}");
    serde_json::from_str(&std::fs::read_to_string(&json).expect("report written"))
        .expect("valid JSON")
}

#[test]
fn sweep_over_a_relay_listener_reports_every_cell() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "LOAD-APP", "tok", &[]);
    let target = gateway.relay.to_string();
    let html = temp_file("report.html");
    let report = load(&[
        "--target",
        &target,
        "--no-tls",
        "-c",
        "2",
        "--count",
        "10",
        "--size",
        "1KiB,4KiB",
        "--rcpts",
        "1,3",
        "--messages-per-conn",
        "0",
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    assert_eq!(report["concurrency"], 2);
    assert_eq!(report["tls"], false);
    let cells = report["cells"].as_array().expect("cells list");
    assert_eq!(cells.len(), 4, "the cross product of sizes and recipients");
    let shapes: Vec<(u64, u64)> = cells
        .iter()
        .map(|c| {
            (
                c["size"].as_u64().expect("size"),
                c["rcpts"].as_u64().expect("rcpts"),
            )
        })
        .collect();
    assert_eq!(shapes, [(1024, 1), (1024, 3), (4096, 1), (4096, 3)]);
    for cell in cells {
        assert_eq!(cell["messages"], 10);
        assert_eq!(cell["ok"], 10);
        assert_eq!(cell["replies"]["250"], 10);
        assert!(cell["msgs_per_s"].as_f64().expect("rate") > 0.0);
        assert!(cell["mb_per_s"].as_f64().expect("throughput") > 0.0);
        for key in ["p50", "p90", "p99", "p999", "max"] {
            assert!(cell["latency_us"][key].as_u64().expect(key) > 0, "{key}");
        }
        assert_eq!(cell["setup_us"]["count"], 10, "one connection per message");
    }
    let calls = upstream.calls();
    assert_eq!(calls.len(), 40);
    let with_three = calls
        .iter()
        .filter(|c| match &transactional(&c.request).target {
            Some(smtpgate::notify::notify_transactional::Target::Users(l)) => l.list.len() == 3,
            _ => false,
        })
        .count();
    assert_eq!(with_three, 20);
    let page = std::fs::read_to_string(&html).expect("html report written");
    assert!(page.contains("<svg") && page.contains("latency against message size"));
}

#[test]
fn starttls_and_auth_with_the_gateways_certificate() {
    let (upstream, gateway) = accepting_gateway();
    let ca = temp_file("gateway-ca.pem");
    std::fs::write(&ca, &gateway.cert_pem).expect("write cert");
    let target = gateway.addr.to_string();
    for mechanism in ["plain", "login"] {
        let report = load(&[
            "--target",
            &target,
            "--ca",
            ca.to_str().expect("utf-8"),
            "--server-name",
            "localhost",
            "--auth",
            "LOAD-APP:load-token",
            "--auth-mechanism",
            mechanism,
            "-c",
            "3",
            "--count",
            "9",
            "--html-body",
            "--attachments",
            "1",
        ]);
        assert_eq!(report["cells"][0]["ok"], 9, "{mechanism}");
    }
    let calls = upstream.calls();
    assert_eq!(calls.len(), 18);
    assert!(
        calls
            .iter()
            .all(|c| c.authorization.as_deref() == Some("Token load-token"))
    );
    let p = payload(&calls[0].request);
    assert!(p.body.contains("<html>") && p.attachments.len() == 1);
}

#[test]
fn refusals_are_counted_by_reply_code() {
    let upstream = TestUpstream::start(Behavior::Fail(tonic::Code::Unavailable, "down".into()));
    let gateway = RelayGateway::start(&upstream.url(), "A", "t", &[]);
    let target = gateway.relay.to_string();
    let report = load(&["--target", &target, "--no-tls", "-c", "2", "--count", "6"]);
    let cell = &report["cells"][0];
    assert_eq!(
        (cell["messages"].as_u64(), cell["ok"].as_u64()),
        (Some(6), Some(0))
    );
    assert_eq!(cell["replies"]["451"], 6);
}

#[test]
fn open_loop_and_unreachable_target_stay_bounded() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "A", "t", &[]);
    let target = gateway.relay.to_string();
    let report = load(&[
        "--target", &target, "--no-tls", "-c", "2", "--count", "10", "--rate", "200",
    ]);
    assert_eq!(report["cells"][0]["ok"], 10);
    assert_eq!(report["rate"], 200.0);

    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let report = load(&[
        "--target",
        &dead.to_string(),
        "--no-tls",
        "-c",
        "1",
        "--count",
        "3",
    ]);
    let cell = &report["cells"][0];
    assert_eq!(
        (cell["errors"].as_u64(), cell["ok"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(
        cell["first_error"]
            .as_str()
            .is_some_and(|e| e.contains("I/O")),
        "{cell}"
    );
}

#[test]
fn the_same_seed_sends_the_same_bytes() {
    let bodies = |seed: &str| {
        let upstream = TestUpstream::start(Behavior::Accept);
        let gateway = RelayGateway::start(&upstream.url(), "A", "t", &[]);
        let target = gateway.relay.to_string();
        load(&[
            "--target", &target, "--no-tls", "-c", "1", "--count", "3", "--seed", seed, "--size",
            "2KiB",
        ]);
        let mut calls: Vec<(String, String)> = upstream
            .calls()
            .iter()
            .map(|c| {
                (
                    transactional(&c.request).transaction_id.clone(),
                    payload(&c.request).body.clone(),
                )
            })
            .collect();
        calls.sort();
        calls
    };
    let first = bodies("7");
    assert_eq!(first.len(), 3);
    assert_eq!(first, bodies("7"));
    assert_ne!(first, bodies("8"));
}

#[test]
fn idle_mode_holds_sessions_open() {
    let (_upstream, gateway) = accepting_gateway();
    let target = gateway.addr.to_string();
    let json = temp_file("idle.json");
    let output = Command::new(env!("CARGO_BIN_EXE_smtpgate-load"))
        .args([
            "--target",
            &target,
            "--insecure",
            "--auth",
            "A:t",
            "--idle",
            "25",
            "--duration",
            "1s",
            "--quiet",
        ])
        .args(["--json", json.to_str().expect("utf-8")])
        .output()
        .expect("smtpgate-load runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("written")).expect("JSON");
    assert_eq!(report["idle_sessions_open"], 25, "{report}");
    assert_eq!(report["errors"], 0);
}
