//! The other JSON headers (Mailgun's variables and template variables, Mailjet's vars),
//! and the one-line forms (SES tags, idempotency keys, Postmark's flags), each given the
//! same arbitrary value.
#![no_main]

#[path = "dialect_common.rs"]
mod dialect_common;

const HEADERS: [&str; 8] = [
    "X-Mailgun-Variables",
    "X-Mailgun-Template-Variables",
    "X-MJ-Vars",
    "X-SES-MESSAGE-TAGS",
    "Idempotency-Key",
    "X-PM-TrackLinks",
    "X-PM-Metadata-k",
    "SC-Custom-k",
];

libfuzzer_sys::fuzz_target!(|value: &[u8]| {
    for name in HEADERS {
        dialect_common::check(&[name.as_bytes(), b": ", value].concat());
    }
});
