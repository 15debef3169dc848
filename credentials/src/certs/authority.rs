//! The local certificate authority and the certificates it issues.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::{CertError, PairPaths, PemPair, SubjectNames, Validity};

/// A CA able to sign server and client certificates: its certificate and the
/// key that signs with it. Made fresh with [`generate`](Self::generate) or
/// loaded from the PEM files an earlier run wrote with [`load`](Self::load).
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    /// Never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed CA named `common_name`, with a fresh key.
    ///
    /// It may sign leaves only (path length 0), carries the key usages
    /// keyCertSign and cRLSign and nothing else.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Self, CertError> {
        let mut params = base_params(common_name, validity);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and key files, checking that the
    /// certificate is a CA and that the key is its key.
    pub fn load(paths: &PairPaths) -> Result<Self, CertError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CertError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&paths.cert)?;
        let key_pem = read(&paths.key)?;
        Self::from_pem(&cert_pem, &key_pem, paths)
    }

    /// Like [`load`](Self::load) from text already read; `paths` only names
    /// the files in errors.
    pub fn from_pem(cert_pem: &str, key_pem: &str, paths: &PairPaths) -> Result<Self, CertError> {
        let bad_cert = |reason: String| CertError::BadCaCertificate {
            path: paths.cert.clone(),
            reason,
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| {
            bad_cert(format!(
                "no PEM block found ({})",
                crate::describe::pem_error(&e)
            ))
        })?;
        let x509 = pem.parse_x509().map_err(|e| {
            bad_cert(format!(
                "not an X.509 certificate ({})",
                crate::describe::x509_error(&e)
            ))
        })?;
        if !x509.is_ca() {
            return Err(bad_cert(
                "it is not a CA certificate (basicConstraints CA:FALSE or missing)".to_owned(),
            ));
        }
        let key = KeyPair::from_pem(key_pem).map_err(|source| CertError::BadKey {
            path: paths.key.clone(),
            source,
        })?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CertError::KeyMismatch {
                cert: paths.cert.clone(),
                key: paths.key.clone(),
            });
        }
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| bad_cert(format!("rcgen cannot sign with it ({e})")))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    /// The CA's certificate, PEM-encoded: what peers put in their trust
    /// store (`--cafile`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's certificate and key, to be written next to the leaves.
    pub fn pem_pair(&self) -> PemPair {
        PemPair {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }

    /// A server certificate for `names`, signed by this CA, with a fresh key:
    /// `CA:FALSE`, digitalSignature + keyEncipherment, EKU serverAuth.
    pub fn issue_server(
        &self,
        names: &SubjectNames,
        validity: Validity,
    ) -> Result<PemPair, CertError> {
        let params = server_params(names, validity)?;
        self.sign(params)
    }

    /// A client certificate for mutual TLS whose common name is `name` (what
    /// brokers such as mosquitto can use as the user name), signed by this CA,
    /// with a fresh key: `CA:FALSE`, digitalSignature + keyEncipherment, EKU
    /// clientAuth.
    pub fn issue_client(&self, name: &str, validity: Validity) -> Result<PemPair, CertError> {
        if name.trim().is_empty() {
            return Err(CertError::EmptyClientName);
        }
        let mut params = leaf_params(name, validity);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Result<PemPair, CertError> {
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A single self-signed server certificate for `names`, for those who want
/// the simplest thing: the certificate is its own trust anchor, so clients
/// pass the certificate itself as their CA file.
///
/// It is not a CA (`CA:FALSE`, since TLS clients refuse a CA certificate as
/// the server's own), with the same key usages and EKU as a CA-signed server
/// certificate.
pub fn self_signed_server(names: &SubjectNames, validity: Validity) -> Result<PemPair, CertError> {
    let params = server_params(names, validity)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(PemPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn base_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = validity.not_before();
    params.not_after = validity.not_after();
    params
}

fn leaf_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = base_params(common_name, validity);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params
}

fn server_params(names: &SubjectNames, validity: Validity) -> Result<CertificateParams, CertError> {
    let mut params = leaf_params(&names.common_name(), validity);
    params.subject_alt_names = names.sans()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{X509Certificate, parse_x509_pem};

    fn parse(pem: &str) -> X509Certificate<'static> {
        let (_, pem) = parse_x509_pem(pem.as_bytes()).unwrap();
        // Leaked so the parsed certificate can outlive this helper; tests only.
        let der: &'static [u8] = Box::leak(pem.contents.into_boxed_slice());
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    #[test]
    fn ca_has_ca_constraints_and_signing_usages_only() {
        let ca = CertificateAuthority::generate("Test CA", Validity::days_from_now(30)).unwrap();
        let x = parse(ca.cert_pem());
        assert!(x.is_ca());
        let bc = x.basic_constraints().unwrap().unwrap();
        assert!(bc.critical);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature() && !ku.key_encipherment());
        assert!(x.extended_key_usage().unwrap().is_none());
        assert_eq!(x.subject().to_string(), "CN=Test CA");
    }

    #[test]
    fn server_leaf_names_its_hosts_and_is_signed_by_the_ca() {
        let ca = CertificateAuthority::generate("Test CA", Validity::days_from_now(30)).unwrap();
        let names = SubjectNames::new(
            vec!["broker.example".into()],
            vec!["10.1.2.3".parse().unwrap()],
        )
        .unwrap();
        let leaf = ca.issue_server(&names, Validity::days_from_now(7)).unwrap();
        let x = parse(&leaf.cert_pem);
        assert!(!x.is_ca());
        assert_eq!(x.subject().to_string(), "CN=broker.example");
        assert_eq!(x.issuer().to_string(), "CN=Test CA");
        let sans = &x
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert!(matches!(sans[0], GeneralName::DNSName("broker.example")));
        assert!(matches!(sans[1], GeneralName::IPAddress([10, 1, 2, 3])));
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let ca_x = parse(ca.cert_pem());
        x.verify_signature(Some(ca_x.public_key())).unwrap();
    }

    #[test]
    fn client_leaf_has_client_auth_and_its_name() {
        let ca = CertificateAuthority::generate("Test CA", Validity::days_from_now(30)).unwrap();
        let leaf = ca
            .issue_client("sensor-7", Validity::days_from_now(7))
            .unwrap();
        let x = parse(&leaf.cert_pem);
        assert_eq!(x.subject().to_string(), "CN=sensor-7");
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(matches!(
            ca.issue_client(" ", Validity::days_from_now(1)),
            Err(CertError::EmptyClientName)
        ));
    }

    #[test]
    fn self_signed_server_is_its_own_issuer_but_not_a_ca() {
        let pair =
            self_signed_server(&SubjectNames::localhost(), Validity::days_from_now(1)).unwrap();
        let x = parse(&pair.cert_pem);
        assert_eq!(x.subject(), x.issuer());
        assert!(!x.is_ca());
        x.verify_signature(None).unwrap();
    }

    #[test]
    fn loaded_ca_signs_leaves_that_verify_against_it() {
        let ca = CertificateAuthority::generate("Test CA", Validity::days_from_now(30)).unwrap();
        let paths = PairPaths::in_dir(Path::new("/nonexistent"), "ca");
        let pair = ca.pem_pair();
        let again = CertificateAuthority::from_pem(&pair.cert_pem, &pair.key_pem, &paths).unwrap();
        let leaf = again.issue_client("c", Validity::days_from_now(1)).unwrap();
        let x = parse(&leaf.cert_pem);
        x.verify_signature(Some(parse(ca.cert_pem()).public_key()))
            .unwrap();
        assert_eq!(x.issuer().to_string(), "CN=Test CA");
    }

    #[test]
    fn loading_refuses_a_leaf_or_a_foreign_key() {
        let ca = CertificateAuthority::generate("Test CA", Validity::days_from_now(30)).unwrap();
        let other = CertificateAuthority::generate("Other", Validity::days_from_now(30)).unwrap();
        let paths = PairPaths::in_dir(Path::new("/x"), "ca");
        let leaf = ca.issue_client("c", Validity::days_from_now(1)).unwrap();
        let err =
            CertificateAuthority::from_pem(&leaf.cert_pem, &leaf.key_pem, &paths).unwrap_err();
        assert!(matches!(err, CertError::BadCaCertificate { .. }), "{err}");
        let err = CertificateAuthority::from_pem(ca.cert_pem(), &other.pem_pair().key_pem, &paths)
            .unwrap_err();
        assert!(matches!(err, CertError::KeyMismatch { .. }), "{err}");
        let err = CertificateAuthority::from_pem("junk", "junk", &paths).unwrap_err();
        assert!(matches!(err, CertError::BadCaCertificate { .. }), "{err}");
    }
}
