//! A message's upstream calls: one, or a fan-out (one per group of recipients sharing
//! substitution values) sent concurrently over the shard's channel with at most
//! `limit` streams in flight. Each call's frame is encoded only when its turn comes, so
//! a fan-out never holds more than `limit` frames of a large message.

use futures_util::StreamExt as _;

use super::verdict::Outcome;
use super::{Channel, frame};
use crate::notify::Outgoing;
use crate::smtp::Token;

/// Every call's outcome, in the order of `message.deliveries`.
pub async fn notify_all(
    channel: &Channel,
    message: &Outgoing<'_>,
    token: &Token,
    limit: usize,
) -> Vec<Outcome> {
    if let [only] = &message.deliveries[..] {
        return vec![channel.notify(frame::encode(message, only), token).await];
    }
    let mut outcomes: Vec<(usize, Outcome)> =
        futures_util::stream::iter(message.deliveries.iter().enumerate())
            .map(|(i, delivery)| async move {
                let outcome = channel
                    .notify(frame::encode(message, delivery), token)
                    .await;
                (i, outcome)
            })
            .buffer_unordered(limit.max(1))
            .collect()
            .await;
    outcomes.sort_unstable_by_key(|&(i, _)| i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}
