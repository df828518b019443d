//! DATA reception, differentially: the streaming receiver (fed in chunks whose size the
//! first byte picks) must agree with the naive reference model on where the message
//! ends, on the unstuffed body, and on bare line endings and the size cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::BareLf;
use smtpgate::smtp::data::{Outcome, Receiver, reference};

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let chunk = usize::from(first % 64).max(1);
    let limit = if first & 64 == 0 { usize::MAX } else { 100 };
    let expected = reference::expect(input);
    let mut rx = Receiver::new(limit, BareLf::Reject);
    let mut body = Vec::new();
    let end = reference::feed_in_chunks(&mut rx, input, chunk, &mut body);
    assert_eq!(end, expected.end);
    assert!(body.len() <= limit);
    if end.is_none() {
        return;
    }
    match rx.outcome() {
        Outcome::Complete => assert!(!expected.bare && body == expected.body),
        Outcome::TooBig => assert!(expected.bare || expected.body.len() > limit),
        Outcome::BareLineEnding => assert!(expected.bare),
    }
    // Normalising mode never ends anywhere else either.
    let mut rx = Receiver::new(limit, BareLf::Normalize);
    let mut body = Vec::new();
    let normal_end = rx.feed(input, &mut body);
    assert_eq!(normal_end, expected.end);
});
