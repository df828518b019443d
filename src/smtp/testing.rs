//! What the session's dialog tests and the fuzz targets share: a `Dialog` that offers
//! bytes as a driver would (keeping what the session did not consume), answers events,
//! and collects replies; a builder for the usual openings; a check that reply bytes are
//! well-formed; one seedable generator. Built for tests and for the `fuzzing` feature.
#![allow(clippy::disallowed_methods)] // The fake clock starts at a real instant.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test support: a failure is a bug.

use std::rc::Rc;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{AuthPolicy, Event, Limits, Mode, Reply, Session, SessionConfig, Submission};

/// A session and the driver's side of it, on a fake clock (`now` only moves when told).
pub struct Dialog {
    pub session: Session,
    pub now: Instant,
    /// Bytes offered but not consumed yet, as a driver keeps them.
    pub pending: Vec<u8>,
    pub submitted: Vec<Submission>,
    pub starttls_requested: bool,
}

/// How far a new dialog gets before the test takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Greeted,
    /// EHLO, STARTTLS (the handshake taken as done).
    Tls,
    /// And EHLO again, AUTH PLAIN as `APP-1`/`tok`.
    Authenticated,
}

/// Builds a `Dialog`: `Dialog::builder().limits(..).mode(..).authenticated().build()`.
pub struct DialogBuilder {
    limits: Limits,
    mode: Mode,
    stage: Stage,
}

impl DialogBuilder {
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    pub fn tls(mut self) -> Self {
        self.stage = Stage::Tls;
        self
    }

    pub fn authenticated(mut self) -> Self {
        self.stage = Stage::Authenticated;
        self
    }

    /// A fresh session as the limits make it (with a greet pause it has not greeted
    /// yet), nothing checked: for the fuzz targets.
    pub fn build_without_greeting_check(self) -> Dialog {
        let config = Rc::new(SessionConfig::new("mx.test", self.limits, self.mode));
        let now = Instant::now();
        Dialog {
            session: Session::new(config, now),
            now,
            pending: Vec::new(),
            submitted: Vec::new(),
            starttls_requested: false,
        }
    }

    pub fn build(self) -> Dialog {
        let config = Rc::new(SessionConfig::new("mx.test", self.limits, self.mode));
        let now = Instant::now();
        let mut d = Dialog {
            session: Session::new(config, now),
            now,
            pending: Vec::new(),
            submitted: Vec::new(),
            starttls_requested: false,
        };
        assert_eq!(d.output(), "220 mx.test ESMTP\r\n");
        if self.stage == Stage::Greeted {
            return d;
        }
        d.send("EHLO c\r\n");
        assert_eq!(d.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
        assert!(d.starttls_requested);
        d.session.handle_tls_established(d.now);
        if self.stage == Stage::Tls {
            return d;
        }
        d.send("EHLO c\r\n");
        let plain = STANDARD.encode(b"\0APP-1\0tok");
        assert_eq!(
            d.send(&format!("AUTH PLAIN {plain}\r\n")),
            "235 2.7.0 Authentication successful\r\n"
        );
        d
    }
}

impl Dialog {
    /// A STARTTLS submission dialog with the default limits, greeted.
    pub fn builder() -> DialogBuilder {
        DialogBuilder {
            limits: Limits::default(),
            mode: Mode::Submission(AuthPolicy::default()),
            stage: Stage::Greeted,
        }
    }

    /// The replies written since the last call.
    pub fn output(&mut self) -> String {
        let out = String::from_utf8(self.session.transmit().to_vec()).expect("replies are ASCII");
        self.session.transmitted();
        out
    }

    /// Sends bytes and returns every reply they produced.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        self.pump()
    }

    pub fn send(&mut self, text: &str) -> String {
        self.send_bytes(text.as_bytes())
    }

    /// Offers the pending bytes once; a `Submit` is kept for the test to answer.
    pub fn pump(&mut self) -> String {
        let used = self.session.handle_bytes(self.now, &self.pending);
        self.pending.drain(..used);
        match self.session.poll_event() {
            Some(Event::Submit(submission)) => self.submitted.push(submission),
            Some(Event::StartTls) => self.starttls_requested = true,
            None => {}
        }
        self.output()
    }

    /// Answers the outstanding submission and lets the session go on with pending input.
    pub fn verdict(&mut self, reply: &Reply) -> String {
        self.session.handle_verdict(self.now, reply);
        let mut out = self.output();
        out.push_str(&self.pump());
        out
    }

    /// Offers the pending bytes as a driver does until the session waits for more:
    /// every message answered with `verdict`, every STARTTLS taken as done. Returns
    /// the messages submitted; the replies stay in `transmit`.
    pub fn drive(&mut self, verdict: &Reply) -> Vec<Submission> {
        let mut submitted = Vec::new();
        loop {
            let used = self.session.handle_bytes(self.now, &self.pending);
            assert!(used <= self.pending.len());
            self.pending.drain(..used);
            match self.session.poll_event() {
                Some(Event::StartTls) => {
                    self.starttls_requested = true;
                    self.session.handle_tls_established(self.now);
                }
                Some(Event::Submit(submission)) => {
                    submitted.push(submission);
                    self.session.handle_verdict(self.now, verdict);
                }
                None => return submitted,
            }
        }
    }

    /// The reply codes (and enhanced statuses) of `output`, line by line.
    pub fn codes(output: &str) -> Vec<&str> {
        output.lines().map(|l| &l[..l.len().min(9)]).collect()
    }
}

/// Whether reply bytes are well-formed: each line a three-digit code, ` ` or `-`,
/// printable ASCII text, CRLF.
pub fn well_formed(output: &[u8]) -> bool {
    output.split_inclusive(|&b| b == b'\n').all(|line| {
        line.len() >= 6
            && line.ends_with(b"\r\n")
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
            && line[4..line.len() - 2]
                .iter()
                .all(|&b| (0x20..0x7f).contains(&b))
    })
}

/// A small deterministic generator (xorshift64*), so robustness runs are reproducible.
pub struct Rng(u64);

impl Rng {
    /// Any seed; zero is mapped to a non-zero state.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
