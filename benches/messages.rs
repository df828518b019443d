//! Messages the benches share: a 1 KiB text, a 100 KiB HTML with an attachment, a
//! 25 MiB text; their wire (dot-stuffed) forms; deterministic content.

#![allow(dead_code)]

use base64::Engine as _;

pub const ONE_KIB: usize = 1024;
pub const HUNDRED_KIB: usize = 100 * 1024;
pub const TWENTY_FIVE_MIB: usize = 25 * 1024 * 1024 - 4096;

fn lines(bytes: usize) -> String {
    let line = "the quick brown fox jumps over the lazy dog while the gateway forwards mail\r\n";
    let mut out = String::with_capacity(bytes + line.len());
    let mut n = 0usize;
    while out.len() < bytes {
        // A leading dot now and then exercises unstuffing.
        if n.is_multiple_of(50) {
            out.push('.');
        }
        out.push_str(line);
        n += 1;
    }
    out
}

pub fn text_message(size: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.com\r\nSubject: bench\r\n\
         Message-ID: <bench@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    m.push_str(&lines(size.saturating_sub(m.len())));
    m.into_bytes()
}

pub fn html_with_attachment(size: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.com\r\nSubject: =?UTF-8?B?0J7RgtGH0ZHRgg==?=\r\n\
         Message-ID: <bench-html@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>",
    );
    m.push_str(&lines(size / 2).replace("fox", "<b>fox</b>=3D"));
    m.push_str("</body></html>\r\n--mix\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let data: Vec<u8> = (0..size * 3 / 8).map(|i| (i * 31 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m.push_str("--mix--\r\n");
    m.into_bytes()
}

/// DATA as it arrives on the wire: dot-stuffed, terminated.
pub fn wire(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 50 + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}
