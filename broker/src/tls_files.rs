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
        (false, false) => Err(TlsFilesError::Generate {
            dir,
            message: "certificate generation is not available yet in this build; give --cert/--key or --no-ssl".to_owned(),
        }),
    }
}
