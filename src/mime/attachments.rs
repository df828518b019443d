//! Attachments: every MIME part that has a file name or an `attachment` disposition,
//! with its transfer encoding decoded. The decoded bytes are moved out of the parsed
//! message rather than copied when mail-parser already owns them.

use bytes::Bytes;
use mail_parser::{Message, MimeHeaders, PartType};
use std::borrow::Cow;

use crate::notify::Attachment;

pub fn take(message: &mut Message<'_>) -> Vec<Attachment> {
    let Message {
        parts,
        attachments,
        raw_message,
        ..
    } = message;
    let mut out = Vec::new();
    for &id in attachments.iter() {
        let Some(part) = parts.get_mut(id as usize) else {
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
            PartType::Message(inner) => {
                // A nested message borrows the whole outer buffer: its bytes are this
                // part's body. It owns its bytes only when it was transfer-decoded.
                let raw = match inner.raw_message {
                    Cow::Owned(decoded) => Bytes::from(decoded),
                    Cow::Borrowed(_) => {
                        let range = part.offset_body as usize..part.offset_end as usize;
                        Bytes::copy_from_slice(raw_message.get(range).unwrap_or_default())
                    }
                };
                (raw, ".eml")
            }
            PartType::Multipart(_) => continue,
        };
        let name = named.unwrap_or_else(|| format!("attachment-{}{default_ext}", out.len() + 1));
        out.push(Attachment { name, content });
    }
    attachments.clear();
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
