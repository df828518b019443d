//! Golden tests: every `tests/golden/NNN-name.eml` is mapped to Notify requests and
//! compared, as JSON, with `NNN-name.json` beside it (one object for one call, a list
//! for a fan-out), or, when the mapping refuses the message, its SMTP reply with
//! `NNN-name.reply`. The `.eml` files are stored with
//! LF line endings for readability and converted to CRLF first, which is what the
//! gateway always hands the mapping (DATA is CRLF on the wire, or normalised to it).
//! They cover RFC 2047 subjects and display names in many charsets, quoted-printable
//! and base64 bodies, nested multiparts, attachments and missing headers (001-099),
//! every row of dialects.md's tables (100-189) and MIME corrections (190-). The
//! messages arrive at 2026-12-06T00:00:00Z (for `send_at`).
//!
//! After a deliberate mapping change, regenerate with `SMTPGATE_BLESS=1 cargo test
//! --test golden` and review the diff of the `.json` files.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bumpalo::Bump;
use smtpgate::mime::{self, Envelope, MimeLimits};
use smtpgate::notify::json;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    cases.sort();
    cases
}

fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
    for (i, &b) in lf.iter().enumerate() {
        if b == b'\n' && (i == 0 || lf[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// When every golden message arrives.
const RECEIVED: u64 = 1_796_515_200;

/// The rendered mapping and the extension of the file that holds what it must be.
fn render(eml: &Path) -> (String, &'static str) {
    let body = crlf(&std::fs::read(eml).expect("readable .eml"));
    let recipients = vec![
        "rcpt@example.com".to_owned(),
        "second@example.com".to_owned(),
    ];
    let envelope = Envelope {
        application: "GOLD-APP",
        recipients: &recipients,
        received: UNIX_EPOCH + Duration::from_secs(RECEIVED),
        ..Default::default()
    };
    match mime::to_notify(envelope, &body, &MimeLimits::default(), &Bump::new()) {
        Ok(requests) => {
            // One call is one JSON object; a fan-out is the list of its calls.
            let rendered = match &requests[..] {
                [one] => json::request(one),
                many => serde_json::Value::Array(many.iter().map(json::request).collect()),
            };
            let mut text = serde_json::to_string_pretty(&rendered).expect("json");
            text.push('\n');
            (text, "json")
        }
        Err(error) => (format!("{}\n", error.reply()), "reply"),
    }
}

#[test]
fn golden_eml_to_notify_json() {
    let cases = cases();
    assert!(cases.len() >= 20, "the golden corpus is present");
    let bless = std::env::var_os("SMTPGATE_BLESS").is_some();
    let mut failures = Vec::new();
    for eml in &cases {
        let (actual, extension) = render(eml);
        let expected_path = eml.with_extension(extension);
        if bless {
            for stale in ["json", "reply"] {
                let _ = std::fs::remove_file(eml.with_extension(stale));
            }
            std::fs::write(&expected_path, &actual).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{}: no {} (got:\n{actual})",
                eml.display(),
                expected_path.display()
            )
        });
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                eml.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Mutations of the corpus (truncations, flipped bytes, spliced boundaries) must map or
/// be refused with a precise error, never panic: mail-parser's robustness plus our caps.
#[test]
fn mutated_corpus_never_panics() {
    let mut state = 0x1234_5678_9ABC_DEF0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let corpus: Vec<Vec<u8>> = cases()
        .iter()
        .map(|p| crlf(&std::fs::read(p).expect("read")))
        .collect();
    let recipients = vec!["r@example.com".to_owned()];
    let envelope = Envelope {
        application: "A",
        recipients: &recipients,
        ..Default::default()
    };
    let scratch = Bump::new();
    for _ in 0..3000 {
        let mut input = corpus[next() as usize % corpus.len()].clone();
        for _ in 0..(next() % 8) {
            let at = next() as usize % input.len().max(1);
            match next() % 4 {
                0 => input.truncate(at),
                1 if !input.is_empty() => {
                    let i = at.min(input.len() - 1);
                    input[i] = next() as u8;
                }
                2 => {
                    let splice: &[u8] = [
                        &b"\r\n--B\r\n"[..],
                        b"=?utf-8?B?",
                        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n",
                        b"=\r\n",
                    ][next() as usize % 4];
                    input.splice(
                        at.min(input.len())..at.min(input.len()),
                        splice.iter().copied(),
                    );
                }
                _ => {
                    let end = (at + (next() % 64) as usize).min(input.len());
                    let copy = input[at.min(end)..end].to_vec();
                    input.extend_from_slice(&copy);
                }
            }
        }
        let _ = mime::to_notify(envelope, &input, &MimeLimits::default(), &scratch);
    }
}
