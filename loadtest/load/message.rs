//! Test messages: deterministic from the seed (two runs send the same bytes), of a given
//! size, optionally multipart/alternative with HTML and with base64 attachments, with
//! the extra headers the operator's mailers send (`--header`). Built
//! once per cell in wire form (dot-stuffed, CRLF, terminated); only the Message-ID
//! header differs per message, so a real upstream does not deduplicate them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    /// Approximate total size of the message in bytes.
    pub size: usize,
    pub rcpts: usize,
    pub html: bool,
    pub attachments: usize,
    pub seed: u64,
    /// Extra header fields, each `Name: value` on one line (folded when sent).
    pub headers: &'a [String],
}

/// A message ready to send: envelope and the wire form of everything after the
/// Message-ID header.
pub struct Prepared {
    pub recipients: Vec<String>,
    /// `MAIL FROM`, the `RCPT TO`s and `DATA`, as one pipelined write.
    pub envelope: Vec<u8>,
    /// Headers after Message-ID, the body, and the final `.CRLF`.
    pub wire: Vec<u8>,
    /// Size of the message itself (what the server stores), for MB/s.
    pub message_bytes: usize,
}

const WORDS: &[&str] = &[
    "the", "order", "account", "delivery", "invoice", "please", "confirm", "your", "message",
    "gateway", "shipment", "today", "password", "reset", "welcome", "thanks", "update", "receipt",
    "team", "support",
];

/// Lines of text totalling about `bytes` octets (76-octet lines, CRLF).
fn text(rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 80);
    let mut line = String::with_capacity(80);
    while out.len() < bytes {
        let word = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        if line.len() + word.len() + 1 > 76 {
            out.push_str(&line);
            out.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out
}

/// A `--header` argument: `Name: value`, the name printable ASCII without a colon, no
/// line breaks (the value is folded for the wire).
pub fn parse_header(text: &str) -> Result<String, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or("expected 'NAME: VALUE', e.g. 'X-PM-Tag: welcome'")?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!("{name:?} is not a header name"));
    }
    if value.contains(['\r', '\n']) {
        return Err("the value must be one line (it is folded when sent)".into());
    }
    Ok(format!("{name}: {}", value.trim()))
}

/// A header line folded before 78 octets where it has whitespace (RFC 5322 §2.2.3),
/// ending in CRLF.
fn folded(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 32);
    let mut width = 0;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            if width + 1 + word.len() > 76 {
                out.push_str("\r\n");
                width = 0;
            }
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out.push_str("\r\n");
    out
}

pub fn prepare(spec: Spec<'_>) -> Prepared {
    let mut rng = Rng::new(spec.seed);
    let recipients: Vec<String> = (0..spec.rcpts.max(1))
        .map(|i| format!("rcpt{i}@example.com"))
        .collect();
    let mut envelope = b"MAIL FROM:<load@example.com>\r\n".to_vec();
    for r in &recipients {
        envelope.extend_from_slice(format!("RCPT TO:<{r}>\r\n").as_bytes());
    }
    envelope.extend_from_slice(b"DATA\r\n");

    let mut headers = String::from(
        "From: smtpgate-load <load@example.com>\r\nTo: rcpt0@example.com\r\n\
         Subject: smtpgate-load test message\r\nMIME-Version: 1.0\r\n",
    );
    headers.push_str("List-Unsubscribe: <https://example.com/unsubscribe>\r\n");
    for header in spec.headers {
        headers.push_str(&folded(header));
    }
    let budget = spec.size.saturating_sub(headers.len() + 120);
    let (text_budget, attachment_budget) = if spec.attachments > 0 {
        (budget / 2, budget / 2)
    } else {
        (budget, 0)
    };
    let alternative = |rng: &mut Rng| {
        if spec.html {
            let plain = text(rng, text_budget / 2);
            let html = format!(
                "<html><body><p>{}</p></body></html>",
                text(rng, text_budget / 2)
            );
            format!(
                "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--alt\r\n\
                 Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n"
            )
        } else {
            format!(
                "Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
                text(rng, text_budget)
            )
        }
    };
    let mut message = headers;
    if let Some(per_attachment) = attachment_budget.checked_div(spec.attachments) {
        message.push_str("Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n");
        message.push_str(&alternative(&mut rng));
        // Base64 grows data by 4/3: this much raw data fills the share.
        let each = per_attachment * 3 / 4;
        for n in 0..spec.attachments {
            let data: Vec<u8> = (0..each).map(|_| rng.next_u64() as u8).collect();
            message.push_str(&format!(
                "\r\n--mix\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"file{n}.bin\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            ));
            let encoded = STANDARD.encode(&data);
            for chunk in encoded.as_bytes().chunks(76) {
                message.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                message.push_str("\r\n");
            }
        }
        message.push_str("--mix--\r\n");
    } else {
        message.push_str(&alternative(&mut rng));
    }
    if !message.ends_with("\r\n") {
        message.push_str("\r\n");
    }
    let message_bytes = message.len();
    let mut wire = Vec::with_capacity(message.len() + 16);
    for line in message.as_bytes().split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    wire.extend_from_slice(b".\r\n");
    Prepared {
        recipients,
        envelope,
        wire,
        message_bytes,
    }
}

