//! Upstream faults, counted: several clients send distinct messages while
//! `smtpgate-sink` cycles through every fault it has — error storms by status, answers
//! later than the deadline (the upstream then has a call the client was told `451` for),
//! GOAWAY with calls in flight, TCP resets, connections closed, and the server down (port
//! refused) then back on the same port. A client that gets `4xx` retries the same
//! message, as an MTA does. At the end every message is in the sink, all of one
//! message's calls carry one idempotency key however often it was retried (so the
//! upstream can drop the duplicates), no two messages share a key, and the gateway
//! answers `250` at once after the faults stop. Bounded to a few seconds;
//! `loadtest/faults.sh` runs the same test long (`SMTPGATE_FAULT_CLIENTS`,
//! `SMTPGATE_FAULT_MESSAGES`) and prints its figures.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::sink::Sink;
use common::*;

/// Clients and messages per client: small in `cargo test`, larger from the script.
fn size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One cycle of the sink's faults (1.5 s), against `--upstream-timeout 300ms`: each cut
/// comes while calls answered late (150 ms) are in flight; a call during the 600 ms
/// latency phase holds its client for the deadline, so an idle phase follows it.
const FAULTS: &str = "status=UNAVAILABLE:40ms,ok:40ms,latency=150ms:60ms,goaway:200ms,\
    status=RESOURCE_EXHAUSTED:40ms,ok:40ms,latency=150ms:60ms,reset:200ms,\
    status=INTERNAL:40ms,ok:40ms,latency=150ms:60ms,close:200ms,down:120ms,ok:40ms,\
    latency=600ms:40ms,ok:300ms";

#[test]
fn nothing_is_lost_and_retries_repeat_their_key_under_cycling_faults() {
    let clients = size("SMTPGATE_FAULT_CLIENTS", 4);
    let messages = size("SMTPGATE_FAULT_MESSAGES", 400);
    let started = std::time::Instant::now();
    let sink = Sink::start(&["--print", "--faults", FAULTS]);
    let gateway = Gateway::start_with(&sink.url, &["--upstream-timeout", "300ms"]);
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let mut smtp = gateway.login();
            std::thread::spawn(move || {
                // Replies that were not 250, by code and enhanced status.
                let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
                for n in 0..messages {
                    let subject = format!("c{client}-m{n}");
                    let message = simple_message(&subject, "body");
                    let message = message.replace("@test>", &format!("-{subject}@test>"));
                    let first = std::time::Instant::now();
                    loop {
                        let reply = send(&mut smtp, &["r@example.com"], &message);
                        if reply.starts_with("250 ") {
                            break;
                        }
                        assert!(reply.starts_with('4'), "{subject}: {reply}");
                        *refusals.entry(reply[..9].to_owned()).or_default() += 1;
                        assert!(
                            first.elapsed() < Duration::from_secs(20),
                            "{subject} never accepted: {reply}"
                        );
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                refusals
            })
        })
        .collect();
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        for (reply, n) in worker.join().expect("client") {
            *refusals.entry(reply).or_default() += n;
        }
    }
    let tries = clients * messages + refusals.values().sum::<usize>();
    assert!(
        tries > clients * messages,
        "the faults made clients retry ({tries} tries)"
    );
    let elapsed = started.elapsed();

    // Alive within a second of the faults stopping (SIGUSR1 ends them at the sink's next
    // phase boundary, at most 120 ms on; a call may meet the last phase's fault).
    sink.process.signal("USR1");
    let calmed = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(150));
    let mut smtp = gateway.login();
    let after = simple_message("after the faults", "b");
    let mut reply = send(&mut smtp, &["r@example.com"], &after);
    while !reply.starts_with("250 ") && calmed.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
        reply = send(&mut smtp, &["r@example.com"], &after);
    }
    assert_code(&reply, "250 2.0.0");
    let recovered = calmed.elapsed();

    // The sink's calls and summary (its faults stop with it).
    let mut lines = sink.stop();
    let summary = lines.pop().expect("the summary");
    let phases = &summary["fault_phases"];
    for kind in ["storm", "latency", "goaway", "reset", "close", "down"] {
        assert!(
            phases[kind].as_u64() > Some(0),
            "no {kind} phase: {summary}"
        );
    }
    let cut = summary["connections_cut"].as_u64().expect("cut count");
    assert!(cut > 0, "no connection was cut: {summary}");

    // Every message reached the upstream, and all of one message's calls share a key.
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    lines.retain(|call| {
        call["request"]["transactional"]["email_payload"]["subject"]["default"]
            != "after the faults"
    });
    for call in &lines {
        let t = &call["request"]["transactional"];
        let subject = t["email_payload"]["subject"]["default"]
            .as_str()
            .unwrap_or_else(|| panic!("no subject: {call}"));
        let key = t["transaction_id"].as_str().expect("idempotency key");
        keys.entry(subject.to_owned())
            .or_default()
            .insert(key.to_owned());
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

    println!(
        "faults: {} messages from {clients} clients in {:.1} s, fault phases {phases}, \
         {cut} connections cut, {tries} tries (refused: {refusals:?}), {} upstream calls ({} repeated with their \
         message's key), lost 0, unsafe duplicates 0, 250 again {:.0} ms after the \
         faults stopped",
        clients * messages,
        elapsed.as_secs_f64(),
        lines.len(),
        lines.len() - keys.len(),
        recovered.as_secs_f64() * 1000.0
    );
}
