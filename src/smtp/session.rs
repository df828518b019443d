//! The submission session: a sans-IO state machine. Bytes and time go in
//! (`handle_bytes`, `handle_verdict`, `handle_tls_established`, `handle_timeout`); reply
//! bytes, events and the next deadline come out (`transmit`, `poll_event`,
//! `poll_timeout`). It owns no socket and reads no clock, so whole dialogs run in memory.
//!
//! Input is offered, not pushed: `handle_bytes` returns how much it consumed and leaves
//! the rest with the driver whenever it must wait (a message is with the upstream, or a
//! TLS handshake is due). That keeps replies in order under pipelining (RFC 2920) and
//! gives the driver natural backpressure without the session buffering anything.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use super::auth::{self, AuthPolicy, Credentials};
use super::command::{self, Command, Mechanism};
use super::data::{self, Outcome};
use super::limits::Limits;
use super::reply::{self, Reply};
use crate::cidr::AllowList;

/// What kind of listener a session came from.
#[derive(Clone, Debug)]
pub enum Mode {
    /// STARTTLS submission: TLS before AUTH, AUTH before MAIL; user names read by the
    /// policy.
    Submission(AuthPolicy),
    /// Implicit-TLS submission (RFC 8314, port 465): the driver completes the TLS
    /// handshake before the session begins, so AUTH is offered at once and STARTTLS is
    /// not.
    SubmissionTls(AuthPolicy),
    /// Local relay (a sidecar on the application host): plaintext, no AUTH; every
    /// message is submitted with these credentials. Only loopback and `allow` may
    /// connect.
    Relay {
        credentials: Rc<Credentials>,
        allow: AllowList,
    },
}

/// Per-listener settings shared (per shard) by every session, with the fixed replies
/// rendered once.
#[derive(Debug)]
pub struct SessionConfig {
    pub limits: Limits,
    pub mode: Mode,
    greeting: Vec<u8>,
    helo: Vec<u8>,
    ehlo_plain: Vec<u8>,
    ehlo_tls: Vec<u8>,
}

impl SessionConfig {
    pub fn new(hostname: &str, limits: Limits, mode: Mode) -> Self {
        let starttls = matches!(mode, Mode::Submission(_));
        let size = format!("SIZE {}", limits.max_message_size);
        let common = [
            "PIPELINING",
            size.as_str(),
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ];
        let ehlo = |last: Option<&str>| {
            let mut out = Vec::new();
            let lines = std::iter::once(hostname).chain(common).chain(last);
            reply::write_multiline(&mut out, 250, lines);
            out
        };
        Self {
            greeting: format!("220 {hostname} ESMTP\r\n").into_bytes(),
            helo: format!("250 {hostname}\r\n").into_bytes(),
            ehlo_plain: ehlo(starttls.then_some("STARTTLS")),
            ehlo_tls: ehlo(Some("AUTH PLAIN LOGIN")),
            limits,
            mode,
        }
    }

    /// Whether this listener requires TLS and AUTH (STARTTLS or implicit TLS).
    pub fn is_submission(&self) -> bool {
        self.auth_policy().is_some()
    }

    fn auth_policy(&self) -> Option<&AuthPolicy> {
        match &self.mode {
            Mode::Submission(policy) | Mode::SubmissionTls(policy) => Some(policy),
            Mode::Relay { .. } => None,
        }
    }

    /// The refusal for a client this listener does not serve, if `peer` is one.
    fn refusal_for(&self, peer: IpAddr) -> Option<Reply> {
        match &self.mode {
            Mode::Relay { allow, .. } if !allow.allows(peer) => Some(reply::RELAY_ACCESS_DENIED),
            _ => None,
        }
    }
}

