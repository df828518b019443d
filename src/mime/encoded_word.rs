//! RFC 2047 encoded words (`=?charset?B|Q?text?=`) in unstructured header text, with
//! charset labels read the way senders write them (`charset::lookup`). Used for the
//! provider headers that allow encoded words, and for a `Subject` whose labels
//! mail-parser does not know. Whitespace between two adjacent encoded words is dropped
//! (RFC 2047 §6.2); anything malformed stays as written.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::charset;

/// The text with its encoded words decoded; borrowed when it has none.
pub fn decode(text: &str) -> Cow<'_, str> {
    if !text.contains("=?") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Whitespace seen since the last encoded word, held back in case another follows.
    let mut held: Option<&str> = None;
    let mut after_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = word(rest) {
            // Whitespace between two encoded words is dropped.
            if let (Some(space), false) = (held.take(), after_word) {
                out.push_str(space);
            }
            out.push_str(&decoded);
            rest = &rest[used..];
            after_word = true;
            continue;
        }
        let space_len = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if space_len > 0 {
            if let Some(space) = held.take() {
                out.push_str(space);
            }
            held = Some(&rest[..space_len]);
            rest = &rest[space_len..];
            continue;
        }
        if let Some(space) = held.take() {
            out.push_str(space);
        }
        after_word = false;
        let next = rest
            .char_indices()
            .skip(1)
            .find(|&(_, c)| matches!(c, '=' | ' ' | '\t'))
            .map_or(rest.len(), |(i, _)| i);
        out.push_str(&rest[..next]);
        rest = &rest[next..];
    }
    if let Some(space) = held {
        out.push_str(space);
    }
    Cow::Owned(out)
}

/// One encoded word at the start of `text`: its text and the bytes it spans.
fn word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (label, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    if payload.contains([' ', '\t']) || label.is_empty() {
        return None;
    }
    // RFC 2231 §5: `charset*language`.
    let label = label.split_once('*').map_or(label, |(charset, _)| charset);
    let bytes = match encoding {
        "B" | "b" => STANDARD_NO_PAD.decode(payload.trim_end_matches('=')).ok()?,
        "Q" | "q" => q_decode(payload)?,
        _ => return None,
    };
    let used = 2 + (inner.len() - rest.len()) + end + 2;
    Some((charset::decode(label, &bytes).into_owned(), used))
}

fn q_decode(payload: &str) -> Option<Vec<u8>> {
    let bytes = payload.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// Whether `text` has an encoded word whose charset label mail-parser would decode
/// wrongly (see `charset::needs_redecoding`).
pub fn has_misread_label(text: &str) -> bool {
    text.match_indices("=?").any(|(at, _)| {
        text[at + 2..].split_once('?').is_some_and(|(label, _)| {
            let label = label.split_once('*').map_or(label, |(c, _)| c);
            charset::needs_redecoding(label).is_some()
        })
    })
}

/// `text` with every encoded word whose label mail-parser would misread rewritten as
/// the same text in a UTF-8 word, which it reads right; `None` when there is none. The
/// words stay words, so an address header keeps its structure.
pub fn rewrite_misread(text: &str) -> Option<String> {
    if !has_misread_label(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(at) = rest.find("=?") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let misread = rest[2..].split_once('?').is_some_and(|(label, _)| {
            let label = label.split_once('*').map_or(label, |(c, _)| c);
            charset::needs_redecoding(label).is_some()
        });
        match word(rest).filter(|_| misread) {
            Some((decoded, used)) => {
                out.push_str("=?utf-8?b?");
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(decoded));
                out.push_str("?=");
                rest = &rest[used..];
            }
            None => {
                out.push_str("=?");
                rest = &rest[2..];
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_the_text_around_them() {
        assert_eq!(decode("plain text"), "plain text");
        assert_eq!(decode("=?utf-8?B?0J/RgNC40LLQtdGC?="), "Привет");
        assert_eq!(decode("=?ISO-8859-1?Q?caf=E9_au_lait?="), "café au lait");
        assert_eq!(
            decode("a =?utf-8?q?x?= \t =?utf-8?q?y?= b"),
            "a xy b",
            "space between words dropped, around them kept"
        );
        assert_eq!(decode("=?utf-8*en?q?hi?="), "hi");
        assert_eq!(
            decode("=?utf-8?B?0J/RgNC40LLQtdGC?"),
            "=?utf-8?B?0J/RgNC40LLQtdGC?"
        );
        assert_eq!(decode("=?bogus?X?abc?= x"), "=?bogus?X?abc?= x");
        assert_eq!(decode("1 = 2 =? 3"), "1 = 2 =? 3");
    }

    #[test]
    fn labels_as_python_writes_them() {
        // Python: Header("中文测试", "gb2312").encode()
        assert_eq!(decode("=?eucgb2312_cn?b?1tDOxLLiytQ=?="), "中文测试");
        assert_eq!(decode("=?big5_tw?b?pKSk5bT6uNU=?="), "中文測試");
        assert!(has_misread_label("x =?eucgb2312_cn?b?1tA=?="));
        assert!(!has_misread_label("=?utf-8?b?1tA=?= =?gb2312?b?1tA=?="));
        assert_eq!(
            rewrite_misread("\"=?big5_tw?b?pKSk5Q==?=\" <a@b.c>").as_deref(),
            Some("\"=?utf-8?b?5Lit5paH?=\" <a@b.c>")
        );
        assert_eq!(rewrite_misread("=?utf-8?b?5Lit5paH?="), None);
    }
}
