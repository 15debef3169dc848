//! Getting bytes to the broker: plain TCP or TLS (rustls with the ring
//! provider), split into a read half and a write half so that one task can
//! read while another writes.

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The read half of a connection.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// How the broker's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Against the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Not at all (`--insecure`): for test brokers with self-signed
    /// certificates. The connection is still encrypted.
    Insecure,
}

/// TLS settings from the command line.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// How to check the broker's certificate.
    pub verify: Verify,
    /// The name to send (SNI) and to check the certificate against.
    pub server_name: String,
    /// A client certificate and key (PEM), for brokers that ask for one.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

/// Where the broker is and how to reach it; cheap to clone per connection.
#[derive(Clone)]
pub struct Target {
    /// The broker's address.
    pub addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// A target reached over plain TCP, or TLS when `tls` is given. Reads
    /// certificate files now, so a bad path fails before any load starts.
    pub fn new(addr: SocketAddr, tls: Option<&TlsOptions>) -> anyhow::Result<Self> {
        let tls = match tls {
            None => None,
            Some(opts) => {
                let config = client_config(opts)?;
                let name = ServerName::try_from(opts.server_name.clone()).with_context(|| {
                    format!(
                        "--server-name {:?} is not a DNS name or IP address",
                        opts.server_name
                    )
                })?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Self { addr, tls })
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens a connection and, for TLS, completes the handshake.
    pub async fn connect(&self) -> std::io::Result<(Reader, Writer)> {
        let tcp = TcpStream::connect(self.addr).await?;
        // We batch our own writes; Nagle would only add delay to acks.
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => {
                let (r, w) = tcp.into_split();
                Ok((Box::new(r), Box::new(w)))
            }
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), tcp).await?;
                let (r, w) = tokio::io::split(stream);
                Ok((Box::new(r), Box::new(w)))
            }
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(opts: &TlsOptions) -> anyhow::Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?;
    let builder = match &opts.verify {
        Verify::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider()))),
        Verify::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = read_certs(path)?;
            if certs.is_empty() {
                bail!(
                    "--cafile {}: no PEM certificate found in it; give the CA that signed the broker's certificate",
                    path.display()
                );
            }
            for cert in certs {
                roots.add(cert).with_context(|| {
                    format!("--cafile {}: unusable CA certificate", path.display())
                })?;
            }
            builder.with_root_certificates(roots)
        }
    };
    Ok(match &opts.client_auth {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .context("--cert/--key: the key does not match the certificate")?
        }
    })
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading PEM certificates from {}", path.display()))
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .with_context(|| format!("reading a PEM private key from {}", path.display()))?
        .with_context(|| format!("{}: no PEM private key found in it", path.display()))
}

/// Accepts whatever certificate the broker shows, but still checks that the
/// handshake is signed by it, so the session is encrypted to that key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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
