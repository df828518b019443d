//! MIME → Notify on arbitrary messages: a request or a precise refusal, never a panic.
#![no_main]

use bumpalo::Bump;
use libfuzzer_sys::fuzz_target;
use smtpgate::mime::{self, Envelope, MimeLimits};

fuzz_target!(|body: &[u8]| {
    let recipients = vec!["r@example.com".to_owned()];
    let envelope = Envelope { application: "FUZZ", recipients: &recipients, ..Default::default() };
    let _ = mime::to_notify(envelope, body, &MimeLimits::default(), &Bump::new());
});
