//! A mapped message as it goes out: the fields every call shares, the email payload
//! without its body, the body held apart (borrowed from the received message unless
//! transfer decoding produced it), and one `Delivery` per upstream call. A message is
//! one call, or one per group of recipients sharing substitution values (a fan-out).
//! The frame encoder (`upstream::frame`) writes each call from these parts without
//! copying them; `into_requests` builds whole requests for tests, JSON and tools.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{EmailPayload, List, NotifyRequest, NotifyTransactional};
use super::{notify_request, notify_transactional};

/// What differs between the calls of one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivery {
    /// `users.list`: in order, deduplicated.
    pub recipients: Vec<String>,
    /// This call's own `dynamic_content_placeholders`, added to the shared ones (their
    /// keys never overlap: the mapping keeps each key in one place).
    pub placeholders: BTreeMap<String, String>,
    /// The idempotency key: a retry of the same message produces the same one.
    pub transaction_id: String,
    /// Each recipient's index in the message's recipient list (SendCloud's email ids
    /// count from it); empty when the indices are 0, 1, 2, … as in a single call.
    pub positions: Vec<u32>,
}

impl Delivery {
    /// The index in the message's recipient list of this call's `i`-th recipient.
    pub fn position(&self, i: usize) -> usize {
        self.positions.get(i).map_or(i, |&p| p as usize)
    }
}

#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Every field of the transactional request but `email_payload`, `target` and
    /// `transaction_id`, which come from `payload`, `body` and each delivery.
    pub shared: NotifyTransactional,
    /// The email payload with an empty `body`.
    pub payload: EmailPayload,
    pub body: Cow<'a, str>,
    /// One per upstream call; never empty.
    pub deliveries: Vec<Delivery>,
    /// The message carried SendGrid/SendCloud's `X-SMTPAPI`: its log line lists each
    /// recipient's SendCloud email id (`<message code><index>$<address>`).
    pub email_ids: bool,
}

impl Outgoing<'_> {
    /// The same message owning its body (when it borrowed a buffer about to go away).
    pub fn into_owned(self) -> Outgoing<'static> {
        Outgoing {
            shared: self.shared,
            payload: self.payload,
            body: Cow::Owned(self.body.into_owned()),
            deliveries: self.deliveries,
            email_ids: self.email_ids,
        }
    }

    /// Recipients over all calls.
    pub fn recipient_count(&self) -> usize {
        self.deliveries.iter().map(|d| d.recipients.len()).sum()
    }

    /// The whole request of one call, body in place (a copy: for tests, JSON, tools).
    pub fn request(&self, delivery: &Delivery) -> NotifyRequest {
        let mut t = self.shared.clone();
        t.target = Some(notify_transactional::Target::Users(List {
            list: delivery.recipients.clone(),
        }));
        t.dynamic_content_placeholders.extend(
            delivery
                .placeholders
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        t.transaction_id = delivery.transaction_id.clone();
        let mut payload = self.payload.clone();
        payload.body = self.body.to_string();
        t.email_payload = Some(payload);
        NotifyRequest {
            kind: Some(notify_request::Kind::Transactional(t)),
        }
    }

    /// Every call's whole request.
    pub fn into_requests(self) -> Vec<NotifyRequest> {
        self.deliveries.iter().map(|d| self.request(d)).collect()
    }
}
