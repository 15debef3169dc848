//! What can go wrong making, loading or writing certificates.

use std::path::PathBuf;

/// Why a certificate could not be generated, loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or failed to sign.
    #[error("generating the certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A host name is not a valid DNS name for a Subject Alternative Name.
    #[error(
        "{name:?} is not a valid DNS name for a certificate: use dot-separated labels of letters, digits and '-', like broker.example.com"
    )]
    InvalidHostname {
        /// The name as given.
        name: String,
    },
    /// A server certificate needs at least one name to be matched against.
    #[error("a server certificate needs at least one host name or IP address")]
    NoNames,
    /// A client certificate's name must not be empty.
    #[error("a client certificate needs a non-empty name")]
    EmptyClientName,
    /// The validity window ends before it starts.
    #[error("the validity window ends ({not_after}) before it starts ({not_before})")]
    InvertedValidity {
        /// Start of the window.
        not_before: time::OffsetDateTime,
        /// End of the window.
        not_after: time::OffsetDateTime,
    },
    /// A file to be written exists and [`Overwrite::Refuse`](super::Overwrite) was asked.
    #[error("{} already exists; it was left untouched", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// Reading a file failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing a file (or creating its folder) failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file meant to hold a CA certificate does not hold a usable one.
    #[error("{} does not hold a PEM certificate usable as a CA: {reason}", path.display())]
    BadCaCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file meant to hold a private key does not hold a usable one.
    #[error("{} does not hold a PEM private key rcgen can sign with: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// The CA key is not the key of the CA certificate: leaves signed with it
    /// would fail verification against that certificate.
    #[error("{} is not the private key of the certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}
