//! The message body: the HTML part if there is one, else the plain-text part, moved out
//! of the parse. Two corrections to mail-parser's reading:
//! - a part whose `Content-Type` is `text` without a subtype is `text/plain` (RFC 2045
//!   §5.2: a malformed type means the default), not an attachment that loses the body;
//! - a part whose charset label mail-parser does not know but senders write
//!   (`charset::needs_redecoding`) is decoded again from its raw bytes.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};

use super::charset;

/// Moves the body text out of the message (copying it only when the same part is also
/// an attachment).
pub fn take<'x>(message: &mut Message<'x>) -> Cow<'x, str> {
    let Some(id) = choose(message) else {
        return Cow::Borrowed("");
    };
    let index = id as usize;
    if let Some(text) = redecoded(message, index) {
        return Cow::Owned(text);
    }
    if message.attachments.contains(&id) {
        // Also an attachment: leave it in place for `attachments::take`.
        return match message.parts.get(index).map(|p| &p.body) {
            Some(PartType::Html(text) | PartType::Text(text)) => Cow::Owned(text.to_string()),
            _ => Cow::Borrowed(""),
        };
    }
    match message
        .parts
        .get_mut(index)
        .map(|p| std::mem::take(&mut p.body))
    {
        Some(PartType::Html(text) | PartType::Text(text)) => text,
        _ => Cow::Borrowed(""),
    }
}

/// The part that is the body. mail-parser lists text parts among the HTML bodies too
/// (to render them); only a real `text/html` part counts as HTML here.
fn choose(message: &mut Message<'_>) -> Option<u32> {
    let find = |ids: &[u32], want_html: bool| {
        ids.iter().copied().find(|&id| {
            matches!(
                (message.parts.get(id as usize).map(|p| &p.body), want_html),
                (Some(PartType::Html(_)), true) | (Some(PartType::Text(_)), false)
            )
        })
    };
    if let Some(id) = find(&message.html_body, true).or_else(|| find(&message.text_body, false)) {
        return Some(id);
    }
    // `Content-Type: text` (no subtype) that mail-parser filed as an attachment.
    let id = message.parts.iter().position(is_subtypeless_text)? as u32;
    message.attachments.retain(|&a| a != id);
    Some(id)
}

fn is_subtypeless_text(part: &MessagePart<'_>) -> bool {
    let malformed_text = part
        .content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("text") && ct.subtype().is_none());
    let attached = part.attachment_name().is_some()
        || part
            .content_disposition()
            .is_some_and(|d| d.is_attachment());
    malformed_text && !attached && matches!(part.body, PartType::Text(_))
}

/// The part's text decoded anew when mail-parser misread its charset label.
fn redecoded(message: &Message<'_>, index: usize) -> Option<String> {
    let part = message.parts.get(index)?;
    let label = part.content_type()?.attribute("charset")?;
    let decoder = charset::needs_redecoding(label)?;
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    let bytes = match part.encoding {
        Encoding::Base64 => base64_decode(raw),
        Encoding::QuotedPrintable => quoted_printable_decode(raw),
        Encoding::None => None,
    };
    Some(decoder.decode(bytes.as_deref().unwrap_or(raw)))
}
