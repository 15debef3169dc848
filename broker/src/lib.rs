//! The reference MQTT 3.1.1 broker, and the protocol layers every crate in this
//! workspace stands on.
//!
//! Layers, bottom up:
//! - [`codec`]: the fourteen control packets as typed values, an incremental
//!   decoder and an encoder (including deliberately wrong packets for the
//!   conformance harness). No sockets, no clocks.
//! - [`topic`]: topic name and filter rules, matching, and the subscription index.
//! - [`certs`]: certificate generation (CA, server, client, self-signed) shared
//!   by `toolkit certs` and the broker's first-run certificate.

pub mod certs;
pub mod codec;
pub mod topic;
