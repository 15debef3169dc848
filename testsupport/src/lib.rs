//! Test-only helpers shared by the workspace's integration tests.
//!
//! Tests reach real peers on loopback only: [`free_port`] picks an ephemeral
//! port on 127.0.0.1, and [`Mosquitto`] starts Debian's mosquitto with a
//! config the test writes, waiting for the broker to say it is running rather
//! than sleeping.

#![allow(clippy::unwrap_used)]

mod mosquitto;
mod port;

pub use mosquitto::{
    Mosquitto, MosquittoOptions, MosquittoTls, mosquitto_binary, write_acl_file,
    write_password_file,
};
pub use port::{free_port, wait_for_port};
