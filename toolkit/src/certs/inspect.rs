//! Reading certificates into plain facts: [`CertInfo`], one per certificate
//! in a file, whoever made it (rcgen, openssl, a public CA).

use std::path::Path;

use credentials::certs::{hex_colons, sha256_fingerprint};
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;

use crate::exit::usage;

/// What one certificate holds, in the terms people look for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject distinguished name, as `CN=…, O=…`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Whether subject and issuer are the same name.
    pub self_issued: bool,
    /// Serial number, hex bytes joined by `:`.
    pub serial: String,
    /// Subject Alternative Names as `DNS:name`, `IP:addr`, `email:…`, `URI:…`.
    pub sans: Vec<String>,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// Whole days from now until `not_after`; negative once expired.
    pub days_left: i64,
    /// `valid`, `expired` or `not yet valid`.
    pub status: ValidityStatus,
    /// `RSA`, `EC P-256`, `Ed25519`…
    pub key_algorithm: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: usize,
    /// Signature algorithm, by its short name.
    pub signature_algorithm: String,
    /// SHA-256 of the DER certificate, upper-case hex joined by `:` (as
    /// `openssl x509 -fingerprint -sha256` prints it).
    pub sha256_fingerprint: String,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// The CA's path length limit, if any.
    pub path_len: Option<u32>,
    /// Key usage bits by their RFC 5280 names; empty without the extension.
    pub key_usage: Vec<String>,
    /// Extended key usages (`serverAuth`, `clientAuth`, …, or dotted OIDs).
    pub extended_key_usage: Vec<String>,
}

/// Where "now" falls relative to the validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidityStatus {
    /// Inside the window.
    Valid,
    /// Past `not_after`.
    Expired,
    /// Before `not_before`.
    NotYetValid,
}

/// Reads every certificate in `path` (a PEM file with one or more
/// certificates, other PEM blocks skipped, or a single DER certificate).
/// Errors are usage errors naming the file and what to do.
pub fn inspect_file(path: &Path, now: OffsetDateTime) -> anyhow::Result<Vec<CertInfo>> {
    let bytes =
        std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    inspect_bytes(&bytes, now).map_err(|reason| usage(format!("{}: {reason}", path.display())))
}

/// Like [`inspect_file`] on bytes; the error says what is wrong with them.
pub fn inspect_bytes(bytes: &[u8], now: OffsetDateTime) -> Result<Vec<CertInfo>, String> {
    let looks_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    if !looks_pem {
        let (_, cert) = X509Certificate::from_der(bytes).map_err(|e| {
            format!(
                "neither PEM nor a DER certificate ({})",
                credentials::describe::x509_error(&e)
            )
        })?;
        return Ok(vec![describe(&cert, bytes, now)]);
    }
    let mut infos = Vec::new();
    let mut other_labels = Vec::new();
    for (i, pem) in Pem::iter_from_buffer(bytes).enumerate() {
        let pem = pem.map_err(|e| format!("PEM block {} is malformed ({e})", i + 1))?;
        if pem.label != "CERTIFICATE" && pem.label != "TRUSTED CERTIFICATE" {
            other_labels.push(pem.label.clone());
            continue;
        }
        let cert = pem.parse_x509().map_err(|e| {
            format!(
                "certificate {} is not valid X.509 ({})",
                infos.len() + 1,
                credentials::describe::x509_error(&e)
            )
        })?;
        infos.push(describe(&cert, &pem.contents, now));
    }
    if infos.is_empty() {
        return Err(if other_labels.is_empty() {
            "holds no PEM certificate".to_owned()
        } else {
            format!(
                "holds no certificate, only {}: pass the .pem certificate file, not the key",
                other_labels.join(", ")
            )
        });
    }
    Ok(infos)
}

/// The facts of one parsed certificate; `der` is its encoding, for the
/// fingerprint.
pub fn describe(cert: &X509Certificate<'_>, der: &[u8], now: OffsetDateTime) -> CertInfo {
    let validity = cert.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    let status = if now > not_after {
        ValidityStatus::Expired
    } else if now < not_before {
        ValidityStatus::NotYetValid
    } else {
        ValidityStatus::Valid
    };
    let (is_ca, path_len) = match cert.basic_constraints() {
        Ok(Some(bc)) => (bc.value.ca, bc.value.path_len_constraint),
        _ => (false, None),
    };
    let (key_algorithm, key_bits) = key_of(cert);
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        self_issued: cert.subject() == cert.issuer(),
        serial: hex_colons(cert.raw_serial(), false),
        sans: sans_of(cert),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: (not_after - now).whole_days(),
        status,
        key_algorithm,
        key_bits,
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        sha256_fingerprint: sha256_fingerprint(der),
        is_ca,
        path_len,
        key_usage: key_usage_of(cert),
        extended_key_usage: eku_of(cert),
    }
}