/// A message ready to forward. The driver answers it with `handle_verdict`.
#[derive(Debug)]
pub struct Submission {
    pub credentials: Rc<Credentials>,
    pub mail_from: String,
    /// In order, deduplicated.
    pub recipients: Vec<String>,
    /// The dot-unstuffed message, CRLF line endings.
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum Event {
    /// Forward this message and call `handle_verdict` with the outcome.
    Submit(Submission),
    /// `220` is queued: send it, run the server TLS handshake on the same socket, then
    /// call `handle_tls_established`.
    StartTls,
}

/// Something the session did that the driver may want to count; taken with
/// `take_notices`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A message's final reply after DATA, from the upstream's verdict.
    Replied(u16),
    /// A message refused by the session itself: too big, a bare line ending, or a
    /// limit refusing its MAIL or RCPT.
    Refused(u16),
    /// An AUTH exchange ended without authenticating (cancellations aside).
    AuthFailed,
}

#[derive(Debug)]
enum State {
    Command,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword {
        user: Vec<u8>,
    },
    Data(data::Receiver),
    /// Discarding a `BDAT` chunk we refused, so its bytes are never run as commands.
    SkipChunk {
        remaining: u64,
    },
    /// A message is with the upstream.
    Submitted,
    TlsPending,
    Closed,
}

/// An over-long line being discarded up to its end.
#[derive(Debug, Clone, Copy)]
struct Discard {
    seen: usize,
    auth: bool,
}

#[derive(Debug)]
pub struct Session {
    config: Rc<SessionConfig>,
    state: State,
    tls: bool,
    greeted: bool,
    credentials: Option<Rc<Credentials>>,
    mail_from: Option<String>,
    size_hint: usize,
    recipients: Vec<String>,
    body: Vec<u8>,
    discard: Option<Discard>,
    errors: u32,
    /// Messages answered on this connection.
    messages: usize,
    /// Draining: no new transaction; the next command outside one gets `421 4.3.2`.
    shutting_down: bool,
    deadline: Instant,
    transmit: Vec<u8>,
    event: Option<Event>,
    notices: Vec<Notice>,
}

impl Session {
    /// A new connection: the greeting is queued at once.
    pub fn new(config: Rc<SessionConfig>, now: Instant) -> Self {
        let mut transmit = Vec::with_capacity(256);
        transmit.extend_from_slice(&config.greeting);
        let credentials = match &config.mode {
            Mode::Relay { credentials, .. } => Some(Rc::clone(credentials)),
            Mode::Submission(_) | Mode::SubmissionTls(_) => None,
        };
        Self {
            deadline: now + config.limits.command_timeout,
            tls: matches!(config.mode, Mode::SubmissionTls(_)),
            config,
            state: State::Command,
            greeted: false,
            credentials,
            mail_from: None,
            size_hint: 0,
            recipients: Vec::new(),
            body: Vec::new(),
            discard: None,
            errors: 0,
            messages: 0,
            shutting_down: false,
            transmit,
            event: None,
            notices: Vec::new(),
        }
    }

    /// A new connection from `peer` (the client's address, after any PROXY header):
    /// a session, or, when the listener does not serve that client, its refusal in
    /// place of the greeting and the end.
    pub fn accept(config: Rc<SessionConfig>, now: Instant, peer: IpAddr) -> Self {
        let refusal = config.refusal_for(peer);
        let mut session = Self::new(config, now);
        if let Some(refusal) = refusal {
            session.transmit.clear();
            session.close_with(&refusal);
        }
        session
    }

    // --- Input ----------------------------------------------------------------------

    /// Offers bytes from the client; returns how many were consumed. Unconsumed bytes
    /// must be offered again (with whatever arrives next) once the session can go on.
    pub fn handle_bytes(&mut self, now: Instant, input: &[u8]) -> usize {
        self.deadline = now + self.config.limits.command_timeout;
        let mut pos = 0;
        while pos < input.len() && self.accepts_input() {
            let rest = &input[pos..];
            let used = match &mut self.state {
                State::Data(rx) => match rx.feed(rest, &mut self.body) {
                    Some(used) => {
                        let outcome = rx.outcome();
                        self.finish_data(outcome);
                        used
                    }
                    None => rest.len(),
                },
                State::SkipChunk { remaining } => {
                    let used = rest
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= used as u64;
                    if *remaining == 0 {
                        self.state = State::Command;
                    }
                    used
                }
                _ => match self.line(rest) {
                    Some(used) => used,
                    None => break,
                },
            };
            pos += used;
        }
        pos
    }

