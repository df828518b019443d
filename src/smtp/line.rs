//! Command-line framing: one LF-terminated line at a time out of the bytes offered,
//! within the limit for its kind (a command line, or an AUTH line, which may be much
//! longer). An over-long line is read to its end and discarded, so its tail never runs
//! as a command, and only then refused; one whose end never comes within
//! `max_discarded_line` ends the connection.

use super::limits::Limits;

/// What the next bytes hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A whole line, without its LF; `used` bytes taken, and whether more bytes follow
    /// it already (pipelining).
    Line {
        line: &'a [u8],
        used: usize,
        pipelined_after: bool,
    },
    /// The line is not complete yet: nothing taken.
    Incomplete,
    /// Bytes of an over-long line taken while waiting for its end.
    Discarding { used: usize },
    /// An over-long line ended: refuse it (an AUTH line when `auth`).
    TooLong { used: usize, auth: bool },
    /// An over-long line went on past every limit: close the connection.
    Runaway { used: usize },
}

/// The framing state between offers: only an over-long line being discarded.
#[derive(Debug, Default)]
pub struct Framer {
    discard: Option<Discard>,
}

#[derive(Debug, Clone, Copy)]
struct Discard {
    seen: usize,
    auth: bool,
}

impl Framer {
    /// Whether an over-long line is being discarded.
    pub fn is_discarding(&self) -> bool {
        self.discard.is_some()
    }

    /// Frames the start of `rest`. `in_sasl`: the session awaits a SASL response, so
    /// the line is an AUTH line whatever it says.
    pub fn next<'a>(&mut self, rest: &'a [u8], in_sasl: bool, limits: &Limits) -> Framed<'a> {
        if let Some(discard) = self.discard {
            return match memchr::memchr(b'\n', rest) {
                Some(lf) => {
                    self.discard = None;
                    Framed::TooLong {
                        used: lf + 1,
                        auth: discard.auth,
                    }
                }
                None if discard.seen + rest.len() > limits.max_discarded_line => {
                    self.discard = None;
                    Framed::Runaway { used: rest.len() }
                }
                None => {
                    self.discard = Some(Discard {
                        seen: discard.seen + rest.len(),
                        auth: discard.auth,
                    });
                    Framed::Discarding { used: rest.len() }
                }
            };
        }
        let auth = in_sasl
            || rest
                .get(..5)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH "));
        let limit = if auth {
            limits.max_auth_line
        } else {
            limits.max_command_line
        };
        let window = &rest[..rest.len().min(limit)];
        match memchr::memchr(b'\n', window) {
            Some(lf) => Framed::Line {
                line: &rest[..lf],
                used: lf + 1,
                pipelined_after: rest.len() > lf + 1,
            },
            None if rest.len() >= limit => match memchr::memchr(b'\n', &rest[limit..]) {
                // The over-long line's end is already here: refuse it and go on.
                Some(lf) => Framed::TooLong {
                    used: limit + lf + 1,
                    auth,
                },
                None => {
                    self.discard = Some(Discard {
                        seen: rest.len(),
                        auth,
                    });
                    Framed::Discarding { used: rest.len() }
                }
            },
            None => Framed::Incomplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_command_line: 8,
            max_auth_line: 16,
            max_discarded_line: 32,
            ..Limits::default()
        }
    }

    #[test]
    fn lines_incomplete_lines_and_pipelining() {
        let mut f = Framer::default();
        assert_eq!(
            f.next(b"NOOP\r\nQUIT\r\n", false, &limits()),
            Framed::Line {
                line: b"NOOP\r",
                used: 6,
                pipelined_after: true
            }
        );
        assert_eq!(f.next(b"NOO", false, &limits()), Framed::Incomplete);
    }

    #[test]
    fn an_over_long_line_is_discarded_to_its_end_then_refused() {
        let mut f = Framer::default();
        assert_eq!(
            f.next(b"XXXXXXXXXX", false, &limits()),
            Framed::Discarding { used: 10 }
        );
        assert!(f.is_discarding());
        assert_eq!(
            f.next(b"YY\r\nNOOP\r\n", false, &limits()),
            Framed::TooLong {
                used: 4,
                auth: false
            }
        );
        assert!(!f.is_discarding());
        // The end already in view: refused at once.
        assert_eq!(
            f.next(b"XXXXXXXXXXX\nNOOP\n", false, &limits()),
            Framed::TooLong {
                used: 12,
                auth: false
            }
        );
    }

    #[test]
    fn auth_lines_have_their_own_limit_and_a_runaway_line_ends_it() {
        let mut f = Framer::default();
        let auth = b"AUTH PLAIN AAAAAA\r\n";
        assert!(matches!(
            f.next(auth, false, &limits()),
            Framed::TooLong { auth: true, .. }
        ));
        assert!(matches!(
            f.next(b"AAAAAAAAAAAA\r\n", true, &limits()),
            Framed::Line { .. }
        ));
        assert_eq!(
            f.next(&[b'X'; 20], false, &limits()),
            Framed::Discarding { used: 20 }
        );
        assert_eq!(
            f.next(&[b'X'; 20], false, &limits()),
            Framed::Runaway { used: 20 }
        );
        assert!(!f.is_discarding());
    }
}
