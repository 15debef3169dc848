//! The configuration the suite's fullest runs use, on both brokers: a
//! plain listener, a TLS listener requiring client certificates signed by
//! the test's CA, and a password file written as `toolkit passwd` writes it
//! (mosquitto verifying a hash made by this workspace's code), anonymous
//! clients refused. It is one mosquitto.conf ([`MosquittoOptions::conf`]):
//! mosquitto starts from it in `mosquitto.rs`, the reference broker reads
//! it (`broker -c`) in `full_reference`; only the ports differ.

use std::path::{Path, PathBuf};

use conformance::target::{ClientIdentity, Credentials, Target};
use credentials::password::{DEFAULT_ITERATIONS, SALT_LEN, hash_password};
use testsupport::{MosquittoOptions, MosquittoTls};

use super::TlsFiles;

/// The one user of the password file.
pub const USER: &str = "conformance";

/// A mosquitto password file with one `$7$` entry, written the way
/// `toolkit passwd` writes it (random salt, the broker's hash function).
fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let salt: [u8; SALT_LEN] = rand::random();
    let path = dir.join("passwords");
    let line = format!(
        "{user}:{}\n",
        hash_password(password.as_bytes(), &salt, DEFAULT_ITERATIONS)
    );
    std::fs::write(&path, line).unwrap();
    path
}

/// A password nobody guesses, so the auth scenarios' refusals are real.
fn random_password() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What both brokers are configured with: the TLS files and password file
/// written to `dir`, and the mosquitto.conf settings naming them.
pub struct Everything {
    /// The mosquitto.conf's settings; [`MosquittoOptions::conf`] writes it
    /// with the ports each broker gets.
    pub conf: MosquittoOptions,
    /// Certificates and keys.
    pub files: TlsFiles,
    /// The password of [`USER`].
    pub password: String,
}

/// Writes the TLS files and the password file to `dir`: plain + mutual-TLS
/// listeners, [`USER`] with a random password, anonymous clients refused.
pub fn everything_conf(dir: &Path) -> Everything {
    let files = super::tls_files(dir);
    let password = random_password();
    let passwords = password_file(dir, USER, &password);
    let conf = MosquittoOptions {
        tls: Some(MosquittoTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            cafile: files.ca.clone(),
            require_certificate: true,
        }),
        password_file: Some(passwords),
        ..MosquittoOptions::default()
    };
    Everything {
        conf,
        files,
        password,
    }
}

impl Everything {
    /// A target reaching `plain` and `tls` (ports on 127.0.0.1) with the
    /// client certificate and the credentials.
    pub fn target(&self, plain: u16, tls: u16) -> Target {
        let identity =
            ClientIdentity::load(&self.files.client_cert, &self.files.client_key).unwrap();
        let mut target = Target::plain("127.0.0.1", plain);
        target.tls = Some(
            conformance::target::tls_with_ca("127.0.0.1", tls, &self.files.ca, Some(identity))
                .unwrap(),
        );
        target.credentials = Some(Credentials {
            username: USER.to_owned(),
            password: self.password.clone(),
        });
        target
    }
}
