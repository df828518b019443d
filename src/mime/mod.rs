//! Pure mapping from an accepted message (envelope + body bytes) to the Notify calls
//! that forward it, following `notify-api.md` and `dialects.md`. The body is parsed by
//! mail-parser on the borrowed buffer; copies happen only where data is transformed
//! (RFC 2047 words, base64 and quoted-printable parts, the protobuf itself). Provider
//! headers are read into one normalized `dialect::Options`, which `apply` maps onto the
//! request and its calls. Per-message scratch lives in a caller-provided bumpalo arena.
//! No clock: the caller says when the message arrived.

mod address;
mod amp;
mod apply;
mod attachments;
mod body;
pub mod charset;
pub mod dialect;
mod encoded_word;
mod header_block;
mod transaction_id;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bumpalo::Bump;
use mail_parser::{Message, MessageParser, PartType};

use crate::notify::{
    EmailPayload, MessageType, NotifyRequest, NotifyTransactional, Outgoing, Platform, Schedule,
};
use crate::smtp::reply::{self, Reply};
use dialect::{Context, DialectError};
use transaction_id::Source;

/// The parts of the SMTP transaction that the mapping needs.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The application (the AUTH username, or `--default-application`).
    pub application: &'a str,
    /// RCPT TO, in order, deduplicated.
    pub recipients: &'a [String],
    /// SparkPost's subaccount from the AUTH username.
    pub subaccount: Option<u64>,
    /// When the message arrived (`send_at` is checked against it).
    pub received: SystemTime,
}

impl Default for Envelope<'_> {
    fn default() -> Self {
        Self {
            application: "",
            recipients: &[],
            subaccount: None,
            received: UNIX_EPOCH,
        }
    }
}

/// Structural caps that mail-parser does not enforce itself.
#[derive(Clone, Copy, Debug)]
pub struct MimeLimits {
    /// The top-level header block, in bytes (checked before parsing).
    pub max_header_block: usize,
    /// Header fields in the whole message, every part's included.
    pub max_headers: usize,
    pub max_parts: usize,
    pub max_depth: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        Self {
            max_header_block: 1 << 20,
            max_headers: 10_000,
            max_parts: 10_000,
            max_depth: 100,
        }
    }
}

/// Why a message cannot be turned into requests. A peer's content problem: each
/// variant has one precise reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MimeError {
    Unparseable,
    /// The top-level header block is over this many bytes.
    HeaderBlockTooBig(usize),
    /// More header fields than this, over all parts.
    TooManyHeaders(usize),
    /// More MIME parts than this.
    TooManyParts(usize),
    /// MIME nesting deeper than this.
    TooDeep(usize),
    /// A provider header that cannot be honoured.
    Dialect(DialectError),
}

impl MimeError {
    pub fn reply(&self) -> Reply {
        match self {
            Self::Unparseable => reply::MIME_UNPARSEABLE,
            Self::HeaderBlockTooBig(max) => {
                reply::header_too_big(&format!("Header block exceeds {max} bytes"))
            }
            Self::TooManyHeaders(max) => {
                reply::message_too_complex(&format!("Message has more than {max} header fields"))
            }
            Self::TooManyParts(max) => {
                reply::message_too_complex(&format!("Message has more than {max} MIME parts"))
            }
            Self::TooDeep(max) => {
                reply::message_too_complex(&format!("MIME nesting deeper than {max} levels"))
            }
            Self::Dialect(error) => error.reply(),
        }
    }
}

impl std::fmt::Display for MimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reply().text())
    }
}

impl std::error::Error for MimeError {}

impl From<DialectError> for MimeError {
    fn from(error: DialectError) -> Self {
        Self::Dialect(error)
    }
}

/// A mapped message: the shared fields, the payload, the body apart and one delivery
/// per upstream call.
pub type Mapped<'a> = Outgoing<'a>;

/// Maps one message into whole requests, one per upstream call (see `map` for the
/// forwarding path).
pub fn to_notify(
    envelope: Envelope<'_>,
    body: &[u8],
    limits: &MimeLimits,
    scratch: &Bump,
) -> Result<Vec<NotifyRequest>, MimeError> {
    map(envelope, body, limits, scratch).map(Outgoing::into_requests)
}

