//! AMP for email: a `text/x-amp-html` part becomes `meta_data.amp_html`. It must sit in
//! a `multipart/alternative` beside a `text/html` or `text/plain` part (SparkPost's
//! rule); it is never the message's body nor an attachment.

use mail_parser::{Message, MimeHeaders, PartType};

use super::dialect::DialectError;

/// Takes the text of the message's AMP part out of it, if it has one in its place.
pub fn take(message: &mut Message<'_>) -> Result<Option<String>, DialectError> {
    let is_amp = |id: usize| {
        message
            .parts
            .get(id)
            .and_then(|p| p.content_type())
            .is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("text")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("x-amp-html"))
            })
    };
    let Some(amp) = (0..message.parts.len()).find(|&id| is_amp(id)) else {
        return Ok(None);
    };
    let placed = message.parts.iter().any(|parent| {
        let alternative = parent.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("alternative"))
        });
        let PartType::Multipart(children) = &parent.body else {
            return false;
        };
        alternative
            && children.contains(&(amp as u32))
            && children.iter().any(|&c| {
                message
                    .parts
                    .get(c as usize)
                    .and_then(|p| p.content_type())
                    .is_some_and(|ct| {
                        ct.ctype().eq_ignore_ascii_case("text")
                            && ct.subtype().is_some_and(|s| {
                                s.eq_ignore_ascii_case("html") || s.eq_ignore_ascii_case("plain")
                            })
                    })
            })
    });
    if !placed {
        return Err(DialectError::MisplacedAmp);
    }
    let id = amp as u32;
    for list in [
        &mut message.text_body,
        &mut message.html_body,
        &mut message.attachments,
    ] {
        list.retain(|&i| i != id);
    }
    Ok(match std::mem::take(&mut message.parts[amp].body) {
        PartType::Text(text) | PartType::Html(text) => Some(text.into_owned()),
        _ => None,
    })
}
