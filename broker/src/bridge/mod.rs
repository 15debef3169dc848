//! Bridges: this broker as a client of another broker, moving the messages
//! of chosen topics between the two, as mosquitto's bridges do.
//!
//! - [`config`]: one bridge's settings from mosquitto's bridge directives
//!   (line by line, or a `[[bridge]]` table of the TOML config).
//! - [`topics`]: the `topic` lines: direction, QoS, and the prefixes
//!   swapped as a message crosses.
//! - [`remote`]: the connection to the remote broker (plain or TLS) as
//!   packets in and out.
//! - [`run`]: the task, one per bridge: the local session in the router,
//!   the remote connection, reconnecting with `restart_timeout`.
//!
//! The other way round, a remote broker's bridge connecting here, is an
//! ordinary connection whose CONNECT carries the bridge bit (level
//! 0x83/0x84): see [`crate::session::connect::Accepted::bridge`].

pub mod config;
pub mod remote;
pub mod run;
pub mod topics;

pub use config::{Applied, BridgeConfig, BridgeConfigError};
pub use remote::BridgeTlsError;
pub use run::Host;
