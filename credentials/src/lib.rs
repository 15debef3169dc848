//! Credentials, built once for the whole workspace: PEM certificates and
//! keys, the rustls client and server pieces, certificate making, and
//! mosquitto password files.
//!
//! The broker (its listeners, its first-run certificate, its password check)
//! and the toolkit (`certs`, `passwd`, and the TLS clients of `probe`,
//! `bench` and the conformance harness) all use these; none of it knows MQTT.
//!
//! - [`tls`]: the crypto provider, PEM loading with errors that name the
//!   file, the `--insecure` verifier and the one client configuration builder.
//! - [`server_tls`]: the one server configuration builder (the broker's TLS
//!   listeners, the client side of `toolkit proxy`).
//! - [`certs`]: a local CA, server and client certificates, self-signed ones.
//! - [`describe`]: rustls and x509-parser errors in words, without debug text.
//! - [`password`]: mosquitto's `$7$`/`$6$` password file format.

pub mod certs;
pub mod describe;
pub mod password;
pub mod server_tls;
pub mod tls;
