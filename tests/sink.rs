//! `smtpgate-sink` as a process: the gateway forwards to it, it injects the statuses and
//! latency it is told to, and `--record` sums up at SIGTERM.

mod common;

use std::process::Command;

use common::sink::Sink;
use common::*;

#[test]
fn sink_accepts_and_records() {
    let sink = Sink::start(&[]);
    let gateway = Gateway::start(&sink.url);
    let mut smtp = gateway.login();
    for _ in 0..3 {
        assert_code(
            &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
            "250 2.0.0 Ok: queued as SINK-",
        );
    }
    let summary = sink.summary();
    assert_eq!(summary["requests"], 3);
    assert_eq!(summary["by_status"]["OK"], 3);
    assert!(summary["bytes"].as_u64().expect("bytes") > 3 * 100);
}

#[test]
fn sink_injects_statuses() {
    let sink = Sink::start(&["--error-rate", "UNAVAILABLE=1"]);
    let gateway = Gateway::start(&sink.url);
    let mut smtp = gateway.login();
    let reply = send(&mut smtp, &["r@example.com"], &simple_message("s", "b"));
    assert_code(&reply, "451 4.4.1");
    assert!(reply.contains("injected by smtpgate-sink"), "{reply}");
    assert_eq!(sink.summary()["by_status"]["UNAVAILABLE"], 1);

    let sink = Sink::start(&["--error-rate", "resource_exhausted=1.0"]);
    let gateway = Gateway::start(&sink.url);
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "452 4.5.3",
    );
}

#[test]
fn sink_latency_trips_the_gateway_deadline() {
    let sink = Sink::start(&["--latency", "5s"]);
    let gateway = Gateway::start_with(&sink.url, &["--upstream-timeout", "200ms"]);
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "451 4.4.1",
    );
}

#[test]
fn sink_rejects_bad_flags() {
    for flags in [
        &["--error-rate", "NOPE=0.1"][..],
        &["--error-rate", "UNAVAILABLE=2"],
        &["--latency", "soon"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_smtpgate-sink"))
            .args(flags)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{flags:?}");
    }
}

#[test]
fn print_shows_every_request_with_its_provider_fields() {
    let sink = Sink::start(&["--print"]);
    let gateway = Gateway::start_with(&sink.url, &["--default-application", "DEF"]);
    let mut smtp = gateway.login_as("SMTP_Injection:X-MSYS-SUBACCOUNT=7", "key");
    let message = "From: a@example.com\r\nSubject: s\r\n\
        X-MSYS-API: {\"campaign_id\": \"c1\", \"metadata\": {\"n\": 2.5}}\r\n\
        X-SMTPAPI: {\"pubsub\": {\"%p%\": 1989.0}, \"send_at\": 4102444800}\r\n\r\nb\r\n";
    let reply = send(&mut smtp, &["r@example.com"], message);
    // send_at in 2100 is refused: no call.
    assert_code(
        &reply,
        "550 5.6.0 X-SMTPAPI send_at is more than 72 hours ahead",
    );
    let message = message.replace(", \"send_at\": 4102444800", "");
    assert_code(&send(&mut smtp, &["r@example.com"], &message), "250 2.0.0");
    let line: serde_json::Value =
        serde_json::from_str(&sink.process.next_line()).expect("one JSON line per request");
    assert_eq!(line["authorization"], "Token <redacted>");
    let t = &line["request"]["transactional"];
    assert_eq!(t["application"], "DEF");
    assert_eq!(t["campaign"], "c1");
    assert_eq!(t["meta_data"]["subaccount"], 7);
    assert_eq!(t["meta_data"]["metadata"]["n"], 2.5);
    assert_eq!(t["dynamic_content_placeholders"]["%p%"], "1989.0");
    assert!(
        line["message_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("SINK-"))
    );
    sink.summary();
}