/// Maps one message, keeping its body apart. `scratch` is reset by the caller between
/// messages.
pub fn map<'a>(
    envelope: Envelope<'_>,
    body: &'a [u8],
    limits: &MimeLimits,
    scratch: &Bump,
) -> Result<Mapped<'a>, MimeError> {
    check_header_block(body, limits)?;
    let message = MessageParser::new()
        .parse(body)
        .ok_or(MimeError::Unparseable)?;
    if header_block::parsed_cleanly(&message) {
        return map_parsed(envelope, message, body, limits, scratch);
    }
    match header_block::repair(body) {
        std::borrow::Cow::Borrowed(_) => map_parsed(envelope, message, body, limits, scratch),
        // Rare: the header block ended at a stray line. The copy is parsed; the original
        // still identifies the message.
        std::borrow::Cow::Owned(fixed) => {
            drop(message);
            let message = MessageParser::new()
                .parse(&fixed[..])
                .ok_or(MimeError::Unparseable)?;
            map_parsed(envelope, message, body, limits, scratch).map(Outgoing::into_owned)
        }
    }
}

fn map_parsed<'a>(
    envelope: Envelope<'_>,
    mut message: Message<'a>,
    original: &[u8],
    limits: &MimeLimits,
    scratch: &Bump,
) -> Result<Mapped<'a>, MimeError> {
    check_structure(&message, limits)?;
    let context = Context {
        scratch,
        now: envelope.received,
    };
    let mut options = dialect::read(&message, &context)?;
    options.amp_html = amp::take(&mut message)?;

    let mut payload = EmailPayload {
        list_unsubscribe: message
            .header_raw("List-Unsubscribe")
            .map(|raw| address::list_unsubscribe(raw, scratch))
            .unwrap_or_default(),
        ..EmailPayload::default()
    };
    {
        // Subject and names in charsets mail-parser misreads are read from a copy with
        // those words in UTF-8 (rare; see `charset`).
        let fixed = address::misread_headers(&message);
        let parsed = fixed
            .as_deref()
            .and_then(|f| MessageParser::new().parse_headers(f));
        let headers = parsed.as_ref().unwrap_or(&message);
        if let Some(s) = headers.subject().or_else(|| message.subject()) {
            payload.subject = BTreeMap::from([("default".to_owned(), s.to_owned())]);
        }
        payload.from = headers
            .from()
            .or_else(|| message.from())
            .and_then(address::first);
        payload.reply_to = headers
            .reply_to()
            .or_else(|| message.reply_to())
            .and_then(address::first);
    }
    let derived = match message.message_id() {
        Some(id) => Source::MessageId(id),
        None => Source::Body(original),
    };
    let mut shared = NotifyTransactional {
        application: envelope.application.to_owned(),
        platforms: vec![Platform::Email as i32],
        schedule: Some(Schedule {
            send_date: "now".to_owned(),
            at: None,
        }),
        message_type: MessageType::Transactional as i32,
        ..Default::default()
    };
    let facts = apply::Message {
        envelope,
        // Looked up only when X-PM-KeepID asks for it.
        message_id_raw: options
            .keep_message_id
            .then(|| message.header_raw("Message-ID"))
            .flatten(),
        derived,
    };
    let email_ids = options.email_ids;
    let deliveries = apply::apply(options, &facts, &mut shared, &mut payload)?;
    // Last: the body and the attachments are moved out of the parsed message.
    let body_text = body::take(&mut message);
    payload.attachments = attachments::take(&mut message);
    Ok(Outgoing {
        shared,
        payload,
        body: body_text,
        deliveries,
        email_ids,
    })
}

/// The top-level header block must end (at its empty line) within the limit; checked
/// before mail-parser reads it.
fn check_header_block(body: &[u8], limits: &MimeLimits) -> Result<(), MimeError> {
    let max = limits.max_header_block;
    if body.len() <= max || body.starts_with(b"\r\n") {
        return Ok(());
    }
    let window = &body[..max.saturating_add(4).min(body.len())];
    match memchr::memmem::find(window, b"\r\n\r\n") {
        Some(_) => Ok(()),
        None => Err(MimeError::HeaderBlockTooBig(max)),
    }
}

