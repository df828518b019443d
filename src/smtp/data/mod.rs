//! The DATA phase: dot-unstuffing as bytes stream in, end detection where **only**
//! CRLF.CRLF ends the message, lone CR/LF detection, and the size cap.
//!
//! The receiver never stops early: an oversize or malformed message is read to its real
//! end (bounded memory: nothing past the cap is kept) so that no body bytes are ever
//! taken for commands, and only then answered (chasquid's rule).

use super::limits::BareLf;

#[cfg(any(test, feature = "fuzzing"))]
pub mod reference;

/// Where the scanner stands between two calls of `feed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// At the start of a line; `after_crlf` says whether the previous line ended with a
    /// real CRLF (only then can a `.` line end the message).
    LineStart { after_crlf: bool },
    /// Saw `.` at the start of a line.
    Dot { after_crlf: bool },
    /// Saw `.` and CR at the start of a line.
    DotCr { after_crlf: bool },
    /// Inside a line.
    InLine,
    /// Saw CR inside a line.
    Cr,
}

/// How a finished message came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Complete,
    /// More than the size cap after unstuffing (`552 5.3.4`).
    TooBig,
    /// A lone CR, or a lone LF under `BareLf::Reject` (`550 5.6.0`).
    BareLineEnding,
}

#[derive(Debug)]
pub struct Receiver {
    scan: Scan,
    bare_lf: BareLf,
    limit: usize,
    too_big: bool,
    bare_line_ending: bool,
}

impl Receiver {
    pub fn new(limit: usize, bare_lf: BareLf) -> Self {
        Self {
            scan: Scan::LineStart { after_crlf: true },
            bare_lf,
            limit,
            too_big: false,
            bare_line_ending: false,
        }
    }

