//! TLS for the probe: the rustls client configuration built from the flags
//! (with a verifier that records the server's chain),
//! a first handshake of our own that reports what was negotiated and what
//! certificate the server showed, and the translation of TLS failures into
//! one-line reasons with a fix.
//!
//! The first handshake exists because rumqttc hides the TLS session: doing it
//! ourselves, with a verifier that records the server's chain before judging
//! it, lets the probe print protocol, cipher suite and certificate, and tell
//! a self-signed certificate from an unknown CA, a wrong host name or an
//! expired certificate. The MQTT connection that follows uses the same
//! configuration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use x509_parser::prelude::FromDer as _;

use super::{Target, TlsSwitch};
use crate::certs::CertInfo;
use crate::connection::{self, TlsSettings};
use crate::exit::{Failure, Status};

/// What the first handshake found.
#[derive(Debug)]
pub struct TlsReport {
    /// "TLS 1.3" or "TLS 1.2".
    pub protocol: String,
    /// The negotiated cipher suite, by its IANA name.
    pub cipher_suite: String,
    /// Time from ClientHello to a finished handshake.
    pub handshake: Duration,
    /// The server's certificate (the first of its chain).
    pub server_cert: Option<CertInfo>,
}

/// The server chain as the verifier last saw it.
type SeenChain = Arc<Mutex<Vec<CertificateDer<'static>>>>;

/// Builds the client configuration for these settings (see
/// [`connection::client_config_with`]). `seen`, when given, receives the
/// server's chain during the handshake.
pub fn client_config(
    settings: &TlsSettings,
    seen: Option<SeenChain>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let inner = connection::server_verifier(&settings.trust)?;
    let verifier: Arc<dyn ServerCertVerifier> = match seen {
        Some(seen) => Arc::new(Recording { inner, seen }),
        None => inner,
    };
    connection::client_config_with(verifier, settings.client_auth.as_ref())
}

/// Does a TLS handshake on `tcp` and reports it, or fails with a reason and
/// a fix. The connection is closed afterwards.
pub async fn handshake_report(
    tcp: TcpStream,
    target: &Target,
    settings: &TlsSettings,
) -> anyhow::Result<TlsReport> {
    let (host, port, timeout, switch) = (
        target.host.as_str(),
        target.port,
        target.timeout,
        target.switch,
    );
    let seen: SeenChain = Arc::default();
    let config = client_config(settings, Some(seen.clone()))?;
    let name = connection::server_name(host)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let chain = seen.lock().map(|c| c.clone()).unwrap_or_default();
    let server_cert = chain.first().and_then(|der| {
        let (_, x509) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
        Some(crate::certs::describe(
            &x509,
            der,
            time::OffsetDateTime::now_utc(),
        ))
    });
    let stream = match result {
        Err(_) => {
            return Err(Failure::new(
                Status::Timeout,
                format!(
                    "TLS handshake with {host}:{port} did not finish within {}: is it a TLS listener? ({})",
                    humantime::format_duration(timeout),
                    switch.drop()
                ),
            )
            .into());
        }
        Ok(Err(err)) => {
            return Err(classify_io(&err, host, port, switch, server_cert.as_ref()).into());
        }
        Ok(Ok(stream)) => stream,
    };
    let handshake = started.elapsed();
    let (_, conn) = stream.get_ref();
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
        Some(other) => format!("TLS version 0x{:04x}", u16::from(other)),
        None => "unknown".to_owned(),
    };
    let cipher_suite = conn.negotiated_cipher_suite().map_or_else(
        || "unknown".to_owned(),
        |s| {
            let suite = s.suite();
            suite
                .as_str()
                .map_or_else(|| format!("0x{:04x}", u16::from(suite)), str::to_owned)
        },
    );
    let mut stream = stream;
    // A polite close_notify; the broker may already be gone, which is fine.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    Ok(TlsReport {
        protocol,
        cipher_suite,
        handshake,
        server_cert,
    })
}

/// Explains an I/O error from a TLS connection (handshake or later), which
/// wraps a rustls error when TLS itself failed.
pub fn classify_io(
    err: &std::io::Error,
    host: &str,
    port: u16,
    switch: TlsSwitch,
    server_cert: Option<&CertInfo>,
) -> Failure {
    if let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_tls(tls, host, port, switch, server_cert);
    }
    use std::io::ErrorKind::*;
    match err.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => Failure::new(
            Status::Handshake,
            format!(
                "{host}:{port} closed the connection during the TLS handshake ({err}): is it a TLS listener? ({}), or does it require a client certificate? (pass --cert and --key)",
                switch.drop()
            ),
        ),
        _ => Failure::new(
            Status::Handshake,
            format!("TLS with {host}:{port} failed: {err}"),
        ),
    }
}

