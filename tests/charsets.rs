//! Charsets as real senders write them, checked against Python's own codecs:
//! - the alias table in `src/mime/charset/generated.rs` is exactly what
//!   `tests/tools/gen_charsets.py` prints from Python's codec registry;
//! - for every CJK and Cyrillic codec Python has (and the labels senders write that
//!   Python's `email` does not), a message built by Python's `email` package
//!   (`tests/tools/charset_messages.py`) maps with its Subject, From name and text body
//!   decoded back to the text it was written from.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bumpalo::Bump;
use smtpgate::mime::{self, Envelope, MimeLimits};
use smtpgate::notify::notify_request::Kind;

fn python(script: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/");
    let output = Command::new("python3")
        .arg(format!("{path}{script}"))
        .output()
        .expect("python3 runs (install it: see .ci/run)");
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn the_alias_table_is_what_python_s_registry_gives() {
    let generated = python("gen_charsets.py");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/mime/charset/generated.rs"
    ))
    .expect("generated.rs");
    assert!(
        generated == committed,
        "src/mime/charset/generated.rs is stale: python3 tests/tools/gen_charsets.py > src/mime/charset/generated.rs"
    );
}

/// CRLF line endings, as DATA delivers them.
fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 20);
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn python_email_messages_in_every_cjk_and_cyrillic_charset() {
    let cases = python("charset_messages.py");
    let recipients = vec!["r@example.com".to_owned()];
    let envelope = Envelope {
        application: "A",
        recipients: &recipients,
        ..Default::default()
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for line in cases.lines() {
        let case: serde_json::Value = serde_json::from_str(line).expect("json line");
        let label = case["label"].as_str().expect("label");
        let text = case["text"].as_str().expect("text");
        let eml = crlf(
            &STANDARD
                .decode(case["eml"].as_str().expect("eml"))
                .expect("b64"),
        );
        let requests = mime::to_notify(envelope, &eml, &MimeLimits::default(), &Bump::new())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let Some(Kind::Transactional(t)) = &requests[0].kind else {
            panic!("{label}: not transactional")
        };
        let payload = t.email_payload.as_ref().expect("payload");
        let subject = payload.subject.get("default").map(String::as_str);
        let name = payload.from.as_ref().map(|f| f.name.as_str());
        let body = payload.body.trim_end();
        if subject != Some(text) || name != Some(text) || body != text {
            failures.push(format!(
                "{label}: subject {subject:?}, from name {name:?}, body {body:?} (want {text:?})"
            ));
        }
        count += 1;
    }
    assert!(count >= 50, "every charset was tried ({count})");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
