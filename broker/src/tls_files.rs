//! Where the TLS listener's certificate comes from when none is given.
//!
//! The files live in `<data-dir>/tls/` with `--data-dir`, otherwise in
//! `$XDG_DATA_HOME/mqtt-conformance-broker/tls/` (or
//! `~/.local/share/...`), so the certificate a client was told to trust
//! stays the same across restarts. If `server.pem` and `server.key` are
//! there they are used; otherwise a CA and a server certificate signed by
//! it are created there first.

use std::path::{Path, PathBuf};

/// Why the certificate could not be found or created.
#[derive(Debug, thiserror::Error)]
pub enum TlsFilesError {
    /// No directory to keep the certificate in.
    #[error("no --cert given and no place to keep a generated one: set --data-dir (or HOME)")]
    NoDirectory,
    /// Only one of the two files exists.
    #[error(
        "{present} exists but {missing} does not: remove the first to generate a new pair, or give --cert/--key"
    )]
    HalfPair {
        /// The file found.
        present: PathBuf,
        /// The file missing.
        missing: PathBuf,
    },
    /// Generation failed.
    #[error("generating a TLS certificate in {dir}: {message}")]
    Generate {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
}

/// The directory generated certificates go to.
pub fn cert_dir(data_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = data_dir {
        return Some(d.join("tls"));
    }
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".local")
            .join("share"),
    };
    Some(base.join("mqtt-conformance-broker").join("tls"))
}

/// The certificate and key to serve with, creating them if needed.
pub fn ensure(data_dir: Option<&Path>) -> Result<(PathBuf, PathBuf), TlsFilesError> {
    let dir = cert_dir(data_dir).ok_or(TlsFilesError::NoDirectory)?;
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    match (cert.exists(), key.exists()) {
        (true, true) => {
            tracing::info!(cert = %cert.display(), "using the TLS certificate in the data directory");
            Ok((cert, key))
        }
        (true, false) => Err(TlsFilesError::HalfPair {
            present: cert,
            missing: key,
        }),
        (false, true) => Err(TlsFilesError::HalfPair {
            present: key,
            missing: cert,
        }),
        (false, false) => generate(&dir).map(|()| (cert, key)),
    }
}

/// Creates a CA and a server certificate signed by it in `dir`, with
/// `credentials::certs` (the same code as `toolkit certs`), and logs where they
/// are, the names the server certificate holds and its SHA-256 fingerprint,
/// so a client can be pointed at `ca.pem`.
fn generate(dir: &Path) -> Result<(), TlsFilesError> {
    use credentials::certs::{CertificateAuthority, Overwrite, PairPaths, SubjectNames, Validity};
    let err = |message: String| TlsFilesError::Generate {
        dir: dir.to_owned(),
        message,
    };
    let validity = Validity::days_from_now(3650);
    let ca = CertificateAuthority::generate("mqtt-conformance broker local CA", validity)
        .map_err(|e| err(e.to_string()))?;
    let mut names = SubjectNames::localhost();
    if let Some(host) = hostname()
        && let Ok(extra) = SubjectNames::new(vec![host], Vec::new())
    {
        names = names.merged_with(&extra);
    }
    let server = ca
        .issue_server(&names, validity)
        .map_err(|e| err(e.to_string()))?;
    let fingerprint = fingerprint(&server.cert_pem).unwrap_or_else(|| "unknown".to_owned());
    let ca_paths = PairPaths::in_dir(dir, "ca");
    let server_paths = PairPaths::in_dir(dir, "server");
    credentials::certs::write_pairs(
        &[
            (ca.pem_pair(), ca_paths.clone()),
            (server, server_paths.clone()),
        ],
        Overwrite::Refuse,
    )
    .map_err(|e| err(e.to_string()))?;
    let sans: Vec<String> = names
        .hostnames()
        .iter()
        .cloned()
        .chain(names.ips().iter().map(ToString::to_string))
        .collect();
    tracing::info!(
        cert = %server_paths.cert.display(),
        ca = %ca_paths.cert.display(),
        sans = %sans.join(","),
        sha256 = %fingerprint,
        "generated a TLS server certificate signed by a new local CA; clients trust it with --cafile {}",
        ca_paths.cert.display()
    );
    Ok(())
}

/// This machine's host name, if it has a usable one.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_owned())
}

/// The SHA-256 fingerprint of a PEM certificate, as `openssl x509
/// -fingerprint -sha256` prints it (upper-case hex pairs joined by colons).
fn fingerprint(cert_pem: &str) -> Option<String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
    Some(credentials::certs::sha256_fingerprint(der.as_ref()))
}
