//! SASL PLAIN (RFC 4616) and LOGIN decoding, and the user name forms of the providers
//! users migrate from (`AuthPolicy`). Credentials are not checked here: the username
//! names the application and the password is the API token, both forwarded to the
//! upstream, which is the only judge of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::command::Mechanism;
use super::reply::{self, Reply};

/// What AUTH established: forwarded with every message of the session.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub application: String,
    pub token: Token,
    /// SparkPost's `SMTP_Injection:X-MSYS-SUBACCOUNT=<n>`: becomes `meta_data.subaccount`.
    pub subaccount: Option<u64>,
    pub owner: TokenOwner,
}

/// Whose token a message goes upstream with, which decides who must act when the
/// upstream refuses it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenOwner {
    /// The client's own (from AUTH): a refused token is the client's to fix (`5xx`).
    #[default]
    Client,
    /// The gateway's (the relay's configured token): a refusal is the operator's to
    /// fix, so the client keeps the message and retries (`4xx`).
    Gateway,
}

/// How a submission listener reads AUTH user names (dialects.md, "Credentials"): the
/// application code (the core spec); a Postmark server token given as both user name
/// and password; SparkPost's `SMTP_Injection[:X-MSYS-SUBACCOUNT=<n>]`. The two provider
/// forms submit as the default application, and are refused without one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthPolicy {
    pub default_application: Option<String>,
}

/// SparkPost's fixed user name (compared case-insensitively) and its subaccount suffix.
const SPARKPOST_USER: &str = "SMTP_Injection";
const SPARKPOST_SUBACCOUNT: &str = ":X-MSYS-SUBACCOUNT=";

impl AuthPolicy {
    /// The credentials a login stands for, or the reason it cannot be used.
    pub fn resolve(&self, login: Credentials) -> Result<Credentials, Reply> {
        let provider_form = match sparkpost_subaccount(&login.application)? {
            Some(subaccount) => Some(subaccount),
            None if login.application == login.token.expose() => Some(None),
            None => None,
        };
        let Some(subaccount) = provider_form else {
            return Ok(login);
        };
        let application = self
            .default_application
            .clone()
            .ok_or(reply::AUTH_NEEDS_DEFAULT_APPLICATION)?;
        Ok(Credentials {
            application,
            subaccount,
            ..login
        })
    }
}

/// `text` after a case-insensitive `prefix`.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .and_then(|_| text.get(prefix.len()..))
}

/// `None` when `user` is not SparkPost's form; `Some(subaccount)` when it is.
fn sparkpost_subaccount(user: &str) -> Result<Option<Option<u64>>, Reply> {
    let Some(rest) = strip_prefix_ignore_case(user, SPARKPOST_USER) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some(None));
    }
    let Some(number) = strip_prefix_ignore_case(rest, SPARKPOST_SUBACCOUNT) else {
        // `SMTP_InjectionX` is somebody's application code.
        return if rest.starts_with(':') {
            Err(reply::AUTH_BAD_SUBACCOUNT)
        } else {
            Ok(None)
        };
    };
    match number.parse::<u64>() {
        Ok(n) if number.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(Some(n))),
        _ => Err(reply::AUTH_BAD_SUBACCOUNT),
    }
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
            .field("subaccount", &self.subaccount)
            .finish()
    }
}

/// Where an AUTH exchange stands: which response the server waits for.
#[derive(Debug)]
pub enum Sasl {
    /// PLAIN, after an empty `334` challenge.
    Plain,
    LoginUser,
    LoginPassword {
        user: Vec<u8>,
    },
}

/// What one step of an exchange leads to.
#[derive(Debug)]
pub enum SaslStep {
    /// Send `challenge` and wait for the next response.
    Next { state: Sasl, challenge: Reply },
    /// The exchange is over: the login (its form checked, not its validity), or why not.
    Done(Result<Credentials, Reply>),
    /// The client sent `*`.
    Cancelled,
}

