//! The broker under test: where it listens, how to reach its TLS listener
//! (trust anchors, and the client certificate for mutual TLS), and the
//! credentials it accepts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
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
    /// The client certificate or key file could not be read.
    #[error("reading client {what} file {path}: {source}")]
    ReadClientFile {
        /// "certificate" or "key".
        what: &'static str,
        /// The path given.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The client certificate or key file holds nothing usable.
    #[error("client {what} file {path}: {reason}")]
    BadClientFile {
        /// "certificate" or "key".
        what: &'static str,
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the
    /// client certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A client certificate chain and its private key, for a TLS listener that
/// requires clients to present one (mutual TLS).
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Reads a PEM certificate chain (the client's certificate first) and
    /// its PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TargetError> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| TargetError::ReadClientFile {
                what,
                path: path.display().to_string(),
                source,
            })
        };
        let bad = |what: &'static str, path: &Path, reason: String| TargetError::BadClientFile {
            what,
            path: path.display().to_string(),
            reason,
        };
        let pem = read("certificate", cert)?;
        let chain = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(bad(
                "certificate",
                cert,
                "no CERTIFICATE block found (give the PEM file of the client certificate)".into(),
            ));
        }
        let pem = read("key", key)?;
        let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|e| bad("key", key, e.to_string()))?
            .ok_or_else(|| {
                bad(
                    "key",
                    key,
                    "no PRIVATE KEY block found (give the PEM file of the client's key)".into(),
                )
            })?;
        Ok(Self {
            chain,
            key: key_der,
        })
    }
}

/// The TLS listener of the target.
#[derive(Clone)]
pub struct TlsTarget {
    /// Its port.
    pub port: u16,
    /// The client configuration (trust anchors or no verification), with
    /// the client certificate when the run has one.
    pub config: Arc<ClientConfig>,
    /// The same configuration without a client certificate, for scenarios
    /// that check a listener requiring one refuses a client without.
    pub config_without_cert: Arc<ClientConfig>,
    /// Whether `config` presents a client certificate.
    pub client_cert: bool,
    /// The name the certificate is checked against.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("port", &self.port)
            .field("client_cert", &self.client_cert)
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

/// A TLS target trusting the CA certificates in the PEM file `cafile`,
/// presenting `client` when given.
pub fn tls_with_ca(
    host: &str,
    port: u16,
    cafile: &Path,
    client: Option<ClientIdentity>,
) -> Result<TlsTarget, TargetError> {
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
    let builder = || {
        Ok::<_, rustls::Error>(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone()),
        )
    };
    let without = builder()?.with_no_client_auth();
    let with = match client {
        Some(id) => Some(builder()?.with_client_auth_cert(id.chain, id.key)?),
        None => None,
    };
    finish(host, port, without, with)
}

fn finish(
    host: &str,
    port: u16,
    without: ClientConfig,
    with: Option<ClientConfig>,
) -> Result<TlsTarget, TargetError> {
    let without = Arc::new(without);
    Ok(TlsTarget {
        port,
        client_cert: with.is_some(),
        config: with.map_or_else(|| Arc::clone(&without), Arc::new),
        config_without_cert: without,
        server_name: server_name(host)?,
    })
}

/// A TLS target that accepts any server certificate (`--insecure`): for
/// brokers with self-signed certificates when no CA file is at hand.
/// Presents `client` when given.
pub fn tls_insecure(
    host: &str,
    port: u16,
    client: Option<ClientIdentity>,
) -> Result<TlsTarget, TargetError> {
    let builder = || {
        let provider = provider();
        Ok::<_, rustls::Error>(
            ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider))),
        )
    };
    let without = builder()?.with_no_client_auth();
    let with = match client {
        Some(id) => Some(builder()?.with_client_auth_cert(id.chain, id.key)?),
        None => None,
    };
    finish(host, port, without, with)
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
