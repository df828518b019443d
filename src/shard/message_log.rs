//! The one INFO line per message: time, shard, session, client (after PROXY), listener,
//! application, recipients, size, upstream status and message code, SMTP reply code,
//! upstream and total milliseconds; structured fields, so `--log-format json` gives one
//! object per line with these keys. Never a token: nothing here holds one.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::ListenerKind;
use crate::notify::Outgoing;
use crate::upstream::Outcome;

/// Where a message came from.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    /// The connection's number on its shard.
    pub session: u64,
    pub client: SocketAddr,
    pub listener: ListenerKind,
}

/// What the line says of one message.
pub struct Record<'a> {
    pub shard: usize,
    pub origin: Origin,
    pub application: &'a str,
    pub recipients: usize,
    pub size: usize,
    /// The upstream's status (`NONE` when no call was made).
    pub upstream_status: &'static str,
    pub message_code: &'a str,
    pub reply: u16,
    pub upstream: Duration,
    pub total: Duration,
    pub calls: usize,
}

impl Record<'_> {
    pub fn log(&self, email_ids: Option<EmailIds<'_>>) {
        tracing::info!(
            target: "smtpgate::message",
            shard = self.shard,
            session = self.origin.session,
            client = %self.origin.client,
            listener = %self.origin.listener,
            application = %self.application,
            recipients = self.recipients,
            size = self.size,
            upstream_status = %self.upstream_status,
            message_code = %self.message_code,
            reply = self.reply,
            upstream_ms = millis(self.upstream),
            total_ms = millis(self.total),
            calls = self.calls,
            email_ids = email_ids.map(tracing::field::display),
            "answered"
        );
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// The status a message's line shows: `OK` when every call was accepted, else the
/// first failure's.
pub fn summary_status(outcomes: &[Outcome]) -> &'static str {
    outcomes
        .iter()
        .find(|o| !matches!(o, Outcome::Accepted { .. }))
        .map_or("OK", |failure| failure.status().name())
}

/// The first accepted call's message code, or nothing.
pub fn first_code(outcomes: &[Outcome]) -> &str {
    outcomes
        .iter()
        .find_map(|o| match o {
            Outcome::Accepted { message_code } => Some(message_code.as_str()),
            _ => None,
        })
        .unwrap_or_default()
}

/// SendCloud's per-recipient email ids, `<message code><index>$<address>` (index in the
/// message's recipient list, from 0, not zero-padded), for the calls accepted.
pub struct EmailIds<'a> {
    pub message: &'a Outgoing<'a>,
    pub outcomes: &'a [Outcome],
}

impl std::fmt::Display for EmailIds<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (delivery, outcome) in self.message.deliveries.iter().zip(self.outcomes) {
            let Outcome::Accepted { message_code } = outcome else {
                continue;
            };
            for (i, address) in delivery.recipients.iter().enumerate() {
                let separator = if first { "" } else { "," };
                first = false;
                write!(
                    f,
                    "{separator}{message_code}{}${address}",
                    delivery.position(i)
                )?;
            }
        }
        Ok(())
    }
}