fn key_of(cert: &X509Certificate<'_>) -> (String, usize) {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    let parsed = spki.parsed();
    let bits = parsed.as_ref().map_or(0, PublicKey::key_size);
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return ("RSA".to_owned(), bits);
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let name = match curve {
            Some(c) if c == OID_EC_P256 => "P-256".to_owned(),
            Some(c) => match c.to_id_string().as_str() {
                "1.3.132.0.34" => "P-384".to_owned(),
                "1.3.132.0.35" => "P-521".to_owned(),
                other => other.to_owned(),
            },
            None => "unknown curve".to_owned(),
        };
        return (format!("EC {name}"), bits);
    }
    match alg.to_id_string().as_str() {
        "1.3.101.112" => ("Ed25519".to_owned(), 256),
        "1.3.101.113" => ("Ed448".to_owned(), 456),
        _ => (oid_name(alg), bits),
    }
}

fn sans_of(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(bytes) => format!("IP:{}", ip_text(bytes)),
            GeneralName::RFC822Name(e) => format!("email:{e}"),
            GeneralName::URI(u) => format!("URI:{u}"),
            GeneralName::DirectoryName(n) => format!("DirName:{n}"),
            GeneralName::RegisteredID(oid) => format!("RID:{oid}"),
            GeneralName::OtherName(oid, _) => format!("othername:{oid}"),
            _ => "other:(a name of a kind not shown)".to_owned(),
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    hex_colons(bytes, true)
}

fn key_usage_of(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ku)) = cert.key_usage() else {
        return Vec::new();
    };
    let ku = ku.value;
    [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect()
}

fn eku_of(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(eku)) = cert.extended_key_usage() else {
        return Vec::new();
    };
    let e = eku.value;
    let mut out: Vec<String> = [
        (e.server_auth, "serverAuth"),
        (e.client_auth, "clientAuth"),
        (e.code_signing, "codeSigning"),
        (e.email_protection, "emailProtection"),
        (e.time_stamping, "timeStamping"),
        (e.ocsp_signing, "OCSPSigning"),
        (e.any, "anyExtendedKeyUsage"),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| name.to_owned())
    .collect();
    out.extend(e.other.iter().map(|oid| oid.to_id_string()));
    out
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_owned)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use credentials::certs::{CertificateAuthority, SubjectNames, Validity};

    #[test]
    fn reads_every_certificate_of_a_chain_and_skips_keys() {
        let ca = CertificateAuthority::generate("T CA", Validity::days_from_now(30)).unwrap();
        let leaf = ca
            .issue_server(&SubjectNames::localhost(), Validity::days_from_now(10))
            .unwrap();
        let chain = format!("{}{}{}", leaf.cert_pem, leaf.key_pem, ca.cert_pem());
        let infos = inspect_bytes(chain.as_bytes(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(infos.len(), 2);
        let (l, c) = (&infos[0], &infos[1]);
        assert_eq!(l.subject, "CN=localhost");
        assert_eq!(l.issuer, "CN=T CA");
        assert_eq!(l.sans, ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
        assert_eq!(l.key_usage, ["digitalSignature", "keyEncipherment"]);
        assert_eq!(l.extended_key_usage, ["serverAuth"]);
        assert_eq!((l.key_algorithm.as_str(), l.key_bits), ("EC P-256", 256));
        assert!(!l.is_ca && c.is_ca && c.self_issued);
        assert_eq!(c.key_usage, ["keyCertSign", "cRLSign"]);
        assert_eq!(l.status, ValidityStatus::Valid);
        assert!((9..=10).contains(&l.days_left), "{}", l.days_left);
        assert_eq!(l.sha256_fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn backdated_certificate_is_expired_with_negative_days() {
        let ca =
            CertificateAuthority::generate("T", Validity::days_from_now(1).backdated(5)).unwrap();
        let infos = inspect_bytes(ca.cert_pem().as_bytes(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(infos[0].status, ValidityStatus::Expired);
        assert_eq!(infos[0].days_left, -4);
    }

    #[test]
    fn a_key_alone_or_junk_is_refused_with_a_reason() {
        let ca = CertificateAuthority::generate("T", Validity::days_from_now(1)).unwrap();
        let key = ca.pem_pair().key_pem;
        let err = inspect_bytes(key.as_bytes(), OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.contains("only PRIVATE KEY"), "{err}");
        let err = inspect_bytes(b"hello", OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.contains("neither PEM nor"), "{err}");
    }

    #[test]
    fn der_certificate_is_read() {
        let ca = CertificateAuthority::generate("T", Validity::days_from_now(1)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(ca.cert_pem().as_bytes()).unwrap();
        let infos = inspect_bytes(&pem.contents, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(infos[0].subject, "CN=T");
    }
}