impl Sasl {
    /// `AUTH <mechanism> [initial-response]`.
    pub fn start(mechanism: Mechanism, initial_response: Option<&str>) -> SaslStep {
        match (mechanism, initial_response) {
            (Mechanism::Plain, None) => SaslStep::Next {
                state: Self::Plain,
                challenge: reply::AUTH_PLAIN_CHALLENGE,
            },
            (Mechanism::Login, None) => SaslStep::Next {
                state: Self::LoginUser,
                challenge: reply::AUTH_LOGIN_USERNAME,
            },
            (mechanism, Some(response)) => {
                let first = match mechanism {
                    Mechanism::Plain => Self::Plain,
                    Mechanism::Login => Self::LoginUser,
                };
                first.step(response.as_bytes())
            }
        }
    }

    /// The client's response line to the last challenge.
    pub fn step(self, response: &[u8]) -> SaslStep {
        if is_cancel(response) {
            return SaslStep::Cancelled;
        }
        match self {
            Self::Plain => SaslStep::Done(plain(response)),
            Self::LoginUser => match login_field(response) {
                Ok(user) => SaslStep::Next {
                    state: Self::LoginPassword { user },
                    challenge: reply::AUTH_LOGIN_PASSWORD,
                },
                Err(reply) => SaslStep::Done(Err(reply)),
            },
            Self::LoginPassword { user } => {
                SaslStep::Done(login_field(response).and_then(|pass| credentials(&user, &pass)))
            }
        }
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
            subaccount: None,
            owner: TokenOwner::Client,
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

    fn login(user: &str, pass: &str) -> Credentials {
        credentials(user.as_bytes(), pass.as_bytes()).expect("well-formed")
    }

    #[test]
    fn application_code_user_names_pass_through() {
        let policy = AuthPolicy::default();
        let c = policy.resolve(login("XXXXX-XXXXX", "tok")).expect("valid");
        assert_eq!(
            (c.application.as_str(), c.subaccount),
            ("XXXXX-XXXXX", None)
        );
        // Only the exact SparkPost forms are SparkPost's.
        for user in ["SMTP_InjectionX", "smtp_injector", "SMTP"] {
            let c = policy.resolve(login(user, "tok")).expect("valid");
            assert_eq!(c.application, user);
        }
    }

    #[test]
    fn provider_forms_take_the_default_application() {
        let policy = AuthPolicy {
            default_application: Some("DEFAULT-APP".into()),
        };
        let postmark = policy
            .resolve(login("pm-token", "pm-token"))
            .expect("valid");
        assert_eq!(postmark.application, "DEFAULT-APP");
        assert_eq!(postmark.token.expose(), "pm-token");
        assert_eq!(postmark.subaccount, None);
        let cases = [
            ("SMTP_Injection", None),
            ("smtp_injection", None),
            ("SMTP_Injection:X-MSYS-SUBACCOUNT=123", Some(123)),
            ("smtp_injection:x-msys-subaccount=7", Some(7)),
        ];
        for (user, subaccount) in cases {
            let c = policy.resolve(login(user, "api-key")).expect(user);
            assert_eq!(c.application, "DEFAULT-APP", "{user}");
            assert_eq!(c.subaccount, subaccount, "{user}");
            assert_eq!(c.token.expose(), "api-key");
        }
    }

    #[test]
    fn provider_forms_without_a_default_application_are_refused() {
        let policy = AuthPolicy::default();
        for (user, pass) in [("pm-token", "pm-token"), ("SMTP_Injection", "key")] {
            let refusal = policy.resolve(login(user, pass)).expect_err(user);
            assert_eq!(refusal, reply::AUTH_NEEDS_DEFAULT_APPLICATION);
            assert!(refusal.to_string().starts_with("535 5.7.8"));
            assert!(refusal.text().contains("--default-application"));
        }
    }

    #[test]
    fn a_subaccount_must_be_a_number() {
        let policy = AuthPolicy {
            default_application: Some("D".into()),
        };
        for user in [
            "SMTP_Injection:X-MSYS-SUBACCOUNT=",
            "SMTP_Injection:X-MSYS-SUBACCOUNT=abc",
            "SMTP_Injection:X-MSYS-SUBACCOUNT=+5",
            "SMTP_Injection:X-MSYS-SUBACCOUNT=99999999999999999999999",
            "SMTP_Injection:other",
        ] {
            assert_eq!(
                policy.resolve(login(user, "k")),
                Err(reply::AUTH_BAD_SUBACCOUNT),
                "{user}"
            );
        }
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let c = plain(&b64(b"\0app\0sekrit")).expect("valid");
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
