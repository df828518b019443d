//! The one table from an upstream call's outcome to the SMTP reply: the second and last
//! place where reply codes live. Anything but an `OK` status with a decoded response is
//! never `250`.

use super::grpc::{Code, Status};
use crate::smtp::reply::sanitize_text;
use crate::smtp::{Reply, TokenOwner};

/// How a call ended.
#[derive(Debug)]
pub enum Outcome {
    /// The upstream accepted the message.
    Accepted { message_code: String },
    /// The upstream answered with a non-OK gRPC status.
    Refused(Status),
    /// No answer: connection failure, reset, GOAWAY before the response, deadline.
    Transport(TransportError),
}

/// How a call ended, for counting and logging: the gRPC status, `CONNECT_ERROR` (no
/// usable connection) or `LOCAL_DEADLINE` (our deadline passed first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallStatus {
    Grpc(Code),
    ConnectError,
    LocalDeadline,
}

impl CallStatus {
    /// How many distinct statuses there are (`index` is below it).
    pub const COUNT: usize = 19;

    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc(code) => code.name(),
            Self::ConnectError => "CONNECT_ERROR",
            Self::LocalDeadline => "LOCAL_DEADLINE",
        }
    }

    /// A dense index: the gRPC codes 0 to 16 (others count as UNKNOWN), then the two
    /// local ones.
    pub fn index(self) -> usize {
        match self {
            Self::Grpc(Code(code @ 0..=16)) => code as usize,
            Self::Grpc(_) => Code::UNKNOWN.0 as usize,
            Self::ConnectError => 17,
            Self::LocalDeadline => 18,
        }
    }

    pub fn from_index(index: usize) -> Self {
        match index {
            17 => Self::ConnectError,
            18 => Self::LocalDeadline,
            code => Self::Grpc(Code(code as u32)),
        }
    }
}

impl Outcome {
    pub fn status(&self) -> CallStatus {
        match self {
            Self::Accepted { .. } => CallStatus::Grpc(Code::OK),
            Self::Refused(status) => CallStatus::Grpc(status.code),
            Self::Transport(TransportError::DeadlineExceeded) => CallStatus::LocalDeadline,
            // OK with a body that does not decode: what gRPC calls INTERNAL.
            Self::Transport(TransportError::BadResponse(_)) => CallStatus::Grpc(Code::INTERNAL),
            Self::Transport(_) => CallStatus::ConnectError,
        }
    }
}