/// Explains a rustls error.
pub fn classify_tls(
    err: &rustls::Error,
    host: &str,
    port: u16,
    switch: TlsSwitch,
    server_cert: Option<&CertInfo>,
) -> Failure {
    use rustls::AlertDescription as A;
    match err {
        rustls::Error::InvalidCertificate(cert_err) => Failure::new(
            Status::Certificate,
            certificate_reason(cert_err, host, server_cert),
        ),
        rustls::Error::AlertReceived(
            alert @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::AccessDenied),
        ) => Failure::new(
            Status::Handshake,
            format!(
                "the broker rejected the TLS connection with alert {}: it wants a client certificate it trusts; pass --cert FILE --key FILE (make one with `toolkit certs client --name NAME`)",
                credentials::describe::alert_name(*alert)
            ),
        ),
        rustls::Error::AlertReceived(alert) => Failure::new(
            Status::Handshake,
            format!(
                "the broker ended the TLS handshake with alert {}: it shares no protocol version or cipher suite with us (we offer TLS 1.2 and 1.3)",
                credentials::describe::alert_name(*alert)
            ),
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            Failure::new(
                Status::Handshake,
                format!(
                    "{host}:{port} does not speak TLS ({}): is it a plain MQTT port? ({})",
                    credentials::describe::tls_error(err),
                    switch.drop()
                ),
            )
        }
        other => Failure::new(
            Status::Handshake,
            format!(
                "TLS handshake with {host}:{port} failed: {}",
                credentials::describe::tls_error(other)
            ),
        ),
    }
}

fn certificate_reason(err: &CertificateError, host: &str, cert: Option<&CertInfo>) -> String {
    let subject = cert.map_or_else(
        || "the server's certificate".to_owned(),
        |c| format!("the server's certificate ({})", c.subject),
    );
    match err {
        // No path to a trusted CA. Which error webpki reports depends on
        // what the trust store holds (a store with an unrelated root of the
        // same name gives a signature error rather than UnknownIssuer), so
        // the reason is chosen from the certificate itself.
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => match cert {
            Some(c) if c.self_issued => format!(
                "certificate is self-signed ({}): pass --cafile with that certificate, or --insecure to skip verification",
                c.subject
            ),
            Some(c) => format!(
                "certificate is signed by an unknown CA ({}): pass --cafile ca.pem (the CA that signed it), or --insecure to skip verification",
                c.issuer
            ),
            None => "certificate is signed by an unknown CA: pass --cafile ca.pem, or --insecure to skip verification".to_owned(),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = cert.map_or_else(String::new, |c| c.sans.join(", "));
            // An address is matched only against IP SANs: `--hostname`
            // takes addresses too, but `--ip` says what the SAN will be.
            let flag = if host.parse::<std::net::IpAddr>().is_ok() {
                "--ip"
            } else {
                "--hostname"
            };
            format!(
                "{subject} is not valid for host {host} (it names: {names}): connect with --host set to one of its names, or make one with `toolkit certs {flag} {host}`"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = cert.map_or_else(String::new, |c| {
                format!(
                    "not after {}, {}",
                    c.not_after,
                    crate::certs::status_text(c)
                )
            });
            format!(
                "{subject} has expired ({when}): renew it (`toolkit certs`), or --insecure to skip verification"
            )
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "{subject} is not valid yet: check the clocks of this machine and the certificate's maker"
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => format!(
            "{subject} is not allowed for TLS servers (its extended key usage lacks serverAuth): make a server certificate with `toolkit certs`"
        ),
        other => format!(
            "{subject} was rejected: {}",
            credentials::describe::certificate_error(other)
        ),
    }
}

/// A verifier that records the chain, then asks the real one.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: SeenChain,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: the hint for an address recommended `--hostname ADDR`,
    /// which wrote a DNS SAN that never matches an address.
    #[test]
    fn the_name_mismatch_hint_names_ip_for_addresses() {
        let err = CertificateError::NotValidForName;
        let for_ip = certificate_reason(&err, "192.0.2.2", None);
        assert!(
            for_ip.contains("`toolkit certs --ip 192.0.2.2`"),
            "{for_ip}"
        );
        let for_v6 = certificate_reason(&err, "::1", None);
        assert!(for_v6.contains("`toolkit certs --ip ::1`"), "{for_v6}");
        let for_name = certificate_reason(&err, "broker.example", None);
        assert!(
            for_name.contains("`toolkit certs --hostname broker.example`"),
            "{for_name}"
        );
    }
}
