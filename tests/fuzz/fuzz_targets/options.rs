//! The options mapping: several provider headers at once (merge order, fan-out groups,
//! extra recipients, keys). The input is split at 0xFF; each piece is the value of the
//! header its first byte picks.
#![no_main]

#[path = "dialect_common.rs"]
mod dialect_common;

const HEADERS: [&str; 16] = [
    "X-MSYS-API",
    "X-SMTPAPI",
    "X-PM-Tag",
    "X-PM-Metadata-k",
    "X-PM-KeepID",
    "X-PM-TrackOpens",
    "X-PM-TrackLinks",
    "SC-Custom-k",
    "X-Mailgun-Variables",
    "X-Mailgun-Tag",
    "X-Mailgun-Template-Variables",
    "X-MJ-Vars",
    "X-Mailin-Tag",
    "X-SES-MESSAGE-TAGS",
    "Idempotency-Key",
    "Message-ID",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut headers = Vec::new();
    for piece in data.split(|&b| b == 0xff) {
        let Some((&pick, value)) = piece.split_first() else { continue };
        headers.extend_from_slice(HEADERS[usize::from(pick) % HEADERS.len()].as_bytes());
        headers.extend_from_slice(b": ");
        headers.extend_from_slice(value);
        headers.extend_from_slice(b"\r\n");
    }
    dialect_common::check(&headers);
});
