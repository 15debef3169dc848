//! The reference MQTT 3.1.1 broker, and the protocol layers every crate in this
//! workspace stands on.
//!
//! Layers, bottom up:
//! - [`codec`]: the fourteen control packets as typed values, an incremental
//!   decoder and an encoder (including deliberately wrong packets for the
//!   conformance harness). No sockets, no clocks.
//! - [`topic`]: topic name and filter rules, matching, and the subscription index.
//! - [`session`]: one client's protocol state (in-flight ids, QoS 2 steps,
//!   keep-alive) as a state machine fed packets and the time.
//! - [`router`]: shared state — subscriptions, retained messages, parked
//!   sessions — and a bounded outbox per client.
//! - [`listener`]: plain and TLS accept loops, one task per connection.
//! - [`server`]: all of it put together, with graceful shutdown.
//!
//! Beside them: [`auth`] (password files), [`config`] (flags and TOML),
//! [`store`] (persistence in redb), [`sys`] and [`stats`] (`$SYS` topics and
//! the counters behind them), [`tls_files`] (the first-run certificate), [`tls`] (PEM files, the crypto provider and
//! the `--insecure` verifier every TLS client and listener here shares), and
//! [`certs`]: certificate generation (CA, server, client, self-signed) shared
//! by `toolkit certs` and the broker's first-run certificate.

pub mod auth;
pub mod certs;
pub mod codec;
pub mod config;
pub mod listener;
pub mod router;
pub mod server;
pub mod session;
pub mod stats;
pub mod store;
pub mod sys;
pub mod tls;
pub mod tls_files;
pub mod topic;
