//! A message's upstream calls: one, or a fan-out (one per group of recipients sharing
//! substitution values) sent concurrently over the shard's channel with at most
//! `limit` streams in flight. Each call's frame is encoded only when its turn comes, so
//! a fan-out never holds more than `limit` frames of a large message.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use super::verdict::Outcome;
use super::{Channel, frame};
use crate::notify::Outgoing;
use crate::smtp::Token;

/// One call's outcome and how long it took.
pub type Call = (Outcome, Duration);

/// Every call's outcome, in the order of `message.deliveries`.
pub async fn notify_all(
    channel: &Channel,
    message: &Outgoing<'_>,
    token: &Token,
    limit: usize,
) -> Vec<Call> {
    let call = |delivery| async move {
        let started = Instant::now();
        let outcome = channel
            .notify(frame::encode(message, delivery), token)
            .await;
        (outcome, started.elapsed())
    };
    if let [only] = &message.deliveries[..] {
        return vec![call(only).await];
    }
    let mut calls: Vec<(usize, Call)> =
        futures_util::stream::iter(message.deliveries.iter().enumerate())
            .map(|(i, delivery)| async move { (i, call(delivery).await) })
            .buffer_unordered(limit.max(1))
            .collect()
            .await;
    calls.sort_unstable_by_key(|&(i, _)| i);
    calls.into_iter().map(|(_, call)| call).collect()
}
