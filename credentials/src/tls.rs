//! TLS building blocks shared by every side of the workspace: the broker's
//! listener and the clients of `toolkit probe`, `toolkit bench` and the
//! conformance harness.
//!
//! They all need the same few things — the one crypto provider we ship
//! (ring, so no C toolchain is needed for aws-lc), PEM certificates and keys
//! read from user-given files with errors that name the file and what was
//! wrong with it, a trust store from a CA file, an `--insecure` verifier, and
//! a client configuration from those — and each got them subtly different
//! when they were written three times. [`client_config`] is the one client
//! builder. Callers wrap a [`PemError`] with their flag names and hints; the
//! error itself already names the file and the problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// The crypto provider every TLS configuration in the workspace uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a PEM file given by a user cannot be used. `what` is the caller's name
/// for the file ("--cafile", "client certificate", ...), so the one-line
/// message says which of several files is at fault.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file cannot be read at all.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// The caller's name for the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is there but is not valid PEM.
    #[error("{what} {} is not valid PEM: {reason}", path.display())]
    Invalid {
        /// The caller's name for the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// The file holds no certificate (often: the key was given instead).
    #[error(
        "{what} {} holds no PEM certificate (no CERTIFICATE block; give the .pem certificate, not the key)",
        path.display()
    )]
    NoCertificate {
        /// The caller's name for the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// The file holds no private key (often: the certificate was given instead).
    #[error(
        "{what} {} holds no PEM private key (no PRIVATE KEY block; give the .key file, not the certificate)",
        path.display()
    )]
    NoKey {
        /// The caller's name for the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// A certificate in a CA file cannot serve as a trust anchor.
    #[error("{what} {} holds a certificate that cannot be a trust anchor: {reason}", path.display())]
    NotTrustAnchor {
        /// The caller's name for the file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|source| PemError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, what: &'static str, err: &pem::Error) -> PemError {
    PemError::Invalid {
        what,
        path: path.to_owned(),
        reason: crate::describe::pem_file_error(err),
    }
}

/// Every certificate in a PEM file, in order; at least one.
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, what, &e))?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path, what: &'static str) -> Result<PrivateKeyDer<'static>, PemError> {
    let bytes = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => PemError::NoKey {
            what,
            path: path.to_owned(),
        },
        other => invalid(path, what, &other),
    })
}

/// A trust store holding every certificate of a PEM CA file.
pub fn load_roots(path: &Path, what: &'static str) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, what)? {
        roots.add(cert).map_err(|e| PemError::NotTrustAnchor {
            what,
            path: path.to_owned(),
            reason: crate::describe::tls_error(&e),
        })?;
    }
    Ok(roots)
}

/// How a client judges the server's certificate.
#[derive(Clone)]
pub enum ServerVerification {
    /// Against these trust anchors (a `--cafile`, or a system store the
    /// caller loaded), with the host name checked against the certificate.
    Roots(RootCertStore),
    /// Not at all (`--insecure`): any certificate for any name. The
    /// handshake signatures are still checked, so the session is encrypted.
    Insecure,
    /// A verifier of the caller's own (the probe records the chain it saw
    /// before judging it).
    Custom(Arc<dyn ServerCertVerifier>),
}

impl std::fmt::Debug for ServerVerification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Roots(roots) => write!(f, "Roots({} anchors)", roots.len()),
            Self::Insecure => f.write_str("Insecure"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A client certificate chain and its private key, for a listener that
/// requires clients to present one (mutual TLS).
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("ClientIdentity")
            .field("cert_path", &self.cert_path)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_path: self.cert_path.clone(),
            key_path: self.key_path.clone(),
        }
    }
}

impl ClientIdentity {
    /// Reads a PEM certificate chain (the client's certificate first) and its
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), given as `--cert` and `--key`.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, PemError> {
        Self::load_named(cert, key, ("--cert", "--key"))
    }

    /// [`ClientIdentity::load`] for files the user named otherwise (a
    /// config file's `bridge_certfile` and `bridge_keyfile`): `names` are
    /// what errors call the certificate and the key.
    pub fn load_named(
        cert: &Path,
        key: &Path,
        names: (&'static str, &'static str),
    ) -> Result<Self, PemError> {
        Ok(Self {
            chain: load_certs(cert, names.0)?,
            key: load_key(key, names.1)?,
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
        })
    }
}

