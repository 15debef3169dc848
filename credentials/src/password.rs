//! mosquitto password files: reading them, checking a password against
//! them, and writing new entries.
//!
//! A password file has one `user:hash` entry per line, exactly as
//! `mosquitto_passwd` writes it, so existing files work unchanged:
//! - `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512, mosquitto 2.x's
//!   format (101 iterations, 12-byte salt, 64-byte hash by default);
//! - `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt,
//!   mosquitto 1.x's format.
//!
//! Salt and hash are standard base64. Blank lines and `#` comments are
//! skipped. [`hash_password`] writes new `$7$` entries (`toolkit passwd`).
//!
//! The broker checks CONNECT credentials against a [`PasswordFile`]; the
//! toolkit writes the files. Both use this one definition of the format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha512};

/// The PBKDF2 iteration count mosquitto_passwd uses.
pub const DEFAULT_ITERATIONS: u32 = 101;
/// The salt length mosquitto_passwd uses, in bytes.
pub const SALT_LEN: usize = 12;

/// Why a password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file cannot be read.
    #[error("reading password file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `user:$7$...` or `user:$6$...`.
    #[error(
        "password file line {line}: {reason} (expected user:$7$iterations$salt$hash as mosquitto_passwd writes)"
    )]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
enum PasswordHash {
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are secrets too: never print them.
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "Pbkdf2Sha512 {{ iterations: {iterations}, .. }}")
            }
            PasswordHash::Sha512 { .. } => f.write_str("Sha512 { .. }"),
        }
    }
}

impl PasswordHash {
    fn parse(text: &str) -> Result<Self, String> {
        let decode = |what: &str, s: &str| {
            BASE64
                .decode(s)
                .map_err(|e| format!("{what} is not valid base64: {e}"))
        };
        let parts: Vec<&str> = text.split('$').collect();
        match parts.as_slice() {
            ["", "7", iterations, salt, hash] => {
                let iterations: u32 =
                    iterations.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("iteration count {iterations:?} is not a positive number")
                    })?;
                Ok(Self::Pbkdf2Sha512 {
                    iterations,
                    salt: decode("salt", salt)?,
                    hash: decode("hash", hash)?,
                })
            }
            ["", "6", salt, hash] => Ok(Self::Sha512 {
                salt: decode("salt", salt)?,
                hash: decode("hash", hash)?,
            }),
            _ => Err("the hash is neither $7$ (PBKDF2-SHA512) nor $6$ (SHA-512)".to_owned()),
        }
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                constant_time_eq(&out, hash)
            }
            PasswordHash::Sha512 { salt, hash } => {
                let mut d = Sha512::new();
                d.update(password);
                d.update(salt);
                constant_time_eq(&d.finalize(), hash)
            }
        }
    }
}

/// Compares without stopping at the first difference, so timing does not
/// reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A parsed mosquitto password file.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    entries: HashMap<String, PasswordHash>,
}

impl PasswordFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the text of a password file.
    pub fn parse(text: &str) -> Result<Self, PasswordFileError> {
        let mut entries = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| PasswordFileError::BadLine {
                line: i + 1,
                reason,
            };
            // User names may not hold ':' (mosquitto_passwd refuses them), so
            // the first ':' ends the name.
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("no ':' between user name and hash".to_owned()))?;
            if user.is_empty() {
                return Err(bad("empty user name".to_owned()));
            }
            let hash = PasswordHash::parse(hash).map_err(bad)?;
            entries.insert(user.to_owned(), hash);
        }
        Ok(Self { entries })
    }

    /// How many users the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no users.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `user` exists and `password` is theirs.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        self.entries.get(user).is_some_and(|h| h.verify(password))
    }
}

/// A `$7$` hash of `password` with `salt`, as mosquitto_passwd writes it
/// (the part after `user:`).
pub fn hash_password(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    format!(
        "$7${iterations}${}${}",
        BASE64.encode(salt),
        BASE64.encode(out)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11).
    const MOSQUITTO_ALICE: &str = "alice:$7$101$bU4GpvqrtTom9o+e$Z7z0sy27bnpqRg8T8VuUMUBkXfQdxTvqXADHhWI8NxftQen5l8Hx3trZaf1IhgDxpmqBheSsq61sI13qdXQD2g==";

    /// `$6$` entry for bob/hunter2 with salt "0123456789ab", computed with
    /// Python's hashlib: base64(sha512(b"hunter2" + salt)).
    const SHA512_BOB: &str = "bob:$6$MDEyMzQ1Njc4OWFi$Kgl3AxuVCetFEGDDZOAh44c3ssh9wvPft10MPC9Tjr1rwsIDmYUEICH/zUOFhM8vCQKmMb8nXrQTl7q2T8alUw==";

    #[test]
    fn mosquitto_pbkdf2_entry_verifies() {
        let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
        assert!(file.verify("alice", b"secret"));
        assert!(!file.verify("alice", b"Secret"));
        assert!(!file.verify("bob", b"secret"));
    }

    #[test]
    fn sha512_entry_verifies() {
        let file = PasswordFile::parse(SHA512_BOB).expect("parses");
        assert!(file.verify("bob", b"hunter2"));
        assert!(!file.verify("bob", b"hunter3"));
    }

    #[test]
    fn hash_password_round_trips() {
        let entry = format!("carol:{}", hash_password(b"pw", b"saltsaltsalt", 101));
        let file = PasswordFile::parse(&entry).expect("parses");
        assert!(file.verify("carol", b"pw"));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = format!("# users\n\n{MOSQUITTO_ALICE}\r\n{SHA512_BOB}\n");
        assert_eq!(PasswordFile::parse(&text).expect("parses").len(), 2);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = PasswordFile::parse(&format!("{MOSQUITTO_ALICE}\nbob:plain")).expect_err("bad");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = PasswordFile::parse("alice:$7$zero$AA==$AA==").expect_err("bad");
        assert!(err.to_string().contains("iteration"), "{err}");
    }
}
