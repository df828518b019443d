//! The idempotency key: deterministic, so a client that retries after a `4xx` sends the
//! same key and the upstream can drop the duplicate. It covers the application and the
//! envelope recipients (an MTA that splits one message over two envelopes past a
//! recipient limit must not be taken for a retry) plus the client's own idempotency key,
//! else the Message-ID, else the whole message. A fan-out's calls each get a key derived
//! from the message's and their own recipients, so a retry repeats every one of them.

use crate::mime::Envelope;

/// What identifies the message besides its envelope.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// `Idempotency-Key` / `Resend-Idempotency-Key`.
    ClientKey(&'a str),
    MessageId(&'a str),
    /// No Message-ID: the message itself.
    Body(&'a [u8]),
}

/// Fields are length-prefixed, so no two field lists hash alike.
fn put(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Addresses hash lower-cased, through a stack buffer rather than a String.
fn put_address(hasher: &mut blake3::Hasher, address: &str) {
    hasher.update(&(address.len() as u64).to_le_bytes());
    for chunk in address.as_bytes().chunks(64) {
        let mut lower = [0u8; 64];
        for (l, b) in lower.iter_mut().zip(chunk) {
            *l = b.to_ascii_lowercase();
        }
        hasher.update(&lower[..chunk.len()]);
    }
}

pub fn derive(envelope: Envelope<'_>, source: Source<'_>) -> String {
    let mut hasher = blake3::Hasher::new();
    put(&mut hasher, envelope.application.as_bytes());
    for recipient in envelope.recipients {
        put_address(&mut hasher, recipient);
    }
    let (tag, value): (&[u8], &[u8]) = match source {
        Source::ClientKey(key) => (b"idempotency-key:", key.as_bytes()),
        Source::MessageId(id) => (b"message-id:", id.as_bytes()),
        Source::Body(body) => (b"", body),
    };
    hasher.update(&((tag.len() + value.len()) as u64).to_le_bytes());
    hasher.update(tag);
    hasher.update(value);
    hex(hasher.finalize())
}

/// The key of one call of a fan-out: the message's key and that call's recipients.
pub fn for_group(message_key: &str, recipients: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    put(&mut hasher, b"group");
    put(&mut hasher, message_key.as_bytes());
    for recipient in recipients {
        put_address(&mut hasher, recipient);
    }
    hex(hasher.finalize())
}

fn hex(hash: blake3::Hash) -> String {
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
            ..Envelope::default()
        }
    }

    #[test]
    fn stable_and_sensitive_to_what_matters() {
        let r1 = vec!["a@x.example".to_owned()];
        let r2 = vec!["b@x.example".to_owned()];
        let id = Source::MessageId("<m@x>");
        let k = derive(env("APP", &r1), id);
        assert_eq!(k.len(), 32);
        assert_eq!(k, derive(env("APP", &r1), Source::MessageId("<m@x>")));
        assert_ne!(k, derive(env("APP", &r2), id));
        assert_ne!(k, derive(env("APP2", &r1), id));
        assert_ne!(
            derive(env("A", &r1), Source::Body(b"x")),
            derive(env("A", &r1), Source::Body(b"y"))
        );
        let client = derive(env("A", &r1), Source::ClientKey("k-1"));
        assert_ne!(client, derive(env("A", &r2), Source::ClientKey("k-1")));
        assert_ne!(client, derive(env("A", &r1), Source::MessageId("k-1")));
    }

    #[test]
    fn group_keys_repeat_and_differ_by_group() {
        let a = vec!["a@x".to_owned()];
        let b = vec!["b@x".to_owned()];
        assert_eq!(for_group("K", &a), for_group("K", &a));
        assert_ne!(for_group("K", &a), for_group("K", &b));
        assert_ne!(for_group("K", &a), for_group("L", &a));
    }
}
