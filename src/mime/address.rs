//! Header addresses: `From`/`Reply-To` to a Notify `Address`, and the URL of
//! `List-Unsubscribe`; the copy of the headers whose encoded words mail-parser
//! misreads.

use bumpalo::Bump;
use mail_parser::{Address, HeaderName, Message};

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
    let raw = message.raw_message();
    let mut block = Vec::new();
    // One pass over the top-level block by header id (no name lookups), from the end:
    // like mail-parser's getters, the last of each name counts. A value without `=?`
    // has no encoded word to misread.
    let mut seen = [false; 3];
    for header in message.headers().iter().rev() {
        let (slot, name) = match header.name {
            HeaderName::Subject => (0, "Subject"),
            HeaderName::From => (1, "From"),
            HeaderName::ReplyTo => (2, "Reply-To"),
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            continue;
        }
        let Some(value) = raw.get(header.offset_start as usize..header.offset_end as usize) else {
            continue;
        };
        let has_word = memchr::memchr_iter(b'=', value).any(|at| value.get(at + 1) == Some(&b'?'));
        if !has_word {
            continue;
        }
        if let Some(fixed) = std::str::from_utf8(value)
            .ok()
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

    #[test]
    fn the_last_of_each_header_is_the_one_rewritten() {
        use mail_parser::MessageParser;
        // "中文" in GB2312, a label mail-parser does not know.
        let gb = "=?eucgb2312_cn?b?1tDOxA==?=";
        let first_misread = format!("Subject: {gb}\r\nSubject: plain\r\n\r\nx\r\n");
        let message = MessageParser::new()
            .parse(first_misread.as_bytes())
            .expect("parses");
        assert_eq!(misread_headers(&message), None, "the plain one counts");
        let last_misread = format!("Subject: plain\r\nSubject: {gb}\r\n\r\nx\r\n");
        let message = MessageParser::new()
            .parse(last_misread.as_bytes())
            .expect("parses");
        let block = misread_headers(&message).expect("rewritten");
        let fixed = MessageParser::new()
            .parse_headers(&block[..])
            .expect("parses");
        assert_eq!(fixed.subject(), Some("中文"));
    }
}
