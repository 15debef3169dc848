//! The broker under test: where it listens, how to reach its TLS listener,
//! and the credentials it accepts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why a target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The CA file could not be read.
    #[error("reading CA file {path}: {source}")]
    ReadCa {
        /// The path given.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("CA file {path} holds no PEM certificate: {reason}")]
    BadCa {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The host is not a valid TLS server name.
    #[error("{host:?} is not a valid TLS server name: {reason}")]
    ServerName {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The TLS listener of the target.
#[derive(Clone)]
pub struct TlsTarget {
    /// Its port.
    pub port: u16,
    /// The client configuration (trust anchors or no verification).
    pub config: Arc<ClientConfig>,
    /// The name the certificate is checked against.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// User name and password the broker accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Everything needed to reach the broker under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Plain MQTT port.
    pub port: u16,
    /// TLS listener, if the run has one.
    pub tls: Option<TlsTarget>,
    /// Credentials, if the broker wants them (and refuses wrong ones).
    pub credentials: Option<Credentials>,
    /// Bound on opening a TCP connection and on a TLS handshake.
    pub connect_timeout: Duration,
}

impl Target {
    /// A plain-only target without credentials.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            tls: None,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS target trusting the CA certificates in the PEM file `cafile`.
pub fn tls_with_ca(host: &str, port: u16, cafile: &Path) -> Result<TlsTarget, TargetError> {
    let path = cafile.display().to_string();
    let pem = std::fs::read(cafile).map_err(|source| TargetError::ReadCa {
        path: path.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| TargetError::BadCa {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TargetError::BadCa {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(TargetError::BadCa {
            path,
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsTarget {
        port,
        config: Arc::new(config),
        server_name: server_name(host)?,
    })
}

/// A TLS target that accepts any server certificate (`--insecure`): for
/// brokers with self-signed certificates when no CA file is at hand.
pub fn tls_insecure(host: &str, port: u16) -> Result<TlsTarget, TargetError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    Ok(TlsTarget {
        port,
        config: Arc::new(config),
        server_name: server_name(host)?,
    })
}

fn server_name(host: &str) -> Result<ServerName<'static>, TargetError> {
    ServerName::try_from(host.to_owned()).map_err(|e| TargetError::ServerName {
        host: host.to_owned(),
        reason: e.to_string(),
    })
}

/// Skips certificate verification but still checks handshake signatures, so
/// the connection is encrypted to whoever holds the key.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
