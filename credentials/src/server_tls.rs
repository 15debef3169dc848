//! The one TLS server configuration builder of the workspace, for the
//! broker's TLS listeners and the client side of `toolkit proxy`: TLS 1.2
//! and 1.3 only, the ring provider's default (safe) cipher suites, optional
//! client certificates.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::tls::{self, PemError, load_certs, load_key, load_roots};

/// Why a TLS server configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// rustls refused the certificate, key or CA.
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// The server configuration from PEM files.
pub fn server_config(
    cert: &Path,
    key: &Path,
    cafile: Option<&Path>,
    require_certificate: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert, "certificate")?;
    let key_der = load_key(key, "private key")?;
    let provider = tls::provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match cafile {
        Some(ca) => {
            let roots = load_roots(ca, "CA file")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key_der).map_err(|e| {
        TlsError::Rustls(format!(
            "certificate {} with key {}: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Arc::new(config))
}
