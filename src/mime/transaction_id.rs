//! The idempotency key: deterministic, so a client that retries after a `4xx` sends the
//! same key and the upstream can drop the duplicate. It covers the application and the
//! recipients (an MTA that splits one message over two envelopes must not be
//! deduplicated) plus the Message-ID, or the whole message when there is none.

use crate::mime::Envelope;

pub fn derive(envelope: Envelope<'_>, message_id: Option<&str>, body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    let field = |h: &mut blake3::Hasher, bytes: &[u8]| {
        // Length-prefixed, so no two field lists hash alike.
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(&mut hasher, envelope.application.as_bytes());
    for recipient in envelope.recipients {
        field(&mut hasher, recipient.to_ascii_lowercase().as_bytes());
    }
    match message_id {
        Some(id) => field(&mut hasher, format!("message-id:{id}").as_bytes()),
        None => field(&mut hasher, body),
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
