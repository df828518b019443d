//! The upstream contract's message types, generated from `proto/notify.proto` by the
//! build script; a mapped message split into its shared part and per-call deliveries
//! (`outgoing`); their JSON rendering.

#[allow(clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/notify.v2.rs"));
}

pub mod json;
mod outgoing;

pub use generated::*;
pub use outgoing::{Delivery, Outgoing};
