//! Writing certificate and key files: keys readable by their owner only,
//! existing files never replaced unless asked.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{CertError, PemPair};

/// What to do when a file to be written already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Fail with [`CertError::Exists`] before writing anything.
    Refuse,
    /// Replace it.
    Replace,
}

/// Where a certificate and its key go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairPaths {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

impl PairPaths {
    /// `DIR/STEM.pem` and `DIR/STEM.key`, the names mosquitto's and our
    /// documentation use (`ca.pem`/`ca.key`, `mqtt_server.pem`/`mqtt_server.key`).
    pub fn in_dir(dir: &Path, stem: &str) -> Self {
        Self {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        }
    }
}

/// Writes every pair, creating parent folders. Keys get mode 0600 (also when
/// an existing key file is replaced); certificates are public and get 0644.
///
/// With [`Overwrite::Refuse`], every target is checked first and nothing is
/// written if any exists, so a refused run never leaves a CA paired with a
/// leaf it did not sign.
pub fn write_pairs(pairs: &[(PemPair, PairPaths)], overwrite: Overwrite) -> Result<(), CertError> {
    if overwrite == Overwrite::Refuse {
        for (_, paths) in pairs {
            for path in [&paths.cert, &paths.key] {
                if path.exists() {
                    return Err(CertError::Exists { path: path.clone() });
                }
            }
        }
    }
    for (pair, paths) in pairs {
        write_file(&paths.key, &pair.key_pem, 0o600, overwrite)?;
        write_file(&paths.cert, &pair.cert_pem, 0o644, overwrite)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32, overwrite: Overwrite) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    match overwrite {
        // create_new also closes the window between the check in
        // `write_pairs` and this open.
        Overwrite::Refuse => options.create_new(true),
        Overwrite::Replace => options.create(true).truncate(true),
    };
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            err(source)
        }
    })?;
    // `mode` applies only to files created now; a replaced file keeps its old
    // permissions unless they are set again.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(tag: &str) -> PemPair {
        PemPair {
            cert_pem: format!("cert {tag}"),
            key_pem: format!("key {tag}"),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keys_are_owner_only_and_certs_public() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PairPaths::in_dir(&dir.path().join("sub"), "a");
        write_pairs(&[(pair("1"), paths.clone())], Overwrite::Refuse).unwrap();
        assert_eq!(mode(&paths.key), 0o600);
        assert_eq!(mode(&paths.cert), 0o644);
        assert_eq!(std::fs::read_to_string(&paths.key).unwrap(), "key 1");
    }

    #[test]
    fn refuses_before_writing_anything_when_one_file_exists() {
        let dir = tempfile::tempdir().unwrap();
        let a = PairPaths::in_dir(dir.path(), "a");
        let b = PairPaths::in_dir(dir.path(), "b");
        std::fs::write(&b.key, "old").unwrap();
        let err = write_pairs(
            &[(pair("1"), a.clone()), (pair("2"), b.clone())],
            Overwrite::Refuse,
        )
        .unwrap_err();
        assert!(
            matches!(err, CertError::Exists { ref path } if *path == b.key),
            "{err}"
        );
        assert!(!a.cert.exists() && !a.key.exists());
        assert_eq!(std::fs::read_to_string(&b.key).unwrap(), "old");
    }

    #[test]
    fn replace_overwrites_and_tightens_key_mode() {
        let dir = tempfile::tempdir().unwrap();
        let a = PairPaths::in_dir(dir.path(), "a");
        std::fs::write(&a.key, "old key").unwrap();
        std::fs::set_permissions(&a.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_pairs(&[(pair("new"), a.clone())], Overwrite::Replace).unwrap();
        assert_eq!(std::fs::read_to_string(&a.key).unwrap(), "key new");
        assert_eq!(mode(&a.key), 0o600);
    }
}
