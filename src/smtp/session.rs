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
use std::time::{Duration, Instant};

use super::auth::{AuthPolicy, Credentials, Sasl, SaslStep};
use super::command::{self, Command, MailParams, Mechanism};
use super::data::{self, Outcome};
use super::limits::Limits;
use super::line::{Framed, Framer};
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
            "SMTPUTF8",
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
    /// A message refused by the session itself: too big, a bare line ending, a UTF-8
    /// address without `SMTPUTF8`, or a limit refusing its MAIL or RCPT.
    Refused(u16),
    /// An AUTH exchange ended without authenticating (cancellations aside), or the
    /// upstream refused the token (`535`).
    AuthFailed,
    /// The session refused the client and closed the connection.
    Ended(Ending),
}

/// Why a session refused its client and closed the connection (a QUIT, a drain and an
/// admission refusal are not among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It talked before the greeting (`--greet-pause`).
    TalkedFirst,
    /// `--max-auth-failures` reached.
    AuthFailures,
    /// A command line or a message did not arrive in time (`--command-timeout`,
    /// `--min-data-rate`).
    Timeout,
    /// Too many protocol errors.
    Errors,
    /// Not SMTP, or an attempt to smuggle: an HTTP request, bytes pipelined behind
    /// STARTTLS, a line without end, a BDAT chunk over the size limit.
    Protocol,
}

/// What the session waits for; each state holds its own data.
#[derive(Debug)]
enum State {
    /// `--greet-pause`: the greeting waits until the deadline; input before it is
    /// refused.
    Greeting,
    /// A command (between transactions, or inside one: see `Session::transaction`).
    Command,
    /// An AUTH exchange waits for the client's response.
    Auth(Sasl),
    /// The message of `transaction` is arriving.
    Data {
        receiver: data::Receiver,
        transaction: Transaction,
        /// When DATA began and how many bytes arrived since (the minimum data rate).
        started: Instant,
        received: u64,
    },
    /// Discarding a `BDAT` chunk we refused, so its bytes are never run as commands.
    SkipChunk {
        remaining: u64,
    },
    /// A message is with the upstream.
    Submitted,
    TlsPending,
    Closed,
}

/// What MAIL started: who submits, the sender, the recipients so far.
#[derive(Debug)]
struct Transaction {
    credentials: Rc<Credentials>,
    mail_from: String,
    /// `SIZE=` (never above the limit): the body buffer is reserved to it.
    size_hint: usize,
    /// `SMTPUTF8`: UTF-8 addresses allowed (RFC 6531).
    smtputf8: bool,
    /// In order, deduplicated.
    recipients: Vec<String>,
}