/// Why no verdict came back. Each becomes `451 4.4.1` with its own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    Connect(String),
    Tls(String),
    Http2(String),
    DeadlineExceeded,
    /// Dialling is paused after a failure (backoff); the call was not attempted.
    Backoff,
    /// `OK` with no decodable response message.
    BadResponse(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect to upstream: {e}"),
            Self::Tls(e) => write!(f, "upstream TLS failed: {e}"),
            Self::Http2(e) => write!(f, "upstream connection failed: {e}"),
            Self::DeadlineExceeded => f.write_str("upstream deadline exceeded"),
            Self::Backoff => f.write_str("upstream unavailable, reconnecting"),
            Self::BadResponse(e) => write!(f, "bad upstream response: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

// The exact replies of the contract's table (notify-api.md, "Replies").
pub const UNAUTHENTICATED: Reply = Reply::new(535, "5.7.8", "Bad application code or API token");
pub const PERMISSION_DENIED: Reply =
    Reply::new(550, "5.7.1", "Token has no rights for this application");
pub const BAD_CONTENT: Reply = Reply::new(550, "5.6.0", "Bad MIME content");
pub const NOT_FOUND: Reply = Reply::new(550, "5.1.1", "Application or recipient not found");
pub const RATE_LIMITED: Reply = Reply::new(452, "4.5.3", "Rate limit reached, retry later");
pub const TRANSIENT_UPSTREAM: Reply =
    Reply::new(451, "4.4.1", "Transient upstream error, retry later");
pub const TRANSIENT_INTERNAL: Reply =
    Reply::new(451, "4.5.0", "Transient internal error, retry later");
/// The relay's own token refused: the operator fixes it and reloads; the client keeps
/// the message meanwhile.
pub const GATEWAY_CREDENTIALS_REFUSED: Reply = Reply::new(
    451,
    "4.7.0",
    "The gateway's credentials were refused upstream, retry later",
);

/// The SMTP reply for an outcome of a call made with `owner`'s token. The upstream's
/// `grpc-message` (or the transport error) is appended, sanitised, so the client sees
/// why.
pub fn reply(outcome: &Outcome, owner: TokenOwner) -> Reply {
    match outcome {
        Outcome::Accepted { message_code } => queued(message_code, 0),
        Outcome::Refused(status) => status_reply(status.code, owner).with_detail(&status.message),
        Outcome::Transport(error) => TRANSIENT_UPSTREAM.with_detail(&error.to_string()),
    }
}

/// Whether the upstream refused the token itself (the operator's problem when the
/// token is the gateway's).
pub fn is_credentials_refusal(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Refused(status)
        if matches!(status.code, Code::UNAUTHENTICATED | Code::PERMISSION_DENIED))
}

/// `250 2.0.0 Ok: queued as <code>`: Postfix's wording, which log parsers and client
/// libraries already read the id from; `(+N more)` after a fan-out of N + 1 calls.
pub fn queued(first_code: &str, more: usize) -> Reply {
    let code = sanitize_text(first_code);
    let text = if more == 0 {
        format!("Ok: queued as {code}")
    } else {
        format!("Ok: queued as {code} (+{more} more)")
    };
    Reply::with_text(250, "2.0.0", text)
}

/// The reply for a fan-out: `250` only when every call was accepted; otherwise the
/// most severe failure's reply (permanent before transient), its text saying how many
/// recipients were accepted. `calls` pairs each call's outcome with its recipients.
pub fn fanout_reply(calls: &[(&Outcome, usize)], owner: TokenOwner) -> Reply {
    let total: usize = calls.iter().map(|(_, n)| n).sum();
    let accepted: usize = calls
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Accepted { .. }))
        .map(|(_, n)| n)
        .sum();
    let replies = calls.iter().map(|(outcome, _)| reply(outcome, owner));
    let worst = replies.filter(|r| r.code() >= 400).reduce(|worst, r| {
        if r.code() / 100 > worst.code() / 100 {
            r
        } else {
            worst
        }
    });
    match worst {
        None => {
            let first = calls.iter().find_map(|(o, _)| match o {
                Outcome::Accepted { message_code } => Some(message_code.as_str()),
                _ => None,
            });
            queued(first.unwrap_or_default(), calls.len().saturating_sub(1))
        }
        Some(failure) => Reply::with_text(
            failure.code(),
            failure.status(),
            format!("{accepted} of {total} recipients accepted; retrying is safe"),
        )
        .with_detail(failure.text()),
    }
}