/// The Message-ID header of one message: unique per (seed, cell, connection, count).
pub fn message_id_header(seed: u64, cell: usize, worker: usize, n: u64) -> String {
    format!("Message-ID: <{seed}.{cell}.{worker}.{n}@smtpgate-load>\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_and_size_is_close() {
        for (size, html, attachments) in
            [(1024, false, 0), (64 * 1024, true, 2), (1 << 20, false, 1)]
        {
            let spec = Spec {
                size,
                rcpts: 3,
                html,
                attachments,
                seed: 42,
                headers: &[],
            };
            let a = prepare(spec);
            assert_eq!(a.wire, prepare(spec).wire);
            assert_ne!(a.wire, prepare(Spec { seed: 43, ..spec }).wire);
            let ratio = a.message_bytes as f64 / size as f64;
            assert!(
                (0.9..1.1).contains(&ratio),
                "size {size}: {}",
                a.message_bytes
            );
            assert!(a.wire.ends_with(b"\r\n.\r\n"));
            assert_eq!(a.recipients.len(), 3);
        }
    }

    #[test]
    fn the_gateway_maps_what_it_sends() {
        let to: Vec<String> = (0..200).map(|i| format!("\"u{i}@example.com\"")).collect();
        let headers = [
            parse_header("X-PM-Tag:  load-test ").expect("valid"),
            parse_header(&format!("X-SMTPAPI: {{\"to\": [{}]}}", to.join(", "))).expect("valid"),
        ];
        assert!(parse_header("no colon").is_err() && parse_header("Bad Name: x").is_err());
        let spec = Spec {
            size: 8192,
            rcpts: 1,
            html: true,
            attachments: 1,
            seed: 1,
            headers: &headers,
        };
        let p = prepare(spec);
        let body = &p.wire[..p.wire.len() - 3];
        let recipients = vec!["r@example.com".to_owned()];
        let envelope = smtpgate::mime::Envelope {
            application: "A",
            recipients: &recipients,
            ..Default::default()
        };
        let request =
            smtpgate::mime::to_notify(envelope, body, &Default::default(), &bumpalo::Bump::new())
                .expect("maps")
                .remove(0);
        let json = smtpgate::notify::json::request(&request);
        let payload = &json["transactional"]["email_payload"];
        assert!(
            payload["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("<html>"))
        );
        assert_eq!(payload["attachments"][0]["name"], "file0.bin");
        let t = &json["transactional"];
        assert_eq!(t["meta_data"]["tags"][0], "load-test");
        assert_eq!(
            t["users"]["list"].as_array().map(Vec::len),
            Some(200),
            "folded, unfolded"
        );
        let header_lines = p.wire.split(|&b| b == b'\n').take_while(|l| l != b"\r");
        assert!(
            header_lines.clone().count() > 40 && header_lines.clone().all(|l| l.len() <= 80),
            "header lines are folded"
        );
    }
}
