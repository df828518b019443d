//! gRPC framing and the upstream's text: frame decoding of both messages and
//! `grpc-message` percent-decoding, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpgate::notify::{NotifyRequest, NotifyResponse};
use smtpgate::smtp::reply::sanitize_text;
use smtpgate::upstream::grpc;

fuzz_target!(|data: &[u8]| {
    let _ = grpc::decode::<NotifyResponse>(data, grpc::MAX_RESPONSE);
    let _ = grpc::decode::<NotifyRequest>(data, 1 << 20);
    let text = grpc::percent_decode(data);
    assert_eq!(grpc::percent_decode(grpc::percent_encode(&text).as_bytes()), text);
    let line = sanitize_text(&text);
    assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)) && line.len() <= 203);
});