fn status_reply(code: Code, owner: TokenOwner) -> Reply {
    match code {
        Code::UNAUTHENTICATED | Code::PERMISSION_DENIED if owner == TokenOwner::Gateway => {
            GATEWAY_CREDENTIALS_REFUSED
        }
        Code::UNAUTHENTICATED => UNAUTHENTICATED,
        Code::PERMISSION_DENIED => PERMISSION_DENIED,
        Code::INVALID_ARGUMENT | Code::FAILED_PRECONDITION | Code::OUT_OF_RANGE => BAD_CONTENT,
        Code::NOT_FOUND => NOT_FOUND,
        Code::RESOURCE_EXHAUSTED => RATE_LIMITED,
        Code::DEADLINE_EXCEEDED | Code::UNAVAILABLE => TRANSIENT_UPSTREAM,
        _ => TRANSIENT_INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: Code, message: &str) -> String {
        reply(
            &Outcome::Refused(Status::new(code, message)),
            TokenOwner::Client,
        )
        .to_string()
    }

    #[test]
    fn accepted_carries_the_message_code() {
        let r = reply(
            &Outcome::Accepted {
                message_code: "A1B2-C3".into(),
            },
            TokenOwner::Client,
        );
        assert_eq!(r.to_string(), "250 2.0.0 Ok: queued as A1B2-C3");
        assert_eq!(
            queued("A1", 4).to_string(),
            "250 2.0.0 Ok: queued as A1 (+4 more)"
        );
    }

    #[test]
    fn a_fan_out_is_250_only_when_every_call_was_accepted() {
        let ok = |code: &str| Outcome::Accepted {
            message_code: code.into(),
        };
        let (a, b) = (ok("A"), ok("B"));
        assert_eq!(
            fanout_reply(&[(&a, 2), (&b, 3)], TokenOwner::Client).to_string(),
            "250 2.0.0 Ok: queued as A (+1 more)"
        );
        let busy = Outcome::Refused(Status::new(Code::UNAVAILABLE, "busy"));
        let gone = Outcome::Refused(Status::new(Code::NOT_FOUND, "no such user"));
        assert_eq!(
            fanout_reply(&[(&a, 3), (&busy, 2)], TokenOwner::Client).to_string(),
            "451 4.4.1 3 of 5 recipients accepted; retrying is safe: \
             Transient upstream error, retry later: busy"
        );
        let reply =
            fanout_reply(&[(&busy, 1), (&a, 3), (&gone, 1)], TokenOwner::Client).to_string();
        assert!(
            reply.starts_with("550 5.1.1 3 of 5 recipients accepted;"),
            "permanent before transient: {reply}"
        );
    }

    #[test]
    fn every_row_of_the_table() {
        let rows = [
            (Code::UNAUTHENTICATED, "535 5.7.8"),
            (Code::PERMISSION_DENIED, "550 5.7.1"),
            (Code::INVALID_ARGUMENT, "550 5.6.0"),
            (Code::FAILED_PRECONDITION, "550 5.6.0"),
            (Code::OUT_OF_RANGE, "550 5.6.0"),
            (Code::NOT_FOUND, "550 5.1.1"),
            (Code::RESOURCE_EXHAUSTED, "452 4.5.3"),
            (Code::DEADLINE_EXCEEDED, "451 4.4.1"),
            (Code::UNAVAILABLE, "451 4.4.1"),
            (Code::INTERNAL, "451 4.5.0"),
            (Code::UNKNOWN, "451 4.5.0"),
            (Code(99), "451 4.5.0"),
        ];
        for (code, expected) in rows {
            assert!(refused(code, "").starts_with(expected), "{code:?}");
        }
    }

    #[test]
    fn a_refused_gateway_token_is_the_operators_problem() {
        for code in [Code::UNAUTHENTICATED, Code::PERMISSION_DENIED] {
            let outcome = Outcome::Refused(Status::new(code, "bad token"));
            assert!(is_credentials_refusal(&outcome));
            assert_eq!(
                reply(&outcome, TokenOwner::Gateway).to_string(),
                "451 4.7.0 The gateway's credentials were refused upstream, retry later: bad token"
            );
        }
        let not_found = Outcome::Refused(Status::new(Code::NOT_FOUND, "x"));
        assert!(!is_credentials_refusal(&not_found));
        assert!(
            reply(&not_found, TokenOwner::Gateway)
                .to_string()
                .starts_with("550 5.1.1"),
            "other refusals are the message's"
        );
    }

    #[test]
    fn upstream_message_is_appended_sanitised() {
        assert_eq!(
            refused(Code::NOT_FOUND, "no such app\r\nEVIL"),
            "550 5.1.1 Application or recipient not found: no such app  EVIL"
        );
    }

    #[test]
    fn transport_errors_are_transient() {
        let r = reply(
            &Outcome::Transport(TransportError::DeadlineExceeded),
            TokenOwner::Client,
        );
        assert_eq!(
            r.to_string(),
            "451 4.4.1 Transient upstream error, retry later: upstream deadline exceeded"
        );
    }
}
