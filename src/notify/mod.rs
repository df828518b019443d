//! The upstream contract's message types, generated from `proto/notify.proto` by the
//! build script; the frame encoder that writes the body once; their JSON rendering.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/notify.v2.rs"));

pub mod frame;
pub mod json;
