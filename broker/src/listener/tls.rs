//! The TLS listener's rustls configuration: the workspace's one server
//! builder (`credentials::server_tls`), named as the listener knows it.

pub use credentials::server_tls::{TlsError, server_config};
