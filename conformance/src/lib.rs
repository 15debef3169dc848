//! The MQTT 3.1.1 conformance harness (issue 4): a scenario engine driving a
//! raw MQTT client, and the scripted suite in `fixtures/scenarios/`.
//!
//! Layers, bottom up:
//! - [`client`]: one network connection (TCP or TLS) on `mqtt_codec`, whose
//!   reader timestamps every packet, undecodable byte and close.
//! - [`script`]: the TOML scenario format, parsed into [`model`] types with
//!   file:line errors.
//! - [`engine`]: runs one scenario's steps and returns its result and transcript.
//! - [`suite`]: loads the built-in or a user's suite, filters it, runs it
//!   concurrently with isolation, and checks the results against a baseline.
//! - [`spec`]: the normative statements and the coverage table.
//! - [`report`]: text, JSON and JUnit XML.

pub mod baseline;
pub mod builtin;
pub mod client;
pub mod describe;
pub mod engine;
pub mod model;
pub mod outcome;
pub mod report;
pub mod script;
pub mod spec;
pub mod suite;
pub mod target;
