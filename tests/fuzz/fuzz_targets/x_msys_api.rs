//! SparkPost's `X-MSYS-API`: arbitrary bytes as its value (folding included).
#![no_main]

#[path = "dialect_common.rs"]
mod dialect_common;

libfuzzer_sys::fuzz_target!(|value: &[u8]| {
    dialect_common::check(&[b"X-MSYS-API: ", value].concat());
});
