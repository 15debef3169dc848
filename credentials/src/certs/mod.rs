//! Certificate generation for MQTT over TLS: a local certificate authority,
//! server and client certificates signed by it, and self-signed server
//! certificates, written as PEM pairs.
//!
//! This lives in the broker's library because two programs must make the very
//! same certificates: `toolkit certs`, and the broker when it creates its
//! first-run certificate. Inspection (printing what a certificate holds) is
//! the toolkit's business and lives there.
//!
//! Every key is ECDSA P-256 (what `ring` can generate). Extensions follow
//! RFC 5280 and what TLS stacks check:
//! - the CA alone carries `basicConstraints CA:TRUE` (critical) and the key
//!   usages keyCertSign and cRLSign;
//! - leaves carry `basicConstraints CA:FALSE`, key usages digitalSignature and
//!   keyEncipherment (the pair OpenSSL-era tools expect of a TLS leaf), and
//!   the extended key usage serverAuth or clientAuth;
//! - server certificates name their hosts as Subject Alternative Names, since
//!   TLS clients match the host against SANs and ignore the common name.
//!
//! A typical use:
//!
//! ```no_run
//! use credentials::certs::{CertificateAuthority, Overwrite, PairPaths, SubjectNames, Validity};
//! # fn main() -> Result<(), credentials::certs::CertError> {
//! let validity = Validity::days_from_now(365);
//! let ca = CertificateAuthority::generate("My local CA", validity)?;
//! let server = ca.issue_server(&SubjectNames::localhost(), validity)?;
//! let dir = std::path::Path::new("certs");
//! credentials::certs::write_pairs(
//!     &[
//!         (ca.pem_pair(), PairPaths::in_dir(dir, "ca")),
//!         (server, PairPaths::in_dir(dir, "mqtt_server")),
//!     ],
//!     Overwrite::Refuse,
//! )?;
//! # Ok(()) }
//! ```

mod authority;
mod error;
mod files;
mod fingerprint;
mod names;
mod validity;

pub use authority::{CertificateAuthority, self_signed_server};
pub use error::CertError;
pub use files::{Overwrite, PairPaths, write_pairs};
pub use fingerprint::{hex_colons, sha256_fingerprint};
pub use names::SubjectNames;
pub use validity::Validity;

/// A certificate and its private key, both PEM-encoded. The key is PKCS#8
/// (`-----BEGIN PRIVATE KEY-----`), which OpenSSL, mosquitto and rustls read.
#[derive(Clone, PartialEq, Eq)]
pub struct PemPair {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key in PKCS#8.
    pub key_pem: String,
}

impl std::fmt::Debug for PemPair {
    /// Shows the certificate but never the private key, so a pair can be
    /// logged or put in an assertion message without leaking it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}
