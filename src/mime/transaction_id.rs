//! The idempotency key: deterministic, so a client that retries after a `4xx` sends the
//! same key and the upstream can drop the duplicate. It covers the application and the
//! recipients (an MTA that splits one message over two envelopes must not be
//! deduplicated) plus the Message-ID, or the whole message when there is none.

use crate::mime::Envelope;

pub fn derive(envelope: Envelope<'_>, message_id: Option<&str>, body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    // Fields are length-prefixed, so no two field lists hash alike.
    let prefix = |h: &mut blake3::Hasher, len: usize| {
        h.update(&(len as u64).to_le_bytes());
    };
    prefix(&mut hasher, envelope.application.len());
    hasher.update(envelope.application.as_bytes());
    for recipient in envelope.recipients {
        prefix(&mut hasher, recipient.len());
        // Addresses are short: lower-case them through a stack buffer, not a String.
        for chunk in recipient.as_bytes().chunks(64) {
            let mut lower = [0u8; 64];
            for (l, b) in lower.iter_mut().zip(chunk) {
                *l = b.to_ascii_lowercase();
            }
            hasher.update(&lower[..chunk.len()]);
        }
    }
    const MESSAGE_ID: &[u8] = b"message-id:";
    match message_id {
        Some(id) => {
            prefix(&mut hasher, MESSAGE_ID.len() + id.len());
            hasher.update(MESSAGE_ID);
            hasher.update(id.as_bytes());
        }
        None => {
            prefix(&mut hasher, body.len());
            hasher.update(body);
        }
    }
    let hash = hasher.finalize();
    let mut out = String::with_capacity(32);
    for byte in &hash.as_bytes()[..16] {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 15), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(app: &'a str, rcpts: &'a [String]) -> Envelope<'a> {
        Envelope {
            application: app,
            recipients: rcpts,
        }
    }

    #[test]
    fn stable_and_sensitive_to_what_matters() {
        let r1 = vec!["a@x.example".to_owned()];
        let r2 = vec!["b@x.example".to_owned()];
        let k = derive(env("APP", &r1), Some("<m@x>"), b"one");
        assert_eq!(k.len(), 32);
        assert_eq!(
            k,
            derive(env("APP", &r1), Some("<m@x>"), b"other body, same id")
        );
        assert_ne!(k, derive(env("APP", &r2), Some("<m@x>"), b"one"));
        assert_ne!(k, derive(env("APP2", &r1), Some("<m@x>"), b"one"));
        assert_ne!(
            derive(env("A", &r1), None, b"x"),
            derive(env("A", &r1), None, b"y")
        );
    }
}
