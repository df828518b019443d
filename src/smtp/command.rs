//! Parses one command line (CRLF already stripped) into a `Command` that borrows from it.
//!
//! Verbs and ESMTP parameter keywords are case-insensitive. The parser is strict where
//! leniency would be unsafe (unknown parameters, malformed addresses) and lenient where
//! real clients differ harmlessly (`MAIL FROM: <a@b>` with a space). Addresses may be
//! UTF-8 (RFC 6531); whether the transaction allows it (`SMTPUTF8` on its MAIL) is the
//! session's decision, so a non-ASCII address without it is `553 5.6.7` there.

use super::reply::{self, Reply};

#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Ehlo(&'a str),
    Helo(&'a str),
    StartTls,
    Auth {
        mechanism: Mechanism,
        initial_response: Option<&'a str>,
    },
    Mail {
        reverse_path: &'a str,
        params: MailParams,
    },
    Rcpt {
        forward_path: &'a str,
    },
    Data,
    Bdat {
        size: u64,
    },
    Rset,
    Noop,
    Help,
    Vrfy,
    Expn,
    Quit,
    /// An HTTP request line sent to the SMTP port.
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=`: the client's estimate of the message size.
    pub size: Option<u64>,
    /// `SMTPUTF8` (RFC 6531): UTF-8 addresses and headers in this transaction.
    pub smtputf8: bool,
}

/// Why a line is not a command we can run; each maps to one precise reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    Unrecognized,
    Syntax,
    HeloSyntax,
    SenderSyntax,
    RecipientSyntax,
    NonAsciiAddress,
    UnsupportedParameter,
    UnsupportedMechanism,
}

impl CommandError {
    pub fn reply(self) -> Reply {
        match self {
            Self::Unrecognized => reply::UNRECOGNIZED,
            Self::Syntax => reply::SYNTAX,
            Self::HeloSyntax => reply::HELO_SYNTAX,
            Self::SenderSyntax => reply::SENDER_SYNTAX,
            Self::RecipientSyntax => reply::RECIPIENT_SYNTAX,
            Self::NonAsciiAddress => reply::NON_ASCII_ADDRESS,
            Self::UnsupportedParameter => reply::UNSUPPORTED_PARAMETER,
            Self::UnsupportedMechanism => reply::AUTH_MECHANISM,
        }
    }
}

/// Longest path (`<...>` content) RFC 5321 §4.5.3.1.3 allows.
const MAX_PATH: usize = 256;

pub fn parse(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let (verb, rest) = split_verb(line);
    let rest = rest.trim_ascii_start();
    let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
    if is("EHLO") || is("HELO") {
        let domain = ascii_arg(rest).ok_or(CommandError::HeloSyntax)?;
        let domain = domain
            .split_ascii_whitespace()
            .next()
            .ok_or(CommandError::HeloSyntax)?;
        return Ok(if is("EHLO") {
            Command::Ehlo(domain)
        } else {
            Command::Helo(domain)
        });
    }
    if is("MAIL") {
        let arg = strip_keyword(rest, b"FROM:").ok_or(CommandError::Syntax)?;
        let (path, params) = split_path(arg)?;
        let reverse_path =
            address(path, true).map_err(|e| e.unwrap_or(CommandError::SenderSyntax))?;
        return Ok(Command::Mail {
            reverse_path,
            params: mail_params(params)?,
        });
    }
    if is("RCPT") {
        let arg = strip_keyword(rest, b"TO:").ok_or(CommandError::Syntax)?;
        let (path, params) = split_path(arg)?;
        let forward_path =
            address(path, false).map_err(|e| e.unwrap_or(CommandError::RecipientSyntax))?;
        if !params.trim_ascii().is_empty() {
            return Err(CommandError::UnsupportedParameter);
        }
        return Ok(Command::Rcpt { forward_path });
    }
    if is("AUTH") {
        return auth(rest);
    }
    if is("BDAT") {
        let size = rest.split(|&b| b == b' ').next().and_then(parse_u64);
        return size
            .map(|size| Command::Bdat { size })
            .ok_or(CommandError::Syntax);
    }
    // Verbs that take no argument refuse one (RFC 3207 §4 for STARTTLS).
    let no_arg = |cmd: Command<'static>| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax)
        }
    };
    if is("DATA") {
        return no_arg(Command::Data);
    }
    if is("STARTTLS") {
        return no_arg(Command::StartTls);
    }
    if is("RSET") {
        return no_arg(Command::Rset);
    }
    if is("QUIT") {
        return no_arg(Command::Quit);
    }
    if is("NOOP") {
        return Ok(Command::Noop);
    }
    if is("HELP") {
        return Ok(Command::Help);
    }
    if is("VRFY") {
        return if rest.is_empty() {
            Err(CommandError::Syntax)
        } else {
            Ok(Command::Vrfy)
        };
    }
    if is("EXPN") {
        return Ok(Command::Expn);
    }
    if ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT"]
        .iter()
        .any(|m| verb == m.as_bytes())
    {
        return Ok(Command::Http);
    }
    Err(CommandError::Unrecognized)
}

fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', line) {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[]),
    }
}

fn ascii_arg(arg: &[u8]) -> Option<&str> {
    if arg.is_empty() || !arg.is_ascii() {
        return None;
    }
    std::str::from_utf8(arg).ok()
}

/// `FROM:` / `TO:` (case-insensitive), then optional spaces.
fn strip_keyword<'a>(arg: &'a [u8], keyword: &[u8]) -> Option<&'a [u8]> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_ascii_start())
}

/// Splits `<path> params` (or a bare `path params`, as old clients send) into the path's
/// content and the parameter text. Quoted local parts may contain `>` and spaces.
fn split_path(arg: &[u8]) -> Result<(&[u8], &[u8]), CommandError> {
    if arg.first() != Some(&b'<') {
        let end = memchr::memchr(b' ', arg).unwrap_or(arg.len());
        return Ok((&arg[..end], &arg[end..]));
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in arg.iter().enumerate().skip(1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'>' if !in_quotes => {
                let params = &arg[i + 1..];
                if !params.is_empty() && params[0] != b' ' {
                    return Err(CommandError::Syntax);
                }
                return Ok((&arg[1..i], params));
            }
            _ => {}
        }
    }
    Err(CommandError::Syntax)
}

/// Validates a path's content and returns the mailbox (source route dropped).
/// `Err(None)` means "bad syntax" (the caller picks sender or recipient wording).
fn address(path: &[u8], null_allowed: bool) -> Result<&str, Option<CommandError>> {
    if path.is_empty() {
        return if null_allowed { Ok("") } else { Err(None) };
    }
    if path.len() > MAX_PATH {
        return Err(None);
    }
    // UTF-8 or nothing (RFC 6531); the session checks it was asked for.
    let path = std::str::from_utf8(path).map_err(|_| None)?;
    // RFC 5321 §4.1.2: an obsolete source route `@a,@b:user@c` is accepted and ignored.
    let mailbox = match path.strip_prefix('@') {
        Some(route) => route.split_once(':').map(|(_, m)| m).ok_or(None)?,
        None => path,
    };
    if is_mailbox(mailbox) {
        Ok(mailbox)
    } else {
        Err(None)
    }
}

/// Whether `text` is a mailbox as RCPT TO takes it: `local@domain`, the local part a
/// dot-atom-ish run or a quoted string, the domain a host name (U-labels allowed) or an
/// address literal; UTF-8 beyond ASCII is allowed (RFC 6531), controls never. Also used
/// for the addresses in provider headers.
pub fn is_mailbox(text: &str) -> bool {
    text.len() <= MAX_PATH
        && if text.is_ascii() {
            is_ascii_mailbox(text)
        } else {
            is_utf8_mailbox(text)
        }
}

/// [`is_mailbox`] for ASCII text, nearly every address: its parts checked as bytes.
fn is_ascii_mailbox(text: &str) -> bool {
    let local = |part: &str| part.bytes().all(is_local_byte);
    let host = |part: &str| part.bytes().all(is_host_byte);
    is_mailbox_of(text, local, host)
}

/// [`is_mailbox`] for UTF-8 beyond ASCII (RFC 6531): its parts checked as characters.
fn is_utf8_mailbox(text: &str) -> bool {
    let local = |part: &str| {
        part.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_graphic() && !"<>()[],;:@\"\\".contains(c)
            } else {
                !c.is_control() && !c.is_whitespace()
            }
        })
    };
    let host = |part: &str| {
        part.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || c == '.'
                || (!c.is_ascii() && c.is_alphanumeric())
        })
    };
    is_mailbox_of(text, local, host)
}

/// A byte of an unquoted local part (RFC 5321 atext and `.`).
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'<' | b'>' | b'(' | b')' | b'[' | b']' | b',' | b';' | b':' | b'@' | b'"' | b'\\'
        )
}

/// A byte of a host name.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// The shape of a mailbox, given what an unquoted local part and a host name may hold
/// (never a control): `local@domain`, the local part a run of those or a quoted string,
/// the domain a host name without empty labels at its ends or inside, or an address
/// literal; no controls in the quoted string or the literal either.
fn is_mailbox_of(
    text: &str,
    local_ok: impl Fn(&str) -> bool,
    host_ok: impl Fn(&str) -> bool,
) -> bool {
    let no_controls = |part: &str| !part.chars().any(char::is_control);
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = if local.starts_with('"') {
        local.len() >= 2 && local.ends_with('"') && no_controls(local)
    } else {
        !local.is_empty() && local_ok(local)
    };
    let domain_ok = if domain.starts_with('[') {
        domain.ends_with(']') && no_controls(domain)
    } else {
        host_ok(domain)
            && !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.as_bytes().windows(2).any(|pair| pair == b"..")
    };
    local_ok && domain_ok
}

fn mail_params(params: &[u8]) -> Result<MailParams, CommandError> {
    let mut out = MailParams::default();
    for param in params.split(|&b| b == b' ').filter(|p| !p.is_empty()) {
        let (key, value) = match memchr::memchr(b'=', param) {
            Some(i) => (&param[..i], Some(&param[i + 1..])),
            None => (param, None),
        };
        if key.eq_ignore_ascii_case(b"SIZE") {
            out.size = Some(value.and_then(parse_u64).ok_or(CommandError::Syntax)?);
        } else if key.eq_ignore_ascii_case(b"BODY") {
            let value = value.ok_or(CommandError::Syntax)?;
            if !(value.eq_ignore_ascii_case(b"7BIT") || value.eq_ignore_ascii_case(b"8BITMIME")) {
                return Err(CommandError::UnsupportedParameter);
            }
        } else if key.eq_ignore_ascii_case(b"SMTPUTF8") {
            if value.is_some() {
                return Err(CommandError::Syntax);
            }
            out.smtputf8 = true;
        } else if key.eq_ignore_ascii_case(b"AUTH") {
            // RFC 4954 §5: the submitter's identity; we take it from AUTH, not from here.
            value.ok_or(CommandError::Syntax)?;
        } else {
            return Err(CommandError::UnsupportedParameter);
        }
    }
    Ok(out)
}

fn auth(rest: &[u8]) -> Result<Command<'_>, CommandError> {
    let mut words = rest.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let mechanism = words.next().ok_or(CommandError::Syntax)?;
    let mechanism = if mechanism.eq_ignore_ascii_case(b"PLAIN") {
        Mechanism::Plain
    } else if mechanism.eq_ignore_ascii_case(b"LOGIN") {
        Mechanism::Login
    } else {
        return Err(CommandError::UnsupportedMechanism);
    };
    let initial_response = match words.next() {
        Some(word) => Some(std::str::from_utf8(word).map_err(|_| CommandError::Syntax)?),
        None => None,
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax);
    }
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command<'_> {
        parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn err(line: &str) -> CommandError {
        parse(line.as_bytes()).expect_err(line)
    }

    #[test]
    fn the_ascii_address_check_agrees_with_the_general_one() {
        // Short strings, mostly letters, over the bytes that decide: every special, both
        // ends of a domain literal, dots, controls; one `@` in most.
        const ALPHABET: &[u8] = b"ab9.-_+@\"[]<>(),;:\\ \t\x00\x7f!~";
        let mut rng = crate::smtp::testing::Rng::new(5321);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..200_000 {
            let len = 1 + rng.below(12);
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(10) {
                    0..6 => b'a',
                    _ => ALPHABET[rng.below(ALPHABET.len())],
                })
                .collect();
            if rng.below(10) > 0 {
                let at = rng.below(len);
                bytes[at] = b'@';
            }
            let text = std::str::from_utf8(&bytes).expect("ASCII");
            let fast = is_ascii_mailbox(text);
            assert_eq!(fast, is_utf8_mailbox(text), "{text:?}");
            if fast { accepted += 1 } else { refused += 1 }
        }
        // Both answers were exercised, not just one.
        assert!(accepted > 1000 && refused > 1000, "{accepted} / {refused}");
    }

    #[test]
    fn verbs_and_keywords_are_case_insensitive() {
        assert_eq!(ok("ehlo client.example"), Command::Ehlo("client.example"));
        assert_eq!(
            ok("mail from:<a@b.c> size=100"),
            Command::Mail {
                reverse_path: "a@b.c",
                params: MailParams {
                    size: Some(100),
                    smtputf8: false
                }
            }
        );
        assert_eq!(
            ok("RcPt To:<x@y.z>"),
            Command::Rcpt {
                forward_path: "x@y.z"
            }
        );
        assert_eq!(ok("data"), Command::Data);
        assert_eq!(ok("StartTLS"), Command::StartTls);
    }

    #[test]
    fn mail_accepts_null_path_space_and_bare_address() {
        assert!(matches!(
            ok("MAIL FROM:<>"),
            Command::Mail {
                reverse_path: "",
                ..
            }
        ));
        assert!(matches!(
            ok("MAIL FROM: <a@b.c>"),
            Command::Mail {
                reverse_path: "a@b.c",
                ..
            }
        ));
        assert!(matches!(
            ok("MAIL FROM:a@b.c"),
            Command::Mail {
                reverse_path: "a@b.c",
                ..
            }
        ));
        assert!(matches!(
            ok("MAIL FROM:<a@b.c> BODY=8BITMIME AUTH=<>"),
            Command::Mail { .. }
        ));
    }

    #[test]
    fn quoted_local_part_and_source_route() {
        assert_eq!(
            ok(r#"RCPT TO:<"odd >name"@example.com>"#),
            Command::Rcpt {
                forward_path: r#""odd >name"@example.com"#
            }
        );
        assert_eq!(
            ok("RCPT TO:<@relay.example:u@d.example>"),
            Command::Rcpt {
                forward_path: "u@d.example"
            }
        );
    }

    #[test]
    fn bad_addresses_get_the_right_error() {
        assert_eq!(err("RCPT TO:<>"), CommandError::RecipientSyntax);
        assert_eq!(err("RCPT TO:<nodomain>"), CommandError::RecipientSyntax);
        assert_eq!(err("RCPT TO:<a@b..c>"), CommandError::RecipientSyntax);
        assert_eq!(err("MAIL FROM:<a b@c>"), CommandError::SenderSyntax);
        // UTF-8 parses (the session refuses it without SMTPUTF8); invalid UTF-8 never.
        assert!(matches!(
            ok("MAIL FROM:<jörg@bücher.example> SMTPUTF8"),
            Command::Mail {
                reverse_path: "jörg@bücher.example",
                params: MailParams { smtputf8: true, .. }
            }
        ));
        assert_eq!(
            parse(b"MAIL FROM:<j\xf6rg@x.example>"),
            Err(CommandError::SenderSyntax)
        );
        assert_eq!(
            err("RCPT TO:<j\u{7}rg@x.example>"),
            CommandError::RecipientSyntax
        );
        assert_eq!(err("MAIL FROM:<a@b.c"), CommandError::Syntax);
        assert_eq!(err("MAIL FROM:<a@b.c>junk"), CommandError::Syntax);
        assert_eq!(err("MAIL TO:<a@b.c>"), CommandError::Syntax);
        let long = format!("RCPT TO:<{}@example.com>", "a".repeat(300));
        assert_eq!(err(&long), CommandError::RecipientSyntax);
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            err("MAIL FROM:<a@b.c> FOO=1"),
            CommandError::UnsupportedParameter
        );
        assert_eq!(err("MAIL FROM:<a@b.c> SMTPUTF8=yes"), CommandError::Syntax);
        assert_eq!(
            err("MAIL FROM:<a@b.c> BODY=BINARYMIME"),
            CommandError::UnsupportedParameter
        );
        assert_eq!(err("MAIL FROM:<a@b.c> SIZE=abc"), CommandError::Syntax);
        assert_eq!(
            err("MAIL FROM:<a@b.c> SIZE=99999999999999999999999"),
            CommandError::Syntax
        );
        assert_eq!(
            err("RCPT TO:<a@b.c> NOTIFY=NEVER"),
            CommandError::UnsupportedParameter
        );
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            ok("AUTH PLAIN"),
            Command::Auth {
                mechanism: Mechanism::Plain,
                initial_response: None
            }
        );
        assert_eq!(
            ok("auth login dXNlcg=="),
            Command::Auth {
                mechanism: Mechanism::Login,
                initial_response: Some("dXNlcg==")
            }
        );
        assert_eq!(err("AUTH CRAM-MD5"), CommandError::UnsupportedMechanism);
        assert_eq!(err("AUTH"), CommandError::Syntax);
        assert_eq!(err("AUTH PLAIN a b"), CommandError::Syntax);
    }

    #[test]
    fn argument_rules() {
        assert_eq!(err("STARTTLS now"), CommandError::Syntax);
        assert_eq!(err("DATA x"), CommandError::Syntax);
        assert_eq!(err("EHLO"), CommandError::HeloSyntax);
        assert_eq!(err("VRFY"), CommandError::Syntax);
        assert_eq!(ok("NOOP anything"), Command::Noop);
        assert_eq!(ok("BDAT 10 LAST"), Command::Bdat { size: 10 });
        assert_eq!(ok("GET / HTTP/1.1"), Command::Http);
        assert_eq!(err("FROB"), CommandError::Unrecognized);
        assert_eq!(err(""), CommandError::Unrecognized);
    }
}