#[derive(Debug)]
pub struct Session {
    config: Rc<SessionConfig>,
    state: State,
    tls: bool,
    greeted: bool,
    credentials: Option<Rc<Credentials>>,
    /// Between MAIL and DATA (during DATA it is in `State::Data`).
    transaction: Option<Transaction>,
    /// The body buffer, kept across messages.
    body: Vec<u8>,
    framer: Framer,
    errors: u32,
    auth_failures: u32,
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
    /// A new connection: the greeting is queued at once, or after `greet_pause`.
    pub fn new(config: Rc<SessionConfig>, now: Instant) -> Self {
        let pause = config.limits.greet_pause;
        let mut transmit = Vec::with_capacity(256);
        let (state, deadline) = if pause.is_zero() {
            transmit.extend_from_slice(&config.greeting);
            (State::Command, now + config.limits.command_timeout)
        } else {
            (State::Greeting, now + pause)
        };
        let credentials = match &config.mode {
            Mode::Relay { credentials, .. } => Some(Rc::clone(credentials)),
            Mode::Submission(_) | Mode::SubmissionTls(_) => None,
        };
        Self {
            deadline,
            tls: matches!(config.mode, Mode::SubmissionTls(_)),
            config,
            state,
            greeted: false,
            credentials,
            transaction: None,
            body: Vec::new(),
            framer: Framer::default(),
            errors: 0,
            auth_failures: 0,
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
        match config.refusal_for(peer) {
            Some(refusal) => Self::refused(config, now, &refusal),
            None => Self::new(config, now),
        }
    }

    /// A connection refused before its session began (a cap, an allow-list): `reply`
    /// instead of the greeting, then the end.
    pub fn refused(config: Rc<SessionConfig>, now: Instant, reply: &Reply) -> Self {
        let mut session = Self::new(config, now);
        session.transmit.clear();
        session.close_with(reply);
        session
    }

    // --- Input ----------------------------------------------------------------------

    /// Offers bytes from the client; returns how many were consumed. Unconsumed bytes
    /// must be offered again (with whatever arrives next) once the session can go on.
    pub fn handle_bytes(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut pos = 0;
        while pos < input.len() && self.accepts_input() {
            let rest = &input[pos..];
            let used = match &mut self.state {
                State::Greeting => {
                    // Nothing a client sends before the greeting is run.
                    self.end(Ending::TalkedFirst, &reply::TALKED_FIRST);
                    rest.len()
                }
                State::Data {
                    receiver, received, ..
                } => match receiver.feed(rest, &mut self.body) {
                    Some(used) => {
                        self.finish_data(now);
                        used
                    }
                    None => {
                        *received += rest.len() as u64;
                        rest.len()
                    }
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
                _ => match self.line(now, rest) {
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
        if !matches!(self.state, State::Submitted) {
            return; // No message is waiting for one.
        }
        verdict.write_to(&mut self.transmit);
        self.notices.push(Notice::Replied(verdict.code()));
        self.state = State::Command;
        self.reset_transaction();
        self.deadline = now + self.config.limits.command_timeout;
        // The upstream refused the token itself (checked only after DATA): a failed
        // authentication like a bad AUTH exchange.
        if verdict.code() == 535 {
            self.notices.push(Notice::AuthFailed);
            self.auth_failures += 1;
            if self.auth_failures >= self.config.limits.max_auth_failures {
                self.end(Ending::AuthFailures, &reply::TOO_MANY_AUTH_FAILURES);
            }
        }
    }

    /// The TLS handshake after `StartTls` completed: RFC 3207 §4.2 discards all
    /// knowledge from before it, so the client must EHLO (and AUTH) again.
    pub fn handle_tls_established(&mut self, now: Instant) {
        if !matches!(self.state, State::TlsPending) {
            return; // No handshake was asked for.
        }
        self.tls = true;
        self.greeted = false;
        self.credentials = None;
        self.reset_transaction();
        self.state = State::Command;
        self.deadline = now + self.config.limits.command_timeout;
    }

    /// Time passed: greets after the pause; closes a session at its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|deadline| now < deadline) {
            return;
        }
        if matches!(self.state, State::Greeting) {
            let greeting = self.config.greeting.clone();
            self.transmit.extend_from_slice(&greeting);
            self.state = State::Command;
            self.deadline = now + self.config.limits.command_timeout;
        } else {
            self.end(Ending::Timeout, &reply::IDLE_TIMEOUT);
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
        let limits = &self.config.limits;
        match &self.state {
            State::Submitted | State::TlsPending | State::Closed => None,
            // The base time plus a second per `min_data_rate` bytes received.
            State::Data {
                started, received, ..
            } => Some(
                *started
                    + limits.command_timeout
                    + Duration::from_secs(received / limits.min_data_rate.max(1)),
            ),
            _ => Some(self.deadline),
        }
    }

    /// True once the session is over: send what `transmit` holds, then close.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// True while a message body is being received and no buffer has been provided.
    pub fn wants_body_buffer(&self) -> bool {
        matches!(self.state, State::Data { .. }) && self.body.capacity() == 0
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
        matches!(
            self.state,
            State::Greeting | State::Command | State::Auth(_)
        ) && self.transaction.is_none()
            && !self.framer.is_discarding()
    }

    fn in_sasl(&self) -> bool {
        matches!(self.state, State::Auth(_))
    }

    /// Takes one line from `rest`: `Some(consumed)`, or `None` if the line is incomplete.
    fn line(&mut self, now: Instant, rest: &[u8]) -> Option<usize> {
        let in_sasl = self.in_sasl();
        match self.framer.next(rest, in_sasl, &self.config.limits) {
            Framed::Line {
                line,
                used,
                pipelined_after,
            } => {
                // A whole line restarts the clock; its bytes dripping in did not.
                self.deadline = now + self.config.limits.command_timeout;
                self.complete_line(now, line, pipelined_after);
                Some(used)
            }
            Framed::Incomplete => None,
            Framed::Discarding { used } => Some(used),
            Framed::TooLong { used, auth } => {
                self.line_too_long(auth);
                Some(used)
            }
            Framed::Runaway { used } => {
                self.end(Ending::Protocol, &reply::LINE_TOO_LONG);
                Some(used)
            }
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
    fn complete_line(&mut self, now: Instant, line: &[u8], pipelined_after: bool) {
        let Some(line) = line.strip_suffix(b"\r") else {
            return self.bad_line();
        };
        if line.iter().any(|&b| b == b'\r' || b == 0) {
            return self.bad_line();
        }
        match std::mem::replace(&mut self.state, State::Command) {
            State::Command => self.command(now, line, pipelined_after),
            State::Auth(sasl) => self.sasl(sasl.step(line)),
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

    fn command(&mut self, now: Instant, line: &[u8], pipelined_after: bool) {
        let command = match command::parse(line) {
            Ok(command) => command,
            Err(_) if self.shutting_down && self.transaction.is_none() => {
                return self.close_with(&reply::SHUTTING_DOWN);
            }
            Err(error) => return self.refuse(error.reply()),
        };
        if self.shutting_down && self.transaction.is_none() && !matches!(command, Command::Quit) {
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
            } => self.mail(reverse_path, &params),
            Command::Rcpt { forward_path } => self.rcpt(forward_path),
            Command::Data => self.data(now),
            Command::Bdat { size } => {
                self.refuse(reply::BDAT_NOT_SUPPORTED);
                if size > self.config.limits.max_message_size as u64 {
                    self.end(Ending::Protocol, &reply::MESSAGE_TOO_BIG);
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
            Command::Http => self.end(Ending::Protocol, &reply::NOT_SMTP),
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
            return self.end(Ending::Protocol, &reply::PIPELINED_STARTTLS);
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
        if self.transaction.is_some() {
            return self.refuse(reply::AUTH_IN_TRANSACTION);
        }
        self.sasl(Sasl::start(mechanism, initial_response));
    }

    /// Where an AUTH exchange's step leads.
    fn sasl(&mut self, step: SaslStep) {
        match step {
            SaslStep::Next { state, challenge } => {
                self.send(&challenge);
                self.state = State::Auth(state);
            }
            SaslStep::Done(Ok(login)) => self.authenticated(login),
            SaslStep::Done(Err(reply)) => self.auth_failed(reply),
            SaslStep::Cancelled => self.refuse(reply::AUTH_CANCELLED),
        }
    }

    fn authenticated(&mut self, login: Credentials) {
        // AUTH is refused before an exchange on listeners without a policy (relay).
        let resolved = self
            .config
            .auth_policy()
            .map_or(Err(reply::AUTH_NOT_ENABLED), |policy| policy.resolve(login));
        match resolved {
            Ok(credentials) => {
                self.credentials = Some(Rc::new(credentials));
                self.send(&reply::AUTH_OK);
            }
            Err(reply) => self.auth_failed(reply),
        }
    }

    /// A failed authentication: its reply, and the end after too many.
    fn auth_failed(&mut self, reply: Reply) {
        self.notices.push(Notice::AuthFailed);
        self.auth_failures += 1;
        if self.auth_failures >= self.config.limits.max_auth_failures {
            self.send(&reply);
            return self.end(Ending::AuthFailures, &reply::TOO_MANY_AUTH_FAILURES);
        }
        self.refuse(reply);
    }

    /// The checks every transaction command shares, in the order clients expect them;
    /// the credentials a transaction submits with when they pass.
    fn may_transact(&mut self) -> Option<Rc<Credentials>> {
        let refusal = if !self.greeted {
            reply::EHLO_FIRST
        } else if !self.tls && self.config.is_submission() {
            reply::TLS_REQUIRED
        } else if let Some(credentials) = &self.credentials {
            return Some(Rc::clone(credentials));
        } else {
            reply::AUTH_REQUIRED
        };
        self.refuse(refusal);
        None
    }

    fn mail(&mut self, reverse_path: &str, params: &MailParams) {
        let Some(credentials) = self.may_transact() else {
            return;
        };
        let size = params.size;
        if !params.smtputf8 && !reverse_path.is_ascii() {
            return self.refuse_non_ascii();
        }
        if self.transaction.is_some() {
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
        self.transaction = Some(Transaction {
            credentials,
            mail_from: reverse_path.to_owned(),
            size_hint: size.map_or(0, |size| size as usize),
            smtputf8: params.smtputf8,
            recipients: Vec::new(),
        });
        self.send(&reply::SENDER_OK);
    }

    fn rcpt(&mut self, forward_path: &str) {
        if self.may_transact().is_none() {
            return;
        }
        let max = self.config.limits.max_recipients;
        let Some(transaction) = &mut self.transaction else {
            return self.refuse(reply::MAIL_FIRST);
        };
        if !transaction.smtputf8 && !forward_path.is_ascii() {
            return self.refuse_non_ascii();
        }
        let recipients = &mut transaction.recipients;
        if recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(forward_path))
        {
            return self.send(&reply::RECIPIENT_OK);
        }
        if recipients.len() >= max {
            return self.limit_refused(&reply::TOO_MANY_RECIPIENTS, false);
        }
        recipients.push(forward_path.to_owned());
        self.send(&reply::RECIPIENT_OK);
    }

    fn data(&mut self, now: Instant) {
        if self.may_transact().is_none() {
            return;
        }
        let Some(transaction) = self.transaction.take() else {
            return self.refuse(reply::MAIL_FIRST);
        };
        if transaction.recipients.is_empty() {
            self.transaction = Some(transaction);
            return self.refuse(reply::NO_VALID_RECIPIENTS);
        }
        let limits = &self.config.limits;
        self.body.clear();
        // SIZE= (never above the limit) saves the reallocations of growing a large
        // body. Reserved pages are not resident until written, and a client announcing
        // more than it sends holds no more than one sending the maximum would.
        self.body
            .reserve(transaction.size_hint.min(limits.max_message_size));
        self.state = State::Data {
            receiver: data::Receiver::new(limits.max_message_size, limits.bare_lf),
            transaction,
            started: now,
            received: 0,
        };
        self.send(&reply::START_DATA);
    }

    /// The end of DATA: the message goes upstream, or is refused here.
    fn finish_data(&mut self, now: Instant) {
        let State::Data {
            receiver,
            transaction,
            ..
        } = std::mem::replace(&mut self.state, State::Command)
        else {
            return;
        };
        self.deadline = now + self.config.limits.command_timeout;
        self.messages += 1;
        match receiver.outcome() {
            Outcome::TooBig => self.reject_message(&reply::MESSAGE_TOO_BIG),
            Outcome::BareLineEnding => self.reject_message(&reply::BARE_LINE_ENDING),
            Outcome::Complete => {
                self.event = Some(Event::Submit(Submission {
                    credentials: transaction.credentials,
                    mail_from: transaction.mail_from,
                    recipients: transaction.recipients,
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

    /// A UTF-8 address without `SMTPUTF8`: a client error, and the message refused.
    fn refuse_non_ascii(&mut self) {
        self.notices
            .push(Notice::Refused(reply::NON_ASCII_ADDRESS.code()));
        self.refuse(reply::NON_ASCII_ADDRESS);
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
        self.transaction = None;
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
            self.end(Ending::Errors, &reply::TOO_MANY_ERRORS);
        }
    }

    /// The client refused: the reply, the end, and a notice saying why.
    fn end(&mut self, why: Ending, reply: &Reply) {
        self.notices.push(Notice::Ended(why));
        self.close_with(reply);
    }

    fn close_with(&mut self, reply: &Reply) {
        self.send(reply);
        self.state = State::Closed;
        self.event = None;
    }
}
