//! The upstream cutting its connection while a call is in flight (`smtpgate-sink
//! --faults`): a GOAWAY lets the call finish, a TCP reset or a close fails it with a
//! transient reply, and the retry — under the same idempotency key — goes over a new
//! connection. Each sink first holds every call 5 s, then cuts at 3 s: a call answered
//! after 5 s, or refused before, was in flight at the cut.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::time::{Duration, Instant};

use common::sink::Sink;
use common::*;

/// The message's call as the sink printed it: (idempotency key, message code).
fn key_and_code(call: &serde_json::Value) -> (String, String) {
    let key = call["request"]["transactional"]["transaction_id"].as_str();
    let code = call["message_code"].as_str();
    (
        key.expect("a key").to_owned(),
        code.expect("a code").to_owned(),
    )
}

/// Sends one message through a gateway in front of a sink that holds calls 5 s and cuts
/// its connections at 3 s this way; returns the first reply, how long it took, the
/// retry's reply and the sink's calls and summary.
fn cut_in_flight(cut: &str) -> (String, Duration, String, Vec<serde_json::Value>) {
    let sink = Sink::start(&["--print", "--faults", &format!("latency=5s:3s,{cut}:60s")]);
    let gateway = Gateway::start_with(&sink.url, &["--upstream-timeout", "10s"]);
    let mut smtp = gateway.login();
    let message = simple_message("in flight", "b");
    let sent = Instant::now();
    let first = send(&mut smtp, &["r@example.com"], &message);
    let took = sent.elapsed();
    let retry = send(&mut smtp, &["r@example.com"], &message);
    (first, took, retry, sink.stop())
}

#[test]
fn goaway_lets_the_call_in_flight_finish_and_the_next_goes_over_a_new_connection() {
    let (first, took, retry, mut lines) = cut_in_flight("goaway");
    assert_code(&first, "250 2.0.0");
    assert!(took >= Duration::from_secs(5), "answered after the hold");
    assert_code(&retry, "250 2.0.0");
    let summary = lines.pop().expect("summary");
    assert_eq!(summary["connections_cut"], 1, "{summary}");
    assert_eq!(summary["by_status"]["OK"], 2, "{summary}");
}

#[test]
fn a_reset_fails_the_call_in_flight_transiently_and_the_retry_keeps_its_key() {
    for cut in ["reset", "close"] {
        let (first, took, retry, mut lines) = cut_in_flight(cut);
        assert_code(&first, "451 4.4.1");
        if cut == "reset" {
            // A TCP reset indeed (SO_LINGER 0), not a FIN.
            assert!(first.contains("connection reset"), "{first}");
        }
        assert!(
            took < Duration::from_secs(5),
            "{cut}: refused before the answer"
        );
        assert_code(&retry, "250 2.0.0");
        let summary = lines.pop().expect("summary");
        assert_eq!(summary["connections_cut"], 1, "{cut}: {summary}");
        // The upstream saw the message twice under one key: it can drop the second.
        let calls: Vec<_> = lines.iter().map(key_and_code).collect();
        assert_eq!(calls.len(), 2, "{cut}: {calls:?}");
        assert_eq!(calls[0].0, calls[1].0, "{cut}: one key");
        assert!(retry.contains(&calls[1].1), "{cut}: {retry} names the code");
    }
}
