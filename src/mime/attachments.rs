//! Attachments: every MIME part that has a file name or an `attachment` disposition,
//! with its transfer encoding decoded. The decoded bytes are moved out of the parsed
//! message rather than copied when mail-parser already owns them.

use bytes::Bytes;
use mail_parser::{Message, MimeHeaders, PartType};
use std::borrow::Cow;

use crate::notify::Attachment;

pub fn take(message: &mut Message<'_>) -> Vec<Attachment> {
    let mut out = Vec::new();
    let ids = std::mem::take(&mut message.attachments);
    for id in ids {
        let Some(part) = message.parts.get_mut(id as usize) else {
            continue;
        };
        let named = part.attachment_name().map(str::to_owned);
        let disposed = part
            .content_disposition()
            .is_some_and(|d| d.is_attachment());
        if named.is_none() && !disposed {
            continue;
        }
        let (content, default_ext) = match std::mem::take(&mut part.body) {
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => (owned_bytes(bytes), ""),
            PartType::Text(text) | PartType::Html(text) => (owned_text(text), ".txt"),
            PartType::Message(inner) => (owned_bytes(inner.raw_message), ".eml"),
            PartType::Multipart(_) => continue,
        };
        let name = named.unwrap_or_else(|| format!("attachment-{}{default_ext}", out.len() + 1));
        out.push(Attachment { name, content });
    }
    out
}

fn owned_bytes(bytes: Cow<'_, [u8]>) -> Bytes {
    match bytes {
        Cow::Owned(v) => Bytes::from(v),
        Cow::Borrowed(b) => Bytes::copy_from_slice(b),
    }
}

fn owned_text(text: Cow<'_, str>) -> Bytes {
    match text {
        Cow::Owned(s) => Bytes::from(s.into_bytes()),
        Cow::Borrowed(s) => Bytes::copy_from_slice(s.as_bytes()),
    }
}
