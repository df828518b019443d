//! Shared by the dialect fuzz targets: a message whose top-level headers are given, mapped
//! as the gateway maps it. Checks: no panic; a refusal is one precise 5xx reply line; a
//! mapping has at least one call, no call without recipients, every recipient once, and
//! header recipients within their caps.

use std::time::{Duration, UNIX_EPOCH};

use bumpalo::Bump;
use smtpgate::mime::{self, Envelope, MimeLimits};

pub fn check(headers: &[u8]) {
    let mut message = b"From: Fuzz <f@example.com>\r\nSubject: fuzz\r\n".to_vec();
    message.extend_from_slice(headers);
    message.extend_from_slice(b"\r\n\r\nHello %name%\r\n");
    let recipients = vec!["r1@example.com".to_owned(), "r2@example.com".to_owned()];
    let envelope = Envelope {
        application: "FUZZ",
        recipients: &recipients,
        subaccount: None,
        received: UNIX_EPOCH + Duration::from_secs(1_796_515_200),
    };
    let scratch = Bump::new();
    match mime::map(envelope, &message, &MimeLimits::default(), &scratch) {
        Ok(mapped) => {
            assert!(!mapped.deliveries.is_empty());
            let mut seen = std::collections::HashSet::new();
            for delivery in &mapped.deliveries {
                assert!(!delivery.recipients.is_empty(), "a call to nobody");
                assert!(!delivery.transaction_id.is_empty());
                for r in &delivery.recipients {
                    assert!(seen.insert(r.to_ascii_lowercase()), "{r} twice");
                }
            }
            assert!(seen.len() <= 2 + 1000 + 1000, "header recipients are capped");
        }
        Err(error) => {
            let reply = error.reply().to_string();
            assert!(reply.starts_with('5'), "{reply}");
            assert!(reply.bytes().all(|b| (0x20..0x7f).contains(&b)), "{reply:?}");
        }
    }
}
