//! Upstream faults, counted: several clients send distinct messages while the upstream
//! cycles through refusals, error storms and answers later than the deadline (the
//! upstream then has a call the client was told `451` for). A client that gets `4xx`
//! retries the same message, as an MTA does. At the end every message is accepted,
//! every message's calls carry one idempotency key however often it was retried (so
//! the upstream can drop the duplicates), and the gateway answers `250` at once after
//! the faults stop. Bounded to a few seconds; the faults are statuses and latency
//! (connection-level faults: tests/upstream_failures.rs). `loadtest/faults.sh` runs
//! the same test long (`SMTPGATE_FAULT_CLIENTS`, `SMTPGATE_FAULT_MESSAGES`) and prints
//! its figures.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

/// Clients and messages per client: small in `cargo test`, larger from the script.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn nothing_is_lost_and_retries_repeat_their_key_under_cycling_faults() {
    let clients = size("SMTPGATE_FAULT_CLIENTS", 4);
    let messages = size("SMTPGATE_FAULT_MESSAGES", 100);
    let started = std::time::Instant::now();
    let upstream = Arc::new(TestUpstream::start(Behavior::Fail(
        tonic::Code::Unavailable,
        "storm".into(),
    )));
    let gateway = Gateway::start_with(&upstream.url(), &["--upstream-timeout", "300ms"]);
    let stop = Arc::new(AtomicBool::new(false));
    let faults = {
        let (upstream, stop) = (Arc::clone(&upstream), Arc::clone(&stop));
        std::thread::spawn(move || {
            // A fault first, so that no client finishes before the faults begin.
            let cycle = [
                Behavior::Fail(tonic::Code::Unavailable, "storm".into()),
                Behavior::Accept,
                Behavior::Delay(Duration::from_millis(600)),
                Behavior::Accept,
                Behavior::Fail(tonic::Code::ResourceExhausted, "slow down".into()),
                Behavior::Fail(tonic::Code::Internal, "oops".into()),
            ];
            let mut faults = 0;
            for behavior in cycle.iter().cycle() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                upstream.set_behavior(behavior.clone());
                faults += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
            upstream.set_behavior(Behavior::Accept);
            faults
        })
    };
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let mut smtp = gateway.login();
            std::thread::spawn(move || {
                let mut tries = 0;
                for n in 0..messages {
                    let subject = format!("c{client}-m{n}");
                    let message = simple_message(&subject, "body");
                    let message = message.replace("@test>", &format!("-{subject}@test>"));
                    loop {
                        tries += 1;
                        assert!(tries < 10_000, "{subject} never accepted");
                        let reply = send(&mut smtp, &["r@example.com"], &message);
                        if reply.starts_with("250 ") {
                            break;
                        }
                        assert!(reply.starts_with('4'), "{subject}: {reply}");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                tries
            })
        })
        .collect();
    let tries: usize = workers.into_iter().map(|c| c.join().expect("client")).sum();
    stop.store(true, Ordering::SeqCst);
    let faults = faults.join().expect("fault thread");
    assert!(
        tries > clients * messages,
        "the faults made clients retry ({tries} tries)"
    );
    assert!(faults > 3, "faults cycled ({faults})");

    // Alive at once after the faults.
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("after", "b")),
        "250 2.0.0",
    );

    // Every message reached the upstream, and all of one message's calls share a key.
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for call in upstream.calls() {
        let subject = payload(&call.request).subject["default"].clone();
        keys.entry(subject)
            .or_default()
            .insert(transactional(&call.request).transaction_id.clone());
    }
    for client in 0..clients {
        for n in 0..messages {
            let subject = format!("c{client}-m{n}");
            let message_keys = keys
                .get(&subject)
                .unwrap_or_else(|| panic!("{subject} lost"));
            assert_eq!(message_keys.len(), 1, "{subject}: retries changed the key");
        }
    }
    let all: BTreeSet<&String> = keys.values().flatten().collect();
    assert_eq!(all.len(), keys.len(), "no two messages share a key");
    let calls = upstream.calls().len();
    println!(
        "faults: {} messages from {clients} clients in {:.1} s, {faults} fault phases, \
         {tries} tries, {calls} upstream calls ({} repeated with their message's key), \
         lost 0, unsafe duplicates 0",
        clients * messages + 1,
        started.elapsed().as_secs_f64(),
        calls - keys.len()
    );
}
