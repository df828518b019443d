//! SendGrid's and SendCloud's `X-SMTPAPI`: arbitrary bytes as its value, raw and as
//! base64 (SendCloud's form), so the JSON behind the base64 is fuzzed too.
#![no_main]

use base64::Engine as _;

#[path = "dialect_common.rs"]
mod dialect_common;

libfuzzer_sys::fuzz_target!(|value: &[u8]| {
    dialect_common::check(&[b"X-SMTPAPI: ", value].concat());
    let encoded = base64::engine::general_purpose::STANDARD.encode(value);
    dialect_common::check(format!("X-SMTPAPI: {encoded}").as_bytes());
});