/// Header count, part count and MIME depth, nested messages included.
fn check_structure(message: &Message<'_>, limits: &MimeLimits) -> Result<(), MimeError> {
    let (mut parts, mut headers) = (0usize, 0usize);
    // (message, part id, depth): an explicit stack, so hostile nesting cannot overflow.
    let mut stack: Vec<(&Message<'_>, u32, usize)> = vec![(message, 0, 0)];
    while let Some((msg, id, depth)) = stack.pop() {
        parts += 1;
        if parts > limits.max_parts {
            return Err(MimeError::TooManyParts(limits.max_parts));
        }
        if depth > limits.max_depth {
            return Err(MimeError::TooDeep(limits.max_depth));
        }
        let Some(part) = msg.parts.get(id as usize) else {
            continue;
        };
        headers += part.headers.len();
        if headers > limits.max_headers {
            return Err(MimeError::TooManyHeaders(limits.max_headers));
        }
        match &part.body {
            PartType::Multipart(children) => {
                stack.extend(children.iter().map(|&child| (msg, child, depth + 1)));
            }
            PartType::Message(inner) => stack.push((inner, 0, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::notify_request;

    fn map(eml: &str) -> NotifyTransactional {
        let recipients = vec!["r@example.com".to_owned()];
        let envelope = Envelope {
            application: "APP",
            recipients: &recipients,
            ..Envelope::default()
        };
        let body = eml.replace('\n', "\r\n");
        let mut requests = to_notify(
            envelope,
            body.as_bytes(),
            &MimeLimits::default(),
            &Bump::new(),
        )
        .expect("maps");
        assert_eq!(requests.len(), 1);
        match requests.remove(0).kind {
            Some(notify_request::Kind::Transactional(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fixed_fields() {
        let t = map("From: a@b.example\nSubject: s\n\nbody\n");
        assert_eq!(t.application, "APP");
        assert_eq!(t.platforms, [Platform::Email as i32]);
        assert_eq!(t.message_type, MessageType::Transactional as i32);
        assert_eq!(t.schedule.expect("schedule").send_date, "now");
        let payload = t.email_payload.expect("payload");
        assert_eq!(payload.body, "body\r\n");
        assert_eq!(payload.subject["default"], "s");
    }

    #[test]
    fn text_only_message_is_not_turned_into_html() {
        let t = map("Content-Type: text/plain\n\nplain <b>text</b>\n");
        assert_eq!(
            t.email_payload.expect("payload").body,
            "plain <b>text</b>\r\n"
        );
    }

    fn refusal(eml: &[u8]) -> Option<MimeError> {
        let envelope = Envelope {
            application: "A",
            ..Envelope::default()
        };
        to_notify(envelope, eml, &MimeLimits::default(), &Bump::new()).err()
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut eml = String::new();
        for i in 0..105 {
            eml.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
            ));
        }
        eml.push_str("Content-Type: text/plain\n\nx\n");
        let eml = eml.replace('\n', "\r\n");
        assert_eq!(refusal(eml.as_bytes()), Some(MimeError::TooDeep(100)));
        assert_eq!(
            MimeError::TooDeep(100).reply().to_string(),
            "550 5.6.0 MIME nesting deeper than 100 levels"
        );
    }

    #[test]
    fn too_many_headers_are_refused() {
        let eml = "X-A: 1\r\n".repeat(10_001) + "\r\nbody\r\n";
        assert_eq!(
            refusal(eml.as_bytes()),
            Some(MimeError::TooManyHeaders(10_000))
        );
        let fine = "X-A: 1\r\n".repeat(9_999) + "\r\nbody\r\n";
        assert_eq!(refusal(fine.as_bytes()), None);
    }

    #[test]
    fn a_header_block_over_a_mebibyte_is_552() {
        let folded = format!("X-Long: {}\r\n", " x\r\n".repeat(300_000));
        let eml = folded + "\r\nbody\r\n";
        assert!(eml.len() > 1 << 20);
        let error = refusal(eml.as_bytes()).expect("refused");
        assert_eq!(error, MimeError::HeaderBlockTooBig(1 << 20));
        assert_eq!(
            error.reply().to_string(),
            "552 5.3.4 Header block exceeds 1048576 bytes"
        );
        // A big body under a small header block is fine.
        let big_body = format!("Subject: s\r\n\r\n{}", "body line\r\n".repeat(200_000));
        assert_eq!(refusal(big_body.as_bytes()), None);
    }

    #[test]
    fn too_many_parts_are_refused() {
        let mut eml = String::from("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
        for _ in 0..10_001 {
            eml.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        eml.push_str("--b--\r\n");
        assert_eq!(
            refusal(eml.as_bytes()),
            Some(MimeError::TooManyParts(10_000))
        );
    }
}

#[cfg(test)]
mod body_and_attachment {
    use super::*;
    use crate::notify::notify_request;

    #[test]
    fn a_text_part_that_is_also_an_attachment_keeps_both() {
        let eml = "From: a@example.com\r\nSubject: s\r\nContent-Type: text/plain; name=\"note.txt\"\r\n\
                   Content-Disposition: attachment; filename=\"note.txt\"\r\n\r\nhello\r\n";
        let recipients = vec!["r@example.com".to_owned()];
        let envelope = Envelope {
            application: "A",
            recipients: &recipients,
            ..Envelope::default()
        };
        let mut requests = to_notify(
            envelope,
            eml.as_bytes(),
            &MimeLimits::default(),
            &Bump::new(),
        )
        .expect("maps");
        let Some(notify_request::Kind::Transactional(t)) = requests.remove(0).kind else {
            panic!("kind")
        };
        let payload = t.email_payload.expect("payload");
        assert_eq!(payload.attachments.len(), 1, "the attachment is kept");
        assert_eq!(&payload.attachments[0].content[..], b"hello\r\n");
    }
}