/// Why [`client_config`] could not build a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientConfigError {
    /// The client key is not the one of the client certificate (or rustls
    /// cannot use it).
    #[error(
        "--cert {} and --key {} do not go together: {reason}",
        cert.display(),
        key.display()
    )]
    IdentityMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// rustls refused the protocol versions of its own provider; a build
    /// fault, not a user's.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
}

/// The one TLS client configuration builder of the workspace: the ring
/// provider, rustls' safe default protocol versions (TLS 1.2 and 1.3), the
/// server judged by `verify`, and `identity` presented when given.
pub fn client_config(
    verify: ServerVerification,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig, ClientConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(ClientConfigError::Tls)?;
    let builder = match verify {
        ServerVerification::Roots(roots) => builder.with_root_certificates(roots),
        ServerVerification::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(&provider))),
        ServerVerification::Custom(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier),
    };
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| ClientConfigError::IdentityMismatch {
                cert: id.cert_path.clone(),
                key: id.key_path.clone(),
                reason: crate::describe::tls_error(&e),
            }),
    }
}

/// `--insecure`: accepts any server certificate for any name, but still
/// checks the handshake signatures, so the session is encrypted to whoever
/// holds the key of the certificate the server showed.
#[derive(Debug)]
pub struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCert {
    /// A verifier checking signatures with `provider`'s algorithms.
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ca() -> crate::certs::PemPair {
        ca_named("tls test CA")
    }

    fn ca_named(name: &str) -> crate::certs::PemPair {
        crate::certs::CertificateAuthority::generate(name, crate::certs::Validity::days_from_now(1))
            .unwrap()
            .pem_pair()
    }

    #[test]
    fn reads_certificates_keys_and_roots() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let cert = write(dir.path(), "ca.pem", &ca.cert_pem);
        let key = write(dir.path(), "ca.key", &ca.key_pem);
        assert_eq!(load_certs(&cert, "CA file").unwrap().len(), 1);
        assert!(load_key(&key, "key").is_ok());
        assert_eq!(load_roots(&cert, "--cafile").unwrap().len(), 1);
    }

    #[test]
    fn every_failure_names_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let cert = write(dir.path(), "ca.pem", &ca.cert_pem);
        let key = write(dir.path(), "ca.key", &ca.key_pem);
        let junk = write(dir.path(), "junk.pem", "-----BEGIN CERTIFICATE-----\n%%%\n");
        let missing = dir.path().join("missing.pem");

        let err = load_certs(&missing, "--cafile").unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read --cafile ") && err.contains("missing.pem"),
            "{err}"
        );
        let err = load_certs(&key, "--cert").unwrap_err().to_string();
        assert!(
            err.contains("holds no PEM certificate") && err.contains("ca.key"),
            "{err}"
        );
        let err = load_key(&cert, "--key").unwrap_err().to_string();
        assert!(
            err.contains("holds no PEM private key") && err.contains("ca.pem"),
            "{err}"
        );
        let err = load_certs(&junk, "--cafile").unwrap_err().to_string();
        assert!(err.contains("is not valid PEM"), "{err}");
    }

    #[test]
    fn client_config_refuses_a_key_of_another_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let other = ca_named("another CA");
        let cert = write(dir.path(), "ca.pem", &ca.cert_pem);
        let key = write(dir.path(), "other.key", &other.key_pem);
        let identity = ClientIdentity::load(&cert, &key).unwrap();
        let err = client_config(ServerVerification::Insecure, Some(&identity))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--cert ") && err.contains("ca.pem") && err.contains("other.key"),
            "{err}"
        );
        let roots = load_roots(&cert, "--cafile").unwrap();
        let matching = ClientIdentity::load(&cert, &write(dir.path(), "ca.key", &ca.key_pem));
        assert!(client_config(ServerVerification::Roots(roots), Some(&matching.unwrap())).is_ok());
    }
}
