//! Header addresses: `From`/`Reply-To` to a Notify `Address`, and the URL of
//! `List-Unsubscribe`; the copy of the headers whose encoded words mail-parser
//! misreads.

use bumpalo::Bump;
use mail_parser::{Address, Message};

use super::encoded_word;

use crate::notify;

/// The first mailbox of an address header (groups included).
pub fn first(address: &Address<'_>) -> Option<notify::Address> {
    let addr = address.first()?;
    Some(notify::Address {
        name: addr.name().unwrap_or_default().to_owned(),
        email: addr.address().unwrap_or_default().to_owned(),
    })
}

/// The URL a client should use: the first `<https:…>`/`<http:…>` entry, else the first
/// `<…>` entry (usually `mailto:`), else the whole unfolded value. The raw header value
/// may be folded; it is unfolded in the per-message arena.
pub fn list_unsubscribe(raw: &str, scratch: &Bump) -> String {
    let mut unfolded = bumpalo::collections::String::with_capacity_in(raw.len(), scratch);
    for c in raw.chars().filter(|c| !matches!(c, '\r' | '\n')) {
        unfolded.push(c);
    }
    let unfolded = unfolded.trim();
    let entries = || {
        unfolded
            .split('<')
            .skip(1)
            .filter_map(|rest| rest.split_once('>').map(|(url, _)| url.trim()))
    };
    let is_http = |url: &&str| {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        lower.starts_with("https:") || lower.starts_with("http:")
    };
    entries()
        .find(is_http)
        .or_else(|| entries().next())
        .unwrap_or(unfolded)
        .to_owned()
}

/// The headers mapped from display text (`Subject`, `From`, `Reply-To`) as a header
/// block to parse again, their misread encoded words rewritten in UTF-8; `None` when
/// mail-parser read them right (the usual case: nothing is copied).
pub fn misread_headers(message: &Message<'_>) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    for name in ["Subject", "From", "Reply-To"] {
        if let Some(fixed) = message
            .header_raw(name)
            .and_then(encoded_word::rewrite_misread)
        {
            block.extend_from_slice(name.as_bytes());
            block.extend_from_slice(b":");
            block.extend_from_slice(fixed.as_bytes());
        }
    }
    if block.is_empty() {
        return None;
    }
    block.extend_from_slice(b"\r\n");
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_http_url_and_unfolds() {
        let bump = Bump::new();
        let raw = " <mailto:u@example.com?subject=unsub>,\r\n <https://example.com/u?id=1>\r\n";
        assert_eq!(list_unsubscribe(raw, &bump), "https://example.com/u?id=1");
        assert_eq!(
            list_unsubscribe(" <mailto:u@x.example>\r\n", &bump),
            "mailto:u@x.example"
        );
        assert_eq!(
            list_unsubscribe(" https://bare.example/u\r\n", &bump),
            "https://bare.example/u"
        );
    }
}
