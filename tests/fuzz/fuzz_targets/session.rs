//! Whole sessions from arbitrary bytes: the first byte picks the chunk size, the rest
//! is what the client sends. Events are answered as a driver would. Checks: no panic,
//! every output line a well-formed reply, input consumed or held within one line,
//! nothing accepted after close, submissions within the limits.
#![no_main]

use std::rc::Rc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::{Event, Limits, Mode, Reply, Session, SessionConfig};

const ACCEPTED: Reply = Reply::new(250, "2.0.0", "OK fuzz");

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    let limits = Limits { max_message_size: 4096, max_recipients: 5, ..Limits::default() };
    let config = Rc::new(SessionConfig::new("fuzz.test", limits, Mode::Submission(Default::default())));
    let mut now = Instant::now();
    let mut session = Session::new(config, now);
    let mut pending: Vec<u8> = Vec::new();
    for piece in input.chunks(chunk) {
        pending.extend_from_slice(piece);
        loop {
            let used = session.handle_bytes(now, &pending);
            assert!(used <= pending.len());
            pending.drain(..used);
            match session.poll_event() {
                Some(Event::StartTls) => session.handle_tls_established(now),
                Some(Event::Submit(s)) => {
                    assert!(s.body.len() <= 4096 && !s.recipients.is_empty() && s.recipients.len() <= 5);
                    session.handle_verdict(now, &ACCEPTED);
                }
                None => break,
            }
        }
        check_output(session.transmit());
        session.transmitted();
        if session.is_closed() {
            assert_eq!(session.handle_bytes(now, b"NOOP\r\n"), 0);
            return;
        }
        assert!(pending.len() <= 12_288);
        now += Duration::from_secs(1);
    }
    session.handle_timeout(now + Duration::from_secs(301));
    check_output(session.transmit());
});

fn check_output(output: &[u8]) {
    for line in output.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() >= 6 && line.ends_with(b"\r\n"), "{line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit) && matches!(line[3], b' ' | b'-'));
        assert!(line[4..line.len() - 2].iter().all(|&b| (0x20..0x7f).contains(&b)));
    }
}
