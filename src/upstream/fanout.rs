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

/// Every call's outcome, in the order of `message.deliveries`; `observe` sees each
/// outcome with how long its call took (the shard's metrics), as it comes.
pub async fn notify_all(
    channel: &Channel,
    message: &Outgoing<'_>,
    token: &Token,
    limit: usize,
    observe: &dyn Fn(&Outcome, Duration),
) -> Vec<Outcome> {
    let call = |delivery| async move {
        let started = Instant::now();
        let outcome = channel
            .notify(frame::encode(message, delivery), token)
            .await;
        observe(&outcome, started.elapsed());
        outcome
    };
    if let [only] = &message.deliveries[..] {
        return vec![call(only).await];
    }
    let mut outcomes: Vec<(usize, Outcome)> =
        futures_util::stream::iter(message.deliveries.iter().enumerate())
            .map(|(i, delivery)| async move { (i, call(delivery).await) })
            .buffer_unordered(limit.max(1))
            .collect()
            .await;
    outcomes.sort_unstable_by_key(|&(i, _)| i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}
