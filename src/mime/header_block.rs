//! Where the top-level header block really ends. A line that is neither a header field
//! (`name:`, the name printable ASCII without a colon, optional whitespace before the
//! colon as RFC 5322's obsolete syntax allows) nor a continuation ends the block: the
//! body starts there, as Python's `email` package and Postfix's cleanup read it.
//! mail-parser skips such a line and keeps reading headers, so a line of junk could
//! smuggle a provider header from the body into the header block; a message with one
//! is given the missing blank line before it is parsed.

use std::borrow::Cow;

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

/// The offset of the first line of the header block that is neither a header field nor
/// a continuation, if the block ends at one rather than at an empty line.
pub fn stray_line(message: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < message.len() {
        let end = memchr::memchr(b'\n', &message[at..]).map_or(message.len(), |i| at + i + 1);
        let line = &message[at..end];
        let content = line
            .strip_suffix(b"\n")
            .map_or(line, |l| l.strip_suffix(b"\r").unwrap_or(l));
        if content.is_empty() {
            return None;
        }
        let continuation = matches!(content[0], b' ' | b'\t');
        if !continuation && !is_field(content) {
            return Some(at);
        }
        at = end;
    }
    None
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
}
