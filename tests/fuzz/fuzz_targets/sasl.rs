//! SASL PLAIN and LOGIN responses from arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpgate::smtp::auth;

fuzz_target!(|response: &[u8]| {
    if let Ok(credentials) = auth::plain(response) {
        assert!(!credentials.application.is_empty() && !credentials.token.expose().is_empty());
    }
    let _ = auth::login_field(response);
});