    /// Scans `input`, appending the unstuffed content to `body` (up to the cap). Returns
    /// `Some(consumed)` when the terminating `.CRLF` was consumed, `None` when all of
    /// `input` was taken and more is needed.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.scan == Scan::InLine {
                // Fast path: copy the run of ordinary bytes up to the next CR or LF.
                match memchr::memchr2(b'\r', b'\n', &input[i..]) {
                    Some(run) => {
                        self.push(body, &input[i..i + run]);
                        i += run;
                    }
                    None => {
                        self.push(body, &input[i..]);
                        return None;
                    }
                }
            }
            let b = input[i];
            i += 1;
            if self.step(b, body) {
                return Some(i);
            }
        }
        None
    }

    pub fn outcome(&self) -> Outcome {
        if self.too_big {
            Outcome::TooBig
        } else if self.bare_line_ending {
            Outcome::BareLineEnding
        } else {
            Outcome::Complete
        }
    }

    /// Advances by one byte; returns true at the end of the message.
    fn step(&mut self, b: u8, body: &mut Vec<u8>) -> bool {
        self.scan = match (self.scan, b) {
            (Scan::LineStart { after_crlf }, b'.') => Scan::Dot { after_crlf },
            (Scan::LineStart { .. } | Scan::InLine, b'\r') => Scan::Cr,
            (Scan::LineStart { .. } | Scan::InLine, b'\n') => self.lone_lf(body),
            (Scan::LineStart { .. } | Scan::InLine, _) => {
                self.push(body, &[b]);
                Scan::InLine
            }
            (Scan::Dot { after_crlf }, b'\r') => Scan::DotCr { after_crlf },
            // `.` then a lone LF: the dot is stuffing; the LF is a lone LF.
            (Scan::Dot { .. }, b'\n') => self.lone_lf(body),
            // RFC 5321 §4.5.2: a leading dot is removed, whatever follows it.
            (Scan::Dot { .. }, _) => {
                self.push(body, &[b]);
                Scan::InLine
            }
            (Scan::DotCr { after_crlf: true }, b'\n') => return true,
            // `.\r\n` after a lone LF never ends the message (smuggling defence); it is
            // an empty line (the dot was stuffing).
            (Scan::DotCr { after_crlf: false }, b'\n') => {
                self.push(body, b"\r\n");
                Scan::LineStart { after_crlf: true }
            }
            (Scan::DotCr { .. }, _) => self.lone_cr_then(b, body),
            (Scan::Cr, b'\n') => {
                self.push(body, b"\r\n");
                Scan::LineStart { after_crlf: true }
            }
            (Scan::Cr, _) => self.lone_cr_then(b, body),
        };
        false
    }

    fn lone_lf(&mut self, body: &mut Vec<u8>) -> Scan {
        match self.bare_lf {
            BareLf::Reject => self.bare_line_ending = true,
            BareLf::Normalize => self.push(body, b"\r\n"),
        }
        Scan::LineStart { after_crlf: false }
    }

    /// A CR followed by `b`, which is not LF: always an error (no mode accepts lone CR).
    fn lone_cr_then(&mut self, b: u8, body: &mut Vec<u8>) -> Scan {
        self.bare_line_ending = true;
        self.push(body, b"\r");
        match b {
            b'\r' => Scan::Cr,
            _ => {
                self.push(body, &[b]);
                Scan::InLine
            }
        }
    }

    fn push(&mut self, body: &mut Vec<u8>, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if body.len() + bytes.len() > self.limit {
            // Past the cap nothing is kept; the message is drained to its end.
            self.too_big = true;
            body.clear();
            return;
        }
        body.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of many sizes, checking that the result does not
    /// depend on how the bytes were split.
    fn receive(input: &[u8], limit: usize, mode: BareLf) -> (Vec<u8>, Outcome, Option<usize>) {
        let mut first = None;
        for chunk in (1..=64).chain([input.len().max(1)]) {
            let mut rx = Receiver::new(limit, mode);
            let mut body = Vec::new();
            let end = reference::feed_in_chunks(&mut rx, input, chunk, &mut body);
            let result = (body, rx.outcome(), end);
            match &first {
                None => first = Some(result),
                Some(f) => assert_eq!(f, &result, "chunk size {chunk}"),
            }
        }
        first.expect("at least one chunk size")
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf_and_reports_consumed() {
        let (body, outcome, end) = receive(
            b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
            1000,
            BareLf::Reject,
        );
        assert_eq!(body, b"Subject: x\r\n\r\nhi\r\n");
        assert_eq!(outcome, Outcome::Complete);
        assert_eq!(end, Some(21));
    }

    #[test]
    fn empty_message() {
        let (body, outcome, end) = receive(b".\r\n", 10, BareLf::Reject);
        assert_eq!((body.len(), outcome, end), (0, Outcome::Complete, Some(3)));
    }

    #[test]
    fn dot_unstuffing() {
        let (body, _, _) = receive(b"..x\r\n.y\r\n...\r\n.\r\n", 1000, BareLf::Reject);
        assert_eq!(body, b".x\r\ny\r\n..\r\n");
    }

    #[test]
    fn bare_lf_smuggling_does_not_end_the_message() {
        let input = b"a\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\n";
        let (body, outcome, end) = receive(input, 1000, BareLf::Reject);
        assert_eq!(outcome, Outcome::BareLineEnding);
        assert_eq!(end, Some(input.len()));
        assert!(body.ends_with(b"MAIL FROM:<x@y>\r\n\r\n"));
        // Normalising still never ends at `\n.\r\n`.
        let (body, outcome, end) = receive(input, 1000, BareLf::Normalize);
        assert_eq!((outcome, end), (Outcome::Complete, Some(input.len())));
        assert_eq!(body, b"a\r\n\r\nMAIL FROM:<x@y>\r\n\r\n");
    }

    #[test]
    fn lone_lf_ending_and_lone_dot_lf_do_not_end() {
        let (_, outcome, end) = receive(b"a\n.\n", 1000, BareLf::Normalize);
        assert_eq!((outcome, end), (Outcome::Complete, None));
        let (body, outcome, end) = receive(b"a\nb\n\r\n.\r\n", 1000, BareLf::Normalize);
        assert_eq!(body, b"a\r\nb\r\n\r\n");
        assert_eq!((outcome, end), (Outcome::Complete, Some(9)));
    }

    #[test]
    fn lone_cr_is_rejected_in_both_modes() {
        for mode in [BareLf::Reject, BareLf::Normalize] {
            let (_, outcome, end) = receive(b"a\rb\r\n.\r\n", 1000, mode);
            assert_eq!((outcome, end), (Outcome::BareLineEnding, Some(8)));
            let (_, outcome, _) = receive(b".\rx\r\n.\r\n", 1000, mode);
            assert_eq!(outcome, Outcome::BareLineEnding);
            let (_, outcome, _) = receive(b"x\r\r\n.\r\n", 1000, mode);
            assert_eq!(outcome, Outcome::BareLineEnding);
        }
    }

    #[test]
    fn oversize_is_drained_to_the_real_end() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\r\n.\nHELP\r\n.\r\nNOOP\r\n");
        let (body, outcome, end) = receive(&input, 100, BareLf::Reject);
        assert_eq!(outcome, Outcome::TooBig);
        assert!(body.is_empty(), "nothing of an oversize message is kept");
        assert_eq!(end, Some(input.len() - 6));
    }

    /// Every input over the alphabet that matters (CR, LF, dot, other) up to length 8,
    /// in one piece and byte by byte, agrees with the naive reference model.
    #[test]
    fn agrees_with_the_reference_model_exhaustively() {
        const ALPHABET: [u8; 4] = [b'\r', b'\n', b'.', b'a'];
        let mut checked = 0;
        for len in 0..=8u32 {
            for mut code in 0..4usize.pow(len) {
                let input: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = ALPHABET[code % 4];
                        code /= 4;
                        b
                    })
                    .collect();
                for limit in [usize::MAX, 3] {
                    check_against_reference(&input, limit);
                }
                checked += 1;
            }
        }
        assert_eq!(checked, (0..=8).map(|n| 4usize.pow(n)).sum::<usize>());
    }

    fn check_against_reference(input: &[u8], limit: usize) {
        let expected = reference::expect(input);
        for chunk in [input.len().max(1), 1] {
            let mut rx = Receiver::new(limit, BareLf::Reject);
            let mut body = Vec::new();
            let end = reference::feed_in_chunks(&mut rx, input, chunk, &mut body);
            assert_eq!(end, expected.end, "{input:?}: end");
            if end.is_none() {
                continue;
            }
            let outcome = rx.outcome();
            if expected.bare {
                assert!(
                    matches!(outcome, Outcome::BareLineEnding | Outcome::TooBig),
                    "{input:?}: {outcome:?}"
                );
            } else if expected.body.len() > limit {
                assert_eq!(outcome, Outcome::TooBig, "{input:?}");
            } else {
                assert_eq!(
                    (outcome, &body),
                    (Outcome::Complete, &expected.body),
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn exactly_at_the_limit_is_accepted() {
        let (body, outcome, _) = receive(b"abc\r\n.\r\n", 5, BareLf::Reject);
        assert_eq!(
            (body.as_slice(), outcome),
            (&b"abc\r\n"[..], Outcome::Complete)
        );
        let (_, outcome, _) = receive(b"abcd\r\n.\r\n", 5, BareLf::Reject);
        assert_eq!(outcome, Outcome::TooBig);
    }
}
