//! The reference broker set up with everything the suite can use, shared by
//! `reference_broker.rs` (which requires it to pass) and `mutants.rs`
//! (which plants one bug at a time in it and requires the suite to fail).
//!
//! Everything: a plain listener, a TLS listener with a server certificate
//! from `credentials::certs` (the code behind `toolkit certs`) that requires
//! client certificates signed by the test's CA (mutual TLS, as `mosquitto.rs`
//! sets mosquitto up), and a password file written as `toolkit passwd`
//! writes it, with anonymous clients refused, so the auth scenarios run too.
//! The target reaches both listeners with the client certificate and the
//! credentials.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use conformance::target::{ClientIdentity, Credentials, Target};
use credentials::password::{DEFAULT_ITERATIONS, SALT_LEN, hash_password};
use testsupport::{ReferenceOptions, ReferenceTls};

use crate::common;
use crate::in_process::{InProcessBroker, Reference};

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

/// The broker with plain + mutual-TLS listeners and a password file, and a
/// target reaching both with the client certificate and the credentials.
/// With `mutant` (a name from `broker::mutant::ALL`) the broker runs in
/// this process with that bug planted (a `$BROKER_BIN` binary is built
/// without the `mutants` feature); without, it is [`Reference::start`]'s.
/// Writes the TLS and password files to `dir`.
pub fn reference_with_everything(dir: &Path, mutant: Option<&str>) -> (Reference, Target) {
    reference_with(dir, mutant, Vec::new())
}

/// [`reference_with_everything`] with WebSocket listeners too (`ws://` and
/// `wss://`, the latter with the TLS listener's certificate); the target
/// reaches the plain listener, as there.
pub fn reference_with_websockets(dir: &Path) -> (Reference, Target) {
    let args = ["--ws-port", "0", "--wss-port", "0"];
    reference_with(dir, None, args.map(str::to_owned).to_vec())
}

fn reference_with(
    dir: &Path,
    mutant: Option<&str>,
    extra_args: Vec<String>,
) -> (Reference, Target) {
    let files = common::tls_files(dir);
    let password = random_password();
    let passwords = password_file(dir, USER, &password);
    let options = ReferenceOptions {
        tls_files: Some(ReferenceTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            cafile: Some(files.ca.clone()),
            require_certificate: true,
        }),
        password_file: Some(passwords),
        extra_args,
        ..ReferenceOptions::default()
    };
    let broker = match mutant {
        Some(m) => Reference::InProcess(InProcessBroker::start_mutant(options, Some(m))),
        None => Reference::start(options),
    };
    let identity = ClientIdentity::load(&files.client_cert, &files.client_key).unwrap();
    let mut target = Target::plain("127.0.0.1", broker.addr().port());
    target.tls = Some(
        conformance::target::tls_with_ca(
            "127.0.0.1",
            broker.tls_addr().unwrap().port(),
            &files.ca,
            Some(identity),
        )
        .unwrap(),
    );
    target.credentials = Some(Credentials {
        username: USER.to_owned(),
        password,
    });
    (broker, target)
}
