//! Whole sessions from arbitrary bytes: the first byte picks the chunk size, the rest
//! is what the client sends. Events are answered as a driver would (`smtp::testing`).
//! Checks: no panic, every output line a well-formed reply, input consumed or held
//! within one line, nothing accepted after close, submissions within the limits.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::testing::{Dialog, well_formed};
use smtpgate::smtp::{Limits, Reply};

const ACCEPTED: Reply = Reply::new(250, "2.0.0", "OK fuzz");

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    let limits = Limits { max_message_size: 4096, max_recipients: 5, ..Limits::default() };
    let mut d = Dialog::builder().limits(limits).build();
    for piece in input.chunks(chunk) {
        d.pending.extend_from_slice(piece);
        for s in d.drive(&ACCEPTED) {
            assert!(s.body.len() <= 4096 && !s.recipients.is_empty() && s.recipients.len() <= 5);
        }
        assert!(well_formed(d.session.transmit()), "{:?}", d.session.transmit());
        d.session.transmitted();
        if d.session.is_closed() {
            assert_eq!(d.session.handle_bytes(d.now, b"NOOP\r\n"), 0);
            return;
        }
        assert!(d.pending.len() <= 12_288);
        d.now += Duration::from_secs(1);
    }
    d.session.handle_timeout(d.now + Duration::from_secs(301));
    assert!(well_formed(d.session.transmit()));
});
