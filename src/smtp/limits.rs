//! The bounds a session enforces. Every one has a precise reply (see `reply`) and keeps
//! memory bounded while it is being enforced.

use std::time::Duration;

/// What to do with a lone LF inside DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BareLf {
    /// Read the message to its real end, then refuse it with `550 5.6.0`.
    Reject,
    /// Take a lone LF as a line ending (stored as CRLF). The end of data is still only
    /// CRLF.CRLF, so `\n.\r\n` never ends a message.
    Normalize,
}

#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest message body accepted, in octets after dot-unstuffing (`SIZE` in EHLO).
    pub max_message_size: usize,
    /// Recipients per envelope; the next `RCPT` gets `452 4.5.3`.
    pub max_recipients: usize,
    /// Time allowed for each command line to arrive whole (a line dripped a byte at a
    /// time does not restart it), and the base time for DATA; then `421 4.4.2`.
    pub command_timeout: Duration,
    pub bare_lf: BareLf,
    /// Longest command line including CRLF (RFC 5321 §4.5.3.1.4).
    pub max_command_line: usize,
    /// Longest `AUTH` command or SASL response line including CRLF (RFC 4954 §4).
    pub max_auth_line: usize,
    /// An over-long line is discarded up to this many octets while waiting for its end;
    /// past it the connection is closed.
    pub max_discarded_line: usize,
    /// Protocol errors (unknown commands, syntax, bad sequence) before `421 4.7.0`.
    pub max_errors: u32,
    /// Messages per connection (0: no limit); then the next `MAIL` gets `421 4.7.0`.
    pub max_messages_per_connection: usize,
    /// Silence required before the greeting (zero: none); a client that talks first
    /// gets `554 5.5.0` and is closed.
    pub greet_pause: Duration,
    /// Failed authentications (bad AUTH exchanges and upstream `UNAUTHENTICATED`
    /// verdicts) before `421 4.7.0`.
    pub max_auth_failures: u32,
    /// In DATA, one more second beyond `command_timeout` per this many bytes received
    /// (Postfix's `smtpd_min_data_rate`): a message dripped slower is cut off.
    pub min_data_rate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 50,
            command_timeout: Duration::from_secs(300),
            bare_lf: BareLf::Reject,
            max_command_line: 512,
            max_auth_line: 12_288,
            max_discarded_line: 64 * 1024,
            max_errors: 20,
            max_messages_per_connection: 0,
            greet_pause: Duration::ZERO,
            max_auth_failures: 3,
            min_data_rate: 1024,
        }
    }
}
