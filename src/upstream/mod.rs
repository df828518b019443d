//! The upstream: gRPC framing and status (`grpc`), one call's request encoded straight
//! into its frame (`frame`), a message's calls with bounded concurrency (`fanout`), the
//! one gRPC → SMTP table (`verdict`), the per-shard persistent HTTP/2 channel (`channel`), and an h2 gRPC
//! server implementing the contract (`sink`), used by `--dev`.
#![allow(clippy::disallowed_methods)] // An IO layer: it may read the clock.

pub mod channel;
mod coalesce;
pub mod fanout;
pub mod frame;
pub mod grpc;
pub mod sink;
pub mod target;
pub mod verdict;

pub use channel::Channel;
pub use target::{Target, TargetError};
pub use verdict::{Outcome, TransportError};
