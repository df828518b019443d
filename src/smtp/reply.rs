//! Every reply the SMTP session can send, as named constants: one of the two places where
//! reply codes live (the other is `upstream::verdict`, for the upstream's verdicts).
//!
//! Completion replies carry an RFC 3463 enhanced status code. Intermediate replies (`334`,
//! `354`), the greeting and the EHLO/HELO response have none, as RFC 2034 prescribes.

use std::borrow::Cow;

/// One SMTP reply: a three-digit code, an enhanced status code and a one-line text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    status: &'static str,
    text: Cow<'static, str>,
}

impl Reply {
    /// A reply with a fixed text (`status` may be empty for intermediate replies).
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Self {
        Self {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    /// A reply whose text is built at run time. The text must already be one line of
    /// printable ASCII; `sanitize_text` makes any string so.
    pub fn with_text(code: u16, status: &'static str, text: String) -> Self {
        Self {
            code,
            status,
            text: Cow::Owned(text),
        }
    }

    /// The same reply with `detail` appended to its text after `": "`, sanitised.
    pub fn with_detail(&self, detail: &str) -> Self {
        let mut text = String::with_capacity(self.text.len() + 2 + detail.len().min(MAX_DETAIL));
        text.push_str(&self.text);
        let detail = sanitize_text(detail);
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(&detail);
        }
        Self::with_text(self.code, self.status, text)
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code, e.g. `"5.5.2"`; empty for intermediate replies.
    pub fn status(&self) -> &'static str {
        self.status
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Appends the wire form, `CODE STATUS TEXT\r\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        push_code(out, self.code);
        out.push(b' ');
        if !self.status.is_empty() {
            out.extend_from_slice(self.status.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status.is_empty() {
            write!(f, "{} {}", self.code, self.text)
        } else {
            write!(f, "{} {} {}", self.code, self.status, self.text)
        }
    }
}

/// Writes a multi-line reply (`250-a`, `250-b`, `250 c`) with no enhanced status code.
pub fn write_multiline<'a>(out: &mut Vec<u8>, code: u16, lines: impl IntoIterator<Item = &'a str>) {
    let mut lines = lines.into_iter().peekable();
    while let Some(line) = lines.next() {
        push_code(out, code);
        out.push(if lines.peek().is_some() { b'-' } else { b' ' });
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

fn push_code(out: &mut Vec<u8>, code: u16) {
    let code = code.min(999);
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
}

/// Longest peer-supplied detail put into a reply text.
pub const MAX_DETAIL: usize = 200;

/// Makes text from a peer (the upstream's `grpc-message`) safe for one reply line:
/// printable ASCII only (anything else becomes `?`, line breaks become spaces), bounded.
pub fn sanitize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_DETAIL));
    for c in text.trim().chars() {
        if out.len() >= MAX_DETAIL {
            out.push_str("...");
            break;
        }
        out.push(match c {
            ' '..='~' => c,
            '\r' | '\n' | '\t' => ' ',
            _ => '?',
        });
    }
    out
}

// --- Connection and command replies -------------------------------------------------

pub const OK: Reply = Reply::new(250, "2.0.0", "OK");
pub const RESET: Reply = Reply::new(250, "2.0.0", "Reset state");
pub const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender OK");
pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient OK");
pub const HELP: Reply = Reply::new(
    214,
    "2.0.0",
    "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
);
pub const VRFY: Reply = Reply::new(
    252,
    "2.5.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
);
pub const BYE: Reply = Reply::new(221, "2.0.0", "Bye");
pub const READY_FOR_TLS: Reply = Reply::new(220, "2.0.0", "Ready to start TLS");
pub const START_DATA: Reply = Reply::new(354, "", "End data with <CR><LF>.<CR><LF>");
pub const AUTH_OK: Reply = Reply::new(235, "2.7.0", "Authentication successful");
pub const AUTH_PLAIN_CHALLENGE: Reply = Reply::new(334, "", "");
/// Base64 of `Username:`, the customary AUTH LOGIN prompt.
pub const AUTH_LOGIN_USERNAME: Reply = Reply::new(334, "", "VXNlcm5hbWU6");
/// Base64 of `Password:`.
pub const AUTH_LOGIN_PASSWORD: Reply = Reply::new(334, "", "UGFzc3dvcmQ6");

pub const IDLE_TIMEOUT: Reply = Reply::new(421, "4.4.2", "Idle timeout, closing connection");
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0", "Too many errors, closing connection");
/// A client that talked before the greeting (`--greet-pause`): spamware does, real
/// clients wait.
pub const TALKED_FIRST: Reply = Reply::new(
    554,
    "5.5.0",
    "Protocol error: client talked before the greeting, closing connection",
);
/// `--max-connections` or `--max-connections-per-ip` reached.
pub const TOO_MANY_CONNECTIONS: Reply =
    Reply::new(421, "4.7.0", "Too many connections, try again later");
/// `--max-auth-failures` reached.
pub const TOO_MANY_AUTH_FAILURES: Reply = Reply::new(
    421,
    "4.7.0",
    "Too many failed authentications, closing connection",
);
/// The gateway is draining (a restart or a deploy): the client keeps its message and
/// retries, elsewhere or later.
pub const SHUTTING_DOWN: Reply = Reply::new(421, "4.3.2", "Service shutting down");
/// `--max-messages-per-connection` reached: reconnecting spreads persistent clients over
/// the hosts behind a balancer.
pub const CONNECTION_MESSAGE_LIMIT: Reply = Reply::new(
    421,
    "4.7.0",
    "Message limit for this connection reached, reconnect to send more",
);
pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
pub const LOCAL_ERROR: Reply = Reply::new(451, "4.3.0", "Local error, try again later");

pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
pub const AUTH_LINE_TOO_LONG: Reply =
    Reply::new(500, "5.5.6", "Authentication exchange line is too long");
pub const BARE_LINE_ENDING_IN_COMMAND: Reply = Reply::new(
    500,
    "5.5.2",
    "Command line must end with CRLF and contain no bare CR or NUL",
);
pub const UNRECOGNIZED: Reply = Reply::new(500, "5.5.1", "Command unrecognized");
pub const NOT_SMTP: Reply = Reply::new(500, "5.5.1", "This is an SMTP server, closing connection");
pub const SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax error in parameters or arguments");
pub const HELO_SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax: EHLO hostname");
pub const SENDER_SYNTAX: Reply = Reply::new(501, "5.1.7", "Bad sender address syntax");
pub const RECIPIENT_SYNTAX: Reply = Reply::new(501, "5.1.3", "Bad recipient address syntax");
pub const AUTH_BAD_BASE64: Reply = Reply::new(501, "5.5.2", "Cannot decode base64 response");
pub const AUTH_MALFORMED: Reply = Reply::new(501, "5.5.2", "Malformed authentication response");
pub const AUTH_CANCELLED: Reply = Reply::new(501, "5.7.0", "Authentication cancelled");
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
pub const BDAT_NOT_SUPPORTED: Reply =
    Reply::new(502, "5.5.1", "CHUNKING not supported; chunk discarded");
pub const BAD_SEQUENCE: Reply = Reply::new(503, "5.5.1", "Bad sequence of commands");
pub const EHLO_FIRST: Reply = Reply::new(503, "5.5.1", "Send EHLO first");
pub const NESTED_MAIL: Reply = Reply::new(503, "5.5.1", "Sender already specified");
pub const MAIL_FIRST: Reply = Reply::new(503, "5.5.1", "Need MAIL command first");
pub const RCPT_FIRST: Reply = Reply::new(503, "5.5.1", "Need RCPT command first");
pub const ALREADY_AUTHENTICATED: Reply = Reply::new(503, "5.5.1", "Already authenticated");
pub const AUTH_IN_TRANSACTION: Reply =
    Reply::new(503, "5.5.1", "AUTH not allowed during a mail transaction");
pub const AUTH_NOT_ENABLED: Reply =
    Reply::new(503, "5.5.1", "Authentication not enabled on this listener");
pub const TLS_ALREADY_ACTIVE: Reply = Reply::new(503, "5.5.1", "TLS already active");
pub const TLS_UNAVAILABLE: Reply = Reply::new(502, "5.5.1", "STARTTLS not available");
pub const AUTH_MECHANISM: Reply = Reply::new(504, "5.5.4", "Unrecognized authentication type");
pub const TLS_REQUIRED: Reply = Reply::new(530, "5.7.0", "Must issue a STARTTLS command first");
pub const AUTH_REQUIRED: Reply = Reply::new(530, "5.7.0", "Authentication required");
pub const AUTH_INVALID: Reply = Reply::new(535, "5.7.8", "Authentication credentials invalid");
pub const AUTH_NEEDS_DEFAULT_APPLICATION: Reply = Reply::new(
    535,
    "5.7.8",
    "Provider-style user name (token or SMTP_Injection): use the application code as the user name, or start the gateway with --default-application",
);
pub const AUTH_BAD_SUBACCOUNT: Reply = Reply::new(
    535,
    "5.7.8",
    "SparkPost subaccount must be a number: SMTP_Injection:X-MSYS-SUBACCOUNT=<n>",
);
pub const MESSAGE_TOO_BIG: Reply = Reply::new(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size",
);
pub const NON_ASCII_ADDRESS: Reply = Reply::new(
    553,
    "5.6.7",
    "Non-ASCII address without the SMTPUTF8 parameter",
);
pub const PIPELINED_STARTTLS: Reply = Reply::new(
    554,
    "5.5.0",
    "Commands pipelined after STARTTLS, closing connection",
);
pub const RELAY_ACCESS_DENIED: Reply =
    Reply::new(554, "5.7.1", "Relay access denied, closing connection");
pub const NO_VALID_RECIPIENTS: Reply = Reply::new(554, "5.5.1", "No valid recipients");
pub const UNSUPPORTED_PARAMETER: Reply = Reply::new(
    555,
    "5.5.4",
    "MAIL/RCPT parameter not recognized or not implemented",
);

// --- Message content replies ----------------------------------------------------------

pub const BARE_LINE_ENDING: Reply = Reply::new(
    550,
    "5.6.0",
    "Message contains a bare CR or LF; send lines ending in CRLF",
);
pub const MIME_UNPARSEABLE: Reply = Reply::new(550, "5.6.0", "Message could not be parsed");

// --- Provider extension headers (dialects.md, "Bad input") ------------------------------
// The texts name the header and the problem; they carry a sender's strings, so they are
// sanitised like any peer text.

/// Malformed control data in a provider header.
pub fn bad_provider_header(text: &str) -> Reply {
    Reply::with_text(550, "5.6.0", sanitize_text(text))
}

/// More recipients in provider headers than allowed.
pub fn too_many_header_recipients(text: &str) -> Reply {
    Reply::with_text(550, "5.5.3", sanitize_text(text))
}

/// A provider header's recipient that is not an address.
pub fn bad_header_address(text: &str) -> Reply {
    Reply::with_text(550, "5.1.3", sanitize_text(text))
}

/// A provider header over its size limit.
pub fn header_too_big(text: &str) -> Reply {
    Reply::with_text(552, "5.3.4", sanitize_text(text))
}

/// A message whose structure is over a limit (header fields, MIME parts, nesting).
pub fn message_too_complex(text: &str) -> Reply {
    Reply::with_text(550, "5.6.0", sanitize_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_has_code_status_and_text() {
        let mut out = Vec::new();
        LINE_TOO_LONG.write_to(&mut out);
        START_DATA.write_to(&mut out);
        assert_eq!(
            out,
            b"500 5.5.2 Line too long\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn multiline_uses_dash_until_the_last_line() {
        let mut out = Vec::new();
        write_multiline(&mut out, 250, ["host", "PIPELINING", "SIZE 10"]);
        assert_eq!(out, b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
    }

    #[test]
    fn detail_is_one_printable_bounded_line() {
        let r = LOCAL_ERROR.with_detail("bad\r\nthing \u{1F600}");
        assert_eq!(r.text(), "Local error, try again later: bad  thing ?");
        let long = "x".repeat(1000);
        assert!(LOCAL_ERROR.with_detail(&long).text().len() < 300);
        assert_eq!(LOCAL_ERROR.with_detail("  ").text(), LOCAL_ERROR.text());
    }
}
