//! The session's limits as state: the first bytes pick the limits (recipients, size,
//! auth failures, messages per connection, greet pause, data rate), the rest is what
//! the client sends, a chunk per second of fake time. Checks: well-formed replies,
//! submissions within every limit, never more messages than the cap, nothing taken
//! after the end.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::testing::{Dialog, well_formed};
use smtpgate::smtp::{Limits, Reply};

const ACCEPTED: Reply = Reply::new(250, "2.0.0", "OK fuzz");
const REFUSED_TOKEN: Reply = Reply::new(535, "5.7.8", "Bad application code or API token");

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, e, rest @ ..] = data else { return };
    let limits = Limits {
        max_recipients: usize::from(a % 8) + 1,
        max_message_size: 64 + usize::from(*b) * 16,
        max_auth_failures: u32::from(c % 4) + 1,
        max_messages_per_connection: usize::from(d % 4),
        greet_pause: Duration::from_secs(u64::from(e % 2)),
        command_timeout: Duration::from_secs(5),
        min_data_rate: 64,
        ..Limits::default()
    };
    let cap = limits.max_messages_per_connection;
    let mut dialog = Dialog::builder().limits(limits.clone()).build_without_greeting_check();
    let mut submitted = 0;
    for (i, chunk) in rest.chunks(17).enumerate() {
        dialog.pending.extend_from_slice(chunk);
        // Every third message the upstream refuses the token (auth failures count).
        let verdict = if i % 3 == 2 { &REFUSED_TOKEN } else { &ACCEPTED };
        for s in dialog.drive(verdict) {
            submitted += 1;
            assert!(s.body.len() <= limits.max_message_size);
            assert!(!s.recipients.is_empty() && s.recipients.len() <= limits.max_recipients);
        }
        assert!(cap == 0 || submitted <= cap, "{submitted} messages over a cap of {cap}");
        assert!(well_formed(dialog.session.transmit()));
        dialog.session.transmitted();
        if dialog.session.is_closed() {
            assert_eq!(dialog.session.handle_bytes(dialog.now, b"NOOP\r\n"), 0);
            return;
        }
        dialog.now += Duration::from_secs(1);
        dialog.session.handle_timeout(dialog.now);
    }
});
