//! The MQTT 3.1.1 conformance harness (issue 4): a scenario engine driving a
//! raw MQTT client, and the scripted suite in `fixtures/scenarios/`.
//!
//! Layers, bottom up:
//! - [`client`]: one network connection (TCP, TLS, or WebSocket over
//!   either, through [`websocket`]) on `mqtt_codec`, whose reader
//!   timestamps every packet, undecodable byte and close.
//! - [`model`]: the values steps hold (templates, matchers, packet ids).
//! - [`engine`]: the context steps run against: each client's connection
//!   and arrivals, expectations, the QoS flows.
//! - [`actions`]: each step keyword, defined once: its fields, parse, run,
//!   docs and tests.
//! - [`script`]: the TOML scenario format, parsed into [`scenario`]s with
//!   file:line errors; each step by its action.
//! - [`runner`]: runs one scenario's steps and returns its result and
//!   transcript.
//! - [`select`]: `--only`/`--skip` globs over ids, areas, tags and
//!   statements.
//! - [`suite`]: loads the built-in or a user's suite, filters it, runs it
//!   concurrently with isolation (scheduled by `schedule`, which probes the
//!   broker between scenarios), and checks the results against a baseline.
//! - [`liveness`]: the probe between scenarios that tells a broker that
//!   stopped answering from one that fails checks.
//! - [`restart`]: the broker restarts of `restart` and `kill` steps
//!   (`--restart-command`, `--kill-command`) and the wait for it to accept
//!   clients again.
//! - [`spec`]: the normative statements and the coverage table.
//! - [`report`]: text, JSON and JUnit XML.
//!
//! Beside the suite, [`proxy`] is the fault-injecting MQTT proxy of
//! `toolkit proxy`, which the harness's own tests also put between a client
//! and a broker.

pub mod actions;
pub mod baseline;
pub mod builtin;
pub mod client;
pub mod describe;
pub mod engine;
pub mod liveness;
pub mod model;
pub mod outcome;
pub mod proxy;
pub mod report;
pub mod restart;
pub mod runner;
pub mod scenario;
mod schedule;
pub mod script;
pub mod select;
pub mod spec;
pub mod suite;
pub mod target;
pub mod websocket;
