//! Header addresses: `From`/`Reply-To` to a Notify `Address`, and the URL of
//! `List-Unsubscribe`.

use bumpalo::Bump;
use mail_parser::Address;

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
