//! SASL PLAIN (RFC 4616) and LOGIN decoding. Credentials are not checked here: the
//! username is the application code and the password the API token, both forwarded to
//! the upstream, which is the only judge of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::reply::{self, Reply};

/// What AUTH established: forwarded with every message of the session.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub application: String,
    pub token: Token,
}

/// The API token. Its `Debug` never shows it, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The secret itself, for the `authorization` request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("application", &self.application)
            .field("token", &self.token)
            .finish()
    }
}

/// A client's SASL response line: `*` cancels (RFC 4954 §4).
pub fn is_cancel(line: &[u8]) -> bool {
    line == b"*"
}

/// Decodes an AUTH PLAIN response: base64 of `authzid NUL authcid NUL passwd`.
pub fn plain(response: &[u8]) -> Result<Credentials, Reply> {
    let decoded = decode(response)?;
    let mut fields = decoded.split(|&b| b == 0);
    let (Some(_authzid), Some(user), Some(pass), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(reply::AUTH_MALFORMED);
    };
    credentials(user, pass)
}

/// Decodes one AUTH LOGIN field (username or password).
pub fn login_field(response: &[u8]) -> Result<Vec<u8>, Reply> {
    decode(response)
}

/// Checks the form of a username/password pair (not their validity).
pub fn credentials(user: &[u8], pass: &[u8]) -> Result<Credentials, Reply> {
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
            .map(str::to_owned)
    };
    match (text(user), text(pass)) {
        (Some(application), Some(token)) => Ok(Credentials {
            application,
            token: Token::new(token),
        }),
        _ => Err(reply::AUTH_INVALID),
    }
}

fn decode(response: &[u8]) -> Result<Vec<u8>, Reply> {
    // RFC 4954 §4: a lone `=` is an empty initial response.
    if response == b"=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(response)
        .map_err(|_| reply::AUTH_BAD_BASE64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    #[test]
    fn plain_takes_authcid_and_password() {
        let c = plain(&b64(b"\0APP-CODE\0tok")).expect("valid");
        assert_eq!(
            (c.application.as_str(), c.token.expose()),
            ("APP-CODE", "tok")
        );
        let c = plain(&b64(b"admin\0APP\0tok")).expect("authzid is ignored");
        assert_eq!(c.application, "APP");
    }

    #[test]
    fn plain_rejects_malformed_input() {
        assert_eq!(plain(b"!!!"), Err(reply::AUTH_BAD_BASE64));
        assert_eq!(plain(&b64(b"no-nuls")), Err(reply::AUTH_MALFORMED));
        assert_eq!(plain(&b64(b"\0a\0b\0c")), Err(reply::AUTH_MALFORMED));
        assert_eq!(plain(&b64(b"\0\0tok")), Err(reply::AUTH_INVALID));
        assert_eq!(plain(&b64(b"\0app\0")), Err(reply::AUTH_INVALID));
        assert_eq!(plain(b"="), Err(reply::AUTH_MALFORMED));
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let c = plain(&b64(b"\0app\0sekrit")).expect("valid");
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
