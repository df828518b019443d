//! Where the top-level header block really ends. A line that is neither a header field
//! (`name:`, the name printable ASCII without a colon, optional whitespace before the
//! colon as RFC 5322's obsolete syntax allows) nor a continuation ends the block: the
//! body starts there, as Python's `email` package and Postfix's cleanup read it.
//! mail-parser skips such a line and keeps reading headers, so a line of junk could
//! smuggle a provider header from the body into the header block; a message with one
//! is given the missing blank line before it is parsed.
//!
//! The usual message is checked on mail-parser's own reading (`parsed_cleanly`: no
//! byte of the block left out of a field), so only a suspect one is scanned line by
//! line.

use std::borrow::Cow;

use mail_parser::Message;

/// The message as it must be parsed: itself, or (only when its header block ends at a
/// stray line) a copy with an empty line inserted before that line.
pub fn repair(message: &[u8]) -> Cow<'_, [u8]> {
    match stray_line(message) {
        Some(at) => {
            let mut fixed = Vec::with_capacity(message.len() + 2);
            fixed.extend_from_slice(&message[..at]);
            fixed.extend_from_slice(b"\r\n");
            fixed.extend_from_slice(&message[at..]);
            Cow::Owned(fixed)
        }
        None => Cow::Borrowed(message),
    }
}

/// Whether mail-parser's reading of the top-level block proves it has no stray line:
/// the fields follow one another from the first byte to the empty line with no gap
/// (mail-parser skips a line it cannot read as a field, leaving one), and each field's
/// text up to its colon is a field name as `is_field` reads it (mail-parser also reads
/// `not a: field` or a name cut by a bare CR as fields). `false` means "scan to know",
/// never "has one".
pub fn parsed_cleanly(message: &Message<'_>) -> bool {
    let Some(part) = message.parts.first() else {
        return false;
    };
    let raw = message.raw_message();
    let mut next = 0u32;
    for header in &part.headers {
        let name = raw.get(header.offset_field as usize..header.offset_start as usize);
        if header.offset_field != next || !name.is_some_and(is_name_and_colon) {
            return false;
        }
        next = header.offset_end;
    }
    let blank = raw.get(next as usize..part.offset_body as usize);
    matches!(blank, Some(b"\r\n" | b"\n"))
}

/// The offset of the first line of the header block that is neither a header field nor
/// a continuation, if the block ends at one rather than at an empty line.
pub fn stray_line(message: &[u8]) -> Option<usize> {
    // One line-end searcher over the whole block (a searcher per line costs more than
    // the short lines it scans).
    let mut ends = memchr::memchr_iter(b'\n', message).map(|i| i + 1);
    let mut at = 0;
    while at < message.len() {
        let end = ends.next().unwrap_or(message.len());
        let line = &message[at..end];
        let content = line
            .strip_suffix(b"\n")
            .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
        // An empty line ends the block.
        let &first = content.first()?;
        let continuation = matches!(first, b' ' | b'\t');
        if !continuation && !is_field(content) {
            return Some(at);
        }
        at = end;
    }
    None
}

/// `name:` exactly as `is_field` accepts it (optional blanks before the colon), and
/// nothing after the colon. Plain loops: it runs for every field of every message.
fn is_name_and_colon(text: &[u8]) -> bool {
    let Some((&b':', head)) = text.split_last() else {
        return false;
    };
    let name_len = head
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |last| last + 1);
    name_len > 0
        && head[..name_len]
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && b != b':')
}

fn is_field(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .position(|&b| !(0x21..=0x7e).contains(&b) || b == b':')
        .unwrap_or(line.len());
    if name_len == 0 {
        return false;
    }
    line[name_len..]
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_some_and(|&b| b == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_block_is_left_alone() {
        let m =
            b"From: a@b\r\nSubject: long\r\n folded\r\nX-Obs : ok\r\n\r\nbody\r\nnot: a header\r\n";
        assert_eq!(stray_line(m), None);
        assert!(matches!(repair(m), Cow::Borrowed(_)));
        assert_eq!(stray_line(b"Subject: only headers\r\n"), None);
    }

    #[test]
    fn a_stray_line_starts_the_body() {
        let m = b"From: a@b\r\nthis is not a header\r\nX-PM-Tag: smuggled\r\n\r\nbody\r\n";
        assert_eq!(stray_line(m), Some(11));
        assert_eq!(
            &repair(m)[..],
            b"From: a@b\r\n\r\nthis is not a header\r\nX-PM-Tag: smuggled\r\n\r\nbody\r\n"
        );
        for stray in [
            &b"<html>\r\n"[..],
            b": no name\r\n",
            b"Na\xc3\xafve: 8-bit name\r\n",
        ] {
            let m = [&b"Subject: s\r\n"[..], stray, b"\r\nbody"].concat();
            assert_eq!(stray_line(&m), Some(12), "{stray:?}");
        }
    }

    fn parse(m: &[u8]) -> Option<Message<'_>> {
        mail_parser::MessageParser::new().parse(m)
    }

    #[test]
    fn usual_messages_are_proven_clean_without_a_scan() {
        for m in [
            &b"From: Sender <s@example.com>\r\nTo: r@example.com\r\nSubject: s\r\n\r\nbody\r\n"[..],
            b"Subject: long\r\n folded\r\nX-Obs : ok\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n",
            b"Subject: bare LF\nX-A: b\n\nbody\n",
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        ] {
            let parsed = parse(m).expect("parses");
            assert!(parsed_cleanly(&parsed), "{}", String::from_utf8_lossy(m));
        }
    }

    /// The fast check against the exact scan on random header blocks built from every
    /// kind of line: "clean" must never hide a stray line.
    #[test]
    fn clean_by_the_parse_implies_no_stray_line() {
        const LINES: &[&[u8]] = &[
            b"Subject: s",
            b"From: A <a@example.com>",
            b"To: r@example.com, =?utf-8?q?x?= <x@y>",
            b"Message-ID: <id@example.com>",
            b"Content-Type: text/plain; charset=utf-8",
            b"X-PM-Tag: t",
            b"X-Obs : v",
            b"X-Empty:",
            b"X-Colon: a: b",
            b"X-A-Very-Long-Header-Name-Beyond-Thirty-Four-Bytes: v",
            b" folded",
            b"\tfolded",
            b"   ",
            b"junk",
            b"<html>",
            b"not a: field",
            b": no name",
            b"Na\xc3\xafve: 8-bit",
            b"Sub\x01ject: control",
            b"Subject",
            b"=?utf-8?q?word?=: v",
            b"",
        ];
        const ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\n", b"\r", b" \r\n"];
        let mut rng = crate::smtp::testing::Rng::new(7);
        let mut next = |n: usize| rng.below(n);
        let (mut clean, mut total) = (0, 0);
        for _ in 0..20_000 {
            let mut m = Vec::new();
            for _ in 0..1 + next(6) {
                m.extend_from_slice(LINES[next(LINES.len())]);
                m.extend_from_slice(ENDS[next(ENDS.len())]);
            }
            if next(4) > 0 {
                m.extend_from_slice(b"\r\nbody\r\nX-PM-Tag: in the body\r\n");
            }
            let Some(parsed) = parse(&m) else { continue };
            total += 1;
            if parsed_cleanly(&parsed) {
                clean += 1;
                assert_eq!(stray_line(&m), None, "{:?}", String::from_utf8_lossy(&m));
            }
        }
        assert!(
            clean > total / 20,
            "the fast path is taken ({clean} of {total})"
        );
    }
}
