//! smtpgate: an SMTP submission gateway that forwards every message, synchronously, to
//! an upstream transactional-email API over gRPC (the `Notify` call), and answers `250`
//! only after the upstream accepted it.
//!
//! Layers, from pure to IO (see the README's architecture section):
//! `smtp` (sans-IO protocol) → `mime` (MIME → Notify mapping) → `upstream` (gRPC
//! framing, verdicts, the per-shard h2 channel) → `tls` → `shard` (executors, drivers).

// What is already true, enforced: no unwrap or expect outside tests (a peer's input
// must never panic the gateway), and `unsafe` only where allowed and proved.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod cidr;
pub mod config;
pub mod metrics;
pub mod mime;
pub mod notify;
pub mod proxy;
pub mod service;
pub mod shard;
pub mod signals;
pub mod smtp;
pub mod tls;
pub mod upstream;