    /// The upstream's verdict on the last `Submit`.
    pub fn handle_verdict(&mut self, now: Instant, verdict: &Reply) {
        debug_assert!(matches!(self.state, State::Submitted));
        verdict.write_to(&mut self.transmit);
        self.notices.push(Notice::Replied(verdict.code()));
        self.state = State::Command;
        self.reset_transaction();
        self.deadline = now + self.config.limits.command_timeout;
    }

    /// The TLS handshake after `StartTls` completed: RFC 3207 §4.2 discards all
    /// knowledge from before it, so the client must EHLO (and AUTH) again.
    pub fn handle_tls_established(&mut self, now: Instant) {
        debug_assert!(matches!(self.state, State::TlsPending));
        self.tls = true;
        self.greeted = false;
        self.credentials = None;
        self.reset_transaction();
        self.state = State::Command;
        self.deadline = now + self.config.limits.command_timeout;
    }

    /// Time passed: closes an idle session at its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.close_with(&reply::IDLE_TIMEOUT);
        }
    }

    /// The gateway is draining: an idle session (no transaction under way) gets
    /// `421 4.3.2` and ends now; one in a transaction finishes it (its reply is the
    /// upstream's verdict) and gets `421 4.3.2` at its next command.
    pub fn shut_down(&mut self) {
        if self.is_closed() {
            return;
        }
        self.shutting_down = true;
        if self.is_idle() {
            self.close_with(&reply::SHUTTING_DOWN);
        }
    }

    /// The drain's deadline: `421 4.3.2` and the end, whatever the session was doing
    /// (a message not yet answered stays the client's).
    pub fn shut_down_now(&mut self) {
        if !self.is_closed() {
            self.close_with(&reply::SHUTTING_DOWN);
        }
    }

    /// A body buffer from the driver's pool, used if the session has none with capacity.
    pub fn provide_body_buffer(&mut self, mut buffer: Vec<u8>) {
        if self.body.capacity() == 0 {
            buffer.clear();
            self.body = buffer;
        }
    }

    // --- Output ---------------------------------------------------------------------

    /// Reply bytes to send; call `transmitted` once they are written.
    pub fn transmit(&self) -> &[u8] {
        &self.transmit
    }

    pub fn transmitted(&mut self) {
        self.transmit.clear();
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    /// The application the session submits as, once known (AUTH, or the relay's).
    pub fn application(&self) -> Option<&str> {
        self.credentials.as_deref().map(|c| c.application.as_str())
    }

    /// What happened since the last call (usually nothing: no allocation then).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// When `handle_timeout` must next be called; `None` while the session waits on the
    /// driver (upstream call, TLS handshake) or is closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Submitted | State::TlsPending | State::Closed => None,
            _ => Some(self.deadline),
        }
    }

    /// True once the session is over: send what `transmit` holds, then close.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while a message body is being received and no buffer has been provided.
    pub fn wants_body_buffer(&self) -> bool {
        matches!(self.state, State::Data(_)) && self.body.capacity() == 0
    }

    // --- Lines ----------------------------------------------------------------------

    fn accepts_input(&self) -> bool {
        !matches!(
            self.state,
            State::Submitted | State::TlsPending | State::Closed
        )
    }

    /// Between transactions: nothing the client sent is waiting for an answer that
    /// closing now would lose.
    fn is_idle(&self) -> bool {
        let between_commands = matches!(
            self.state,
            State::Command
                | State::AuthPlain
                | State::AuthLoginUser
                | State::AuthLoginPassword { .. }
        );
        between_commands && self.mail_from.is_none() && self.discard.is_none()
    }

    fn in_sasl(&self) -> bool {
        matches!(
            self.state,
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPassword { .. }
        )
    }

    /// Takes one line from `rest`: `Some(consumed)`, or `None` if the line is incomplete.
    fn line(&mut self, rest: &[u8]) -> Option<usize> {
        let limits = &self.config.limits;
        if let Some(discard) = self.discard {
            return Some(match memchr::memchr(b'\n', rest) {
                Some(lf) => {
                    self.discard = None;
                    self.line_too_long(discard.auth);
                    lf + 1
                }
                None if discard.seen + rest.len() > limits.max_discarded_line => {
                    self.close_with(&reply::LINE_TOO_LONG);
                    rest.len()
                }
                None => {
                    self.discard = Some(Discard {
                        seen: discard.seen + rest.len(),
                        auth: discard.auth,
                    });
                    rest.len()
                }
            });
        }
        let auth = self.in_sasl()
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
            Some(lf) => {
                let pipelined_after = rest.len() > lf + 1;
                self.complete_line(&rest[..lf], pipelined_after);
                Some(lf + 1)
            }
            None if rest.len() >= limit => match memchr::memchr(b'\n', &rest[limit..]) {
                // The over-long line's end is already here: refuse it and go on.
                Some(lf) => {
                    self.line_too_long(auth);
                    Some(limit + lf + 1)
                }
                None => {
                    self.discard = Some(Discard {
                        seen: rest.len(),
                        auth,
                    });
                    Some(rest.len())
                }
            },
            None => None,
        }
    }

    fn line_too_long(&mut self, auth: bool) {
        if auth {
            if self.in_sasl() {
                self.state = State::Command;
            }
            self.refuse(reply::AUTH_LINE_TOO_LONG);
        } else {
            self.refuse(reply::LINE_TOO_LONG);
        }
    }

    /// A whole line, without its LF.
    fn complete_line(&mut self, line: &[u8], pipelined_after: bool) {
        let Some(line) = line.strip_suffix(b"\r") else {
            return self.bad_line();
        };
        if line.iter().any(|&b| b == b'\r' || b == 0) {
            return self.bad_line();
        }
        match std::mem::replace(&mut self.state, State::Command) {
            State::Command => self.command(line, pipelined_after),
            State::AuthPlain => self.sasl_plain(line),
            State::AuthLoginUser => self.sasl_login_user(line),
            State::AuthLoginPassword { user } => self.sasl_login_password(&user, line),
            other => self.state = other,
        }
    }

    fn bad_line(&mut self) {
        if self.in_sasl() {
            self.state = State::Command;
        }
        self.refuse(reply::BARE_LINE_ENDING_IN_COMMAND);
    }

    // --- Commands -------------------------------------------------------------------

    fn command(&mut self, line: &[u8], pipelined_after: bool) {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(_) if self.shutting_down && self.mail_from.is_none() => {
                return self.close_with(&reply::SHUTTING_DOWN);
            }
            Err(error) => return self.refuse(error.reply()),
        };
        if self.shutting_down && self.mail_from.is_none() && !matches!(command, Command::Quit) {
            return self.close_with(&reply::SHUTTING_DOWN);
        }
        match command {
            Command::Ehlo(_) | Command::Helo(_) => {
                self.reset_transaction();
                self.greeted = true;
                let config = &self.config;
                let response = match (command, self.tls) {
                    (Command::Helo(_), _) => &config.helo,
                    (_, true) => &config.ehlo_tls,
                    (_, false) => &config.ehlo_plain,
                };
                self.transmit.extend_from_slice(response);
            }
            Command::StartTls => self.starttls(pipelined_after),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Command::Mail {
                reverse_path,
                params,
            } => self.mail(reverse_path, params.size),
            Command::Rcpt { forward_path } => self.rcpt(forward_path),
            Command::Data => self.data(),
            Command::Bdat { size } => {
                self.refuse(reply::BDAT_NOT_SUPPORTED);
                if size > self.config.limits.max_message_size as u64 {
                    self.close_with(&reply::MESSAGE_TOO_BIG);
                } else if size > 0 && !self.is_closed() {
                    self.state = State::SkipChunk { remaining: size };
                }
            }
            Command::Rset => {
                self.reset_transaction();
                self.send(&reply::RESET);
            }
            Command::Noop => self.send(&reply::OK),
            Command::Help => self.send(&reply::HELP),
            Command::Vrfy => self.send(&reply::VRFY),
            Command::Expn => self.send(&reply::NOT_IMPLEMENTED),
            Command::Quit => self.close_with(&reply::BYE),
            Command::Http => self.close_with(&reply::NOT_SMTP),
        }
    }

    fn starttls(&mut self, pipelined_after: bool) {
        if self.tls {
            return self.refuse(reply::TLS_ALREADY_ACTIVE);
        }
        if !self.config.is_submission() {
            return self.refuse(reply::TLS_UNAVAILABLE);
        }
        if pipelined_after {
            // CVE-2011-0411: bytes sent behind STARTTLS must never run, in clear or in TLS.
            return self.close_with(&reply::PIPELINED_STARTTLS);
        }
        self.send(&reply::READY_FOR_TLS);
        self.state = State::TlsPending;
        self.event = Some(Event::StartTls);
    }

    fn auth(&mut self, mechanism: Mechanism, initial_response: Option<&str>) {
        if !self.config.is_submission() {
            return self.refuse(reply::AUTH_NOT_ENABLED);
        }
        if !self.tls {
            return self.refuse(reply::TLS_REQUIRED);
        }
        if !self.greeted {
            return self.refuse(reply::EHLO_FIRST);
        }
        if self.credentials.is_some() {
            return self.refuse(reply::ALREADY_AUTHENTICATED);
        }
        if self.mail_from.is_some() {
            return self.refuse(reply::AUTH_IN_TRANSACTION);
        }
        match (mechanism, initial_response) {
            (Mechanism::Plain, None) => {
                self.send(&reply::AUTH_PLAIN_CHALLENGE);
                self.state = State::AuthPlain;
            }
            (Mechanism::Plain, Some(response)) => self.sasl_plain(response.as_bytes()),
            (Mechanism::Login, None) => {
                self.send(&reply::AUTH_LOGIN_USERNAME);
                self.state = State::AuthLoginUser;
            }
            (Mechanism::Login, Some(response)) => self.sasl_login_user(response.as_bytes()),
        }
    }

    fn sasl_plain(&mut self, response: &[u8]) {
        if auth::is_cancel(response) {
            return self.refuse(reply::AUTH_CANCELLED);
        }
        match auth::plain(response) {
            Ok(credentials) => self.authenticated(credentials),
            Err(reply) => self.auth_failed(reply),
        }
    }

    fn sasl_login_user(&mut self, response: &[u8]) {
        if auth::is_cancel(response) {
            return self.refuse(reply::AUTH_CANCELLED);
        }
        match auth::login_field(response) {
            Ok(user) => {
                self.send(&reply::AUTH_LOGIN_PASSWORD);
                self.state = State::AuthLoginPassword { user };
            }
            Err(reply) => self.auth_failed(reply),
        }
    }

    fn sasl_login_password(&mut self, user: &[u8], response: &[u8]) {
        if auth::is_cancel(response) {
            return self.refuse(reply::AUTH_CANCELLED);
        }
        match auth::login_field(response).and_then(|pass| auth::credentials(user, &pass)) {
            Ok(credentials) => self.authenticated(credentials),
            Err(reply) => self.auth_failed(reply),
        }
    }

    fn authenticated(&mut self, login: Credentials) {
        let resolved = match self.config.auth_policy() {
            Some(policy) => policy.resolve(login),
            // Unreachable: AUTH is refused on relay listeners.
            None => Err(reply::AUTH_NOT_ENABLED),
        };
        match resolved {
            Ok(credentials) => {
                self.credentials = Some(Rc::new(credentials));
                self.send(&reply::AUTH_OK);
            }
            Err(reply) => self.auth_failed(reply),
        }
    }

    fn auth_failed(&mut self, reply: Reply) {
        self.notices.push(Notice::AuthFailed);
        self.refuse(reply);
    }

    /// The checks every transaction command shares, in the order clients expect them.
    fn may_transact(&mut self) -> bool {
        let refusal = if !self.greeted {
            reply::EHLO_FIRST
        } else if !self.tls && self.config.is_submission() {
            reply::TLS_REQUIRED
        } else if self.credentials.is_none() {
            reply::AUTH_REQUIRED
        } else {
            return true;
        };
        self.refuse(refusal);
        false
    }

    fn mail(&mut self, reverse_path: &str, size: Option<u64>) {
        if !self.may_transact() {
            return;
        }
        if self.mail_from.is_some() {
            return self.refuse(reply::NESTED_MAIL);
        }
        let cap = self.config.limits.max_messages_per_connection;
        if cap > 0 && self.messages >= cap {
            return self.limit_refused(&reply::CONNECTION_MESSAGE_LIMIT, true);
        }
        let max = self.config.limits.max_message_size;
        if size.is_some_and(|size| size > max as u64) {
            return self.limit_refused(&reply::MESSAGE_TOO_BIG, false);
        }
        self.size_hint = size.map_or(0, |size| size as usize);
        self.mail_from = Some(reverse_path.to_owned());
        self.send(&reply::SENDER_OK);
    }

    fn rcpt(&mut self, forward_path: &str) {
        if !self.may_transact() {
            return;
        }
        if self.mail_from.is_none() {
            return self.refuse(reply::MAIL_FIRST);
        }
        if self
            .recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(forward_path))
        {
            return self.send(&reply::RECIPIENT_OK);
        }
        if self.recipients.len() >= self.config.limits.max_recipients {
            return self.limit_refused(&reply::TOO_MANY_RECIPIENTS, false);
        }
        self.recipients.push(forward_path.to_owned());
        self.send(&reply::RECIPIENT_OK);
    }

    fn data(&mut self) {
        if !self.may_transact() {
            return;
        }
        if self.mail_from.is_none() {
            return self.refuse(reply::MAIL_FIRST);
        }
        if self.recipients.is_empty() {
            return self.refuse(reply::NO_VALID_RECIPIENTS);
        }
        let limits = &self.config.limits;
        self.state = State::Data(data::Receiver::new(limits.max_message_size, limits.bare_lf));
        self.body.clear();
        // SIZE= (never above the limit) saves the reallocations of growing a large
        // body. Reserved pages are not resident until written, and a client announcing
        // more than it sends holds no more than one sending the maximum would.
        self.body
            .reserve(self.size_hint.min(limits.max_message_size));
        self.send(&reply::START_DATA);
    }

    fn finish_data(&mut self, outcome: Outcome) {
        self.state = State::Command;
        self.messages += 1;
        match outcome {
            Outcome::TooBig => self.reject_message(&reply::MESSAGE_TOO_BIG),
            Outcome::BareLineEnding => self.reject_message(&reply::BARE_LINE_ENDING),
            Outcome::Complete => {
                let (Some(credentials), Some(mail_from)) =
                    (self.credentials.clone(), self.mail_from.take())
                else {
                    // Unreachable: DATA is only accepted with both.
                    return self.reject_message(&reply::LOCAL_ERROR);
                };
                self.event = Some(Event::Submit(Submission {
                    credentials,
                    mail_from,
                    recipients: std::mem::take(&mut self.recipients),
                    body: std::mem::take(&mut self.body),
                }));
                self.state = State::Submitted;
            }
        }
    }

    fn reject_message(&mut self, reply: &Reply) {
        self.notices.push(Notice::Refused(reply.code()));
        self.send(reply);
        self.reset_transaction();
    }

    /// A limit refuses a MAIL or RCPT: the reply (and the end, if `close`), noticed.
    fn limit_refused(&mut self, reply: &Reply, close: bool) {
        self.notices.push(Notice::Refused(reply.code()));
        if close {
            self.close_with(reply);
        } else {
            self.send(reply);
        }
    }

    // --- Helpers --------------------------------------------------------------------

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.size_hint = 0;
        self.recipients.clear();
        self.body.clear();
    }

    fn send(&mut self, reply: &Reply) {
        reply.write_to(&mut self.transmit);
    }

    /// A protocol error: counted, and the session ends after too many.
    fn refuse(&mut self, reply: Reply) {
        self.send(&reply);
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors {
            self.close_with(&reply::TOO_MANY_ERRORS);
        }
    }

    fn close_with(&mut self, reply: &Reply) {
        self.send(reply);
        self.state = State::Closed;
        self.event = None;
    }
}
