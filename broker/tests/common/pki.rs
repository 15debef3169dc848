//! Certificates for TLS tests: a CA, a server certificate for localhost and
//! a client certificate, written as PEM files.

use std::path::Path;

use credentials::certs::{CertificateAuthority, Overwrite, PairPaths, SubjectNames, Validity};

/// A CA, a server certificate and a client certificate for `client_name`,
/// written into `dir`: (CA, server, client).
pub fn pki(dir: &Path, client_name: &str) -> (PairPaths, PairPaths, PairPaths) {
    let v = Validity::days_from_now(30);
    let ca = CertificateAuthority::generate("test CA", v).unwrap();
    let server = ca.issue_server(&SubjectNames::localhost(), v).unwrap();
    let client = ca.issue_client(client_name, v).unwrap();
    let paths = (
        PairPaths::in_dir(dir, "ca"),
        PairPaths::in_dir(dir, "server"),
        PairPaths::in_dir(dir, "client"),
    );
    credentials::certs::write_pairs(
        &[
            (ca.pem_pair(), paths.0.clone()),
            (server, paths.1.clone()),
            (client, paths.2.clone()),
        ],
        Overwrite::Refuse,
    )
    .unwrap();
    paths
}
