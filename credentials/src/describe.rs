//! Errors of the TLS and X.509 libraries in words, for messages users read.
//!
//! rustls, x509-parser and nom print several of their errors with Rust's
//! debug formatting (`keys may not be consistent: KeyMismatch`,
//! `Parsing Error: NomError(Eof)`, `received fatal alert: BadCertificate`).
//! Everything in the workspace that puts such an error in front of a user
//! goes through here instead of `{err}` (issue 12).

use std::fmt::Debug;

use rustls::{CertificateError, Error as TlsError, InconsistentKeys};
use x509_parser::error::{PEMError, X509Error};
use x509_parser::nom;

/// An error and its causes as the one line a binary prints: each message
/// joined by ": ", each text once. Many error types (thiserror's
/// `{source}`, rumqttc's, std's) put their cause's text in their own message
/// and also return the cause as their `source()`; `{:#}` would then print an
/// OS error twice in a row (issue 12). A cause whose text the line already
/// holds is left out. `anyhow::Error::chain()` is what the binaries pass.
pub fn error_chain<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A rustls error as a lowercase phrase without debug text.
pub fn tls_error(err: &TlsError) -> String {
    match err {
        TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
            "the private key is not the key of the certificate".to_owned()
        }
        TlsError::InconsistentKeys(_) => {
            "cannot tell whether the private key is the key of the certificate".to_owned()
        }
        TlsError::AlertReceived(alert) => {
            format!("the peer sent the TLS alert {}", alert_name(*alert))
        }
        TlsError::InvalidCertificate(cert) => {
            format!("invalid peer certificate: {}", certificate_error(cert))
        }
        TlsError::InvalidMessage(why) => {
            format!("received a corrupt TLS message ({})", words(why))
        }
        TlsError::InappropriateMessage { .. } | TlsError::InappropriateHandshakeMessage { .. } => {
            "received a TLS message out of order".to_owned()
        }
        TlsError::PeerIncompatible(why) => {
            format!("the peer is incompatible ({})", words(why))
        }
        TlsError::PeerMisbehaved(why) => {
            format!("the peer broke the TLS protocol ({})", words(why))
        }
        TlsError::InvalidCertRevocationList(why) => {
            format!("invalid certificate revocation list ({})", words(why))
        }
        TlsError::InvalidEncryptedClientHello(why) => {
            format!("encrypted client hello failed ({})", words(why))
        }
        // The remaining variants display as plain sentences.
        other => other.to_string(),
    }
}

/// A certificate verification error as a lowercase phrase.
pub fn certificate_error(err: &CertificateError) -> String {
    match err {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the certificate is not valid for the name connected to".to_owned()
        }
        CertificateError::Other(other) => other.to_string(),
        // rustls writes its `…Context` variants as sentences and the
        // others with debug formatting (`UnknownIssuer`).
        other => {
            let text = other.to_string();
            if text == format!("{other:?}") {
                words(other)
            } else {
                text
            }
        }
    }
}

/// A TLS alert by its name in the TLS specifications (`certificate_required`,
/// RFC 8446 section 6), not rustls's Rust name (`CertificateRequired`).
pub fn alert_name(alert: rustls::AlertDescription) -> String {
    // rustls gives alerts no Display; their Debug text is the CamelCase of
    // the RFC name, or `AlertDescription(0x..)` for a code it does not know.
    let debug = format!("{alert:?}");
    if debug.contains('(') {
        return format!("number {}", u8::from(alert));
    }
    snake_case(&debug)
}

/// Why a PEM file could not be split into its sections.
pub fn pem_file_error(err: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match err {
        E::MissingSectionEnd { end_marker } => format!(
            "a section has no end line {}",
            String::from_utf8_lossy(end_marker).trim()
        ),
        E::IllegalSectionStart { line } => format!(
            "malformed section start line {}",
            String::from_utf8_lossy(line).trim()
        ),
        other => other.to_string(),
    }
}

/// Why x509-parser could not read a DER certificate.
pub fn x509_error(err: &nom::Err<X509Error>) -> String {
    match err {
        nom::Err::Incomplete(_) => "the data ends too early".to_owned(),
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            X509Error::NomError(nom::error::ErrorKind::Eof) => "the data ends too early".to_owned(),
            X509Error::NomError(_) | X509Error::Der(_) => "malformed DER encoding".to_owned(),
            other => other.to_string(),
        },
    }
}

/// Why x509-parser could not read a PEM block.
pub fn pem_error(err: &nom::Err<PEMError>) -> String {
    match err {
        nom::Err::Incomplete(_) => "the PEM block ends too early".to_owned(),
        nom::Err::Error(e) | nom::Err::Failure(e) => e.to_string(),
    }
}

/// A unit-like enum value's Debug name as lowercase words
/// (`NoCipherSuitesInCommon` -> "no cipher suites in common"); a value
/// carrying data gives only its name.
fn words(value: &impl Debug) -> String {
    let debug = format!("{value:?}");
    let name = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    snake_case(name).replace('_', " ")
}

/// `CamelCase` -> `camel_case`, keeping runs of capitals together
/// (`UnknownCA` -> `unknown_ca`).
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    let mut previous_upper = true;
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            if !previous_upper {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_upper = true;
        } else {
            out.push(c);
            previous_upper = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription as A;

    fn has_no_debug_text(text: &str) {
        for bad in ['{', '(', ')'] {
            assert!(!text.contains(bad), "{text}");
        }
        assert!(
            !text.chars().skip(1).any(|c| c.is_ascii_uppercase()),
            "{text}"
        );
    }

    #[test]
    fn key_mismatch_is_a_sentence() {
        let text = tls_error(&TlsError::InconsistentKeys(InconsistentKeys::KeyMismatch));
        assert_eq!(text, "the private key is not the key of the certificate");
    }

    #[test]
    fn alerts_are_named_as_in_the_rfc() {
        assert_eq!(alert_name(A::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(A::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(A::HandshakeFailure), "handshake_failure");
        assert_eq!(alert_name(A::Unknown(200)), "number 200");
        assert_eq!(
            tls_error(&TlsError::AlertReceived(A::BadCertificate)),
            "the peer sent the TLS alert bad_certificate"
        );
    }

    #[test]
    fn certificate_errors_are_words() {
        for err in [
            CertificateError::UnknownIssuer,
            CertificateError::BadSignature,
            CertificateError::Expired,
            CertificateError::NotValidForName,
            CertificateError::InvalidPurpose,
        ] {
            has_no_debug_text(&certificate_error(&err));
        }
        assert_eq!(
            certificate_error(&CertificateError::UnknownIssuer),
            "unknown issuer"
        );
    }

    #[test]
    fn pem_errors_show_text_not_bytes() {
        let err = rustls_pki_types::pem::Error::MissingSectionEnd {
            end_marker: b"-----END CERTIFICATE-----".to_vec(),
        };
        assert_eq!(
            pem_file_error(&err),
            "a section has no end line -----END CERTIFICATE-----"
        );
    }

    #[test]
    fn parse_errors_are_words() {
        assert_eq!(
            x509_error(&nom::Err::Error(X509Error::NomError(
                nom::error::ErrorKind::Eof
            ))),
            "the data ends too early"
        );
        let der = x509_parser::parse_x509_certificate(&[0x30, 0x82, 0x01]).unwrap_err();
        has_no_debug_text(&x509_error(&der));
        let pem = x509_parser::pem::parse_x509_pem(b"not pem").unwrap_err();
        has_no_debug_text(&pem_error(&pem));
    }
}
