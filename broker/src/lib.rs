//! The reference MQTT 3.1.1 broker.
//!
//! It stands on two crates it shares with the toolkit: `mqtt-codec` (the
//! packets, the decoder and encoder, the topic rules of §4.7) and
//! `credentials` (PEM files, rustls pieces, certificate making, password
//! files). Its own layers, bottom up:
//! - [`session`]: one client's protocol state (the CONNECT rules, in-flight
//!   ids, QoS 2 steps, keep-alive) as a state machine fed packets and the
//!   time; it never awaits.
//! - [`router`]: shared state — the subscription index, retained messages,
//!   parked sessions — and a bounded outbox per client. It returns what
//!   happened (grants, retained messages) and lets the session reply.
//! - [`listener`]: plain and TLS accept loops, one task per connection.
//! - [`server`]: all of it put together, with graceful shutdown.
//!
//! Beside them: [`auth`] (password files), [`bridge`] (this broker as a
//! client of another, moving chosen topics between them), [`config`]
//! (flags and TOML),
//! [`store`] (persistence in redb), [`sys`] and [`stats`] (`$SYS` topics and
//! the counters behind them), [`tls_files`] (the first-run certificate,
//! made with `credentials::certs` like `toolkit certs` makes its own) and
//! [`mutant`] (bugs planted on purpose, only with the `mutants` feature, to
//! test the conformance suite).

pub mod acl;
pub mod auth;
pub mod bridge;
pub mod config;
pub mod listener;
pub mod mutant;
pub mod router;
pub mod server;
pub mod session;
mod sparse;
pub mod stats;
pub mod store;
pub mod sys;
pub mod tls_files;
