//! The reference broker set up with everything the suite can use, shared by
//! `reference_broker.rs` (which requires it to pass) and `mutants.rs`
//! (which plants one bug at a time in it and requires the suite to fail).
//!
//! Everything: a plain listener, a TLS listener with a server certificate
//! from `credentials::certs` (the code behind `toolkit certs`) that requires
//! client certificates signed by the test's CA (mutual TLS), and a password
//! file written as `toolkit passwd` writes it, with anonymous clients
//! refused, so the auth scenarios run too. The target reaches both
//! listeners with the client certificate and the credentials.
//!
//! The broker reads all that from a mosquitto.conf (`broker -c`), written
//! by `common::everything`: the text `mosquitto.rs` starts mosquitto with
//! for its own run of the suite, ports aside (issue 16: one mosquitto.conf,
//! the suite passing on both brokers).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use conformance::target::Target;
use testsupport::ReferenceOptions;

use crate::common::everything::everything_conf;
use crate::in_process::{InProcessBroker, Reference};

/// The broker with plain + mutual-TLS listeners and a password file, read
/// from the mosquitto.conf of [`everything_conf`] (ports 0: any free ones),
/// and a target reaching both with the client certificate and the
/// credentials. With `mutant` (a name from `broker::mutant::ALL`) the
/// broker runs in this process with that bug planted (a `$BROKER_BIN`
/// binary is built without the `mutants` feature); without, it is
/// [`Reference::start`]'s. Writes the TLS, password and config files to
/// `dir`.
pub fn reference_with_everything(dir: &Path, mutant: Option<&str>) -> (Reference, Target) {
    reference_with(dir, mutant, false)
}

/// [`reference_with_everything`] with two WebSocket listeners added to its
/// mosquitto.conf (`protocol websockets`, one with the TLS listener's
/// certificate for `wss://`); the target reaches the plain listener, as
/// there.
pub fn reference_with_websockets(dir: &Path) -> (Reference, Target) {
    reference_with(dir, None, true)
}

fn reference_with(dir: &Path, mutant: Option<&str>, websockets: bool) -> (Reference, Target) {
    let mut everything = everything_conf(dir);
    if websockets {
        everything.conf.extra_config = format!(
            "listener 0 127.0.0.1\nprotocol websockets\n\
             listener 0 127.0.0.1\nprotocol websockets\ncertfile {}\nkeyfile {}\n",
            everything.files.cert.display(),
            everything.files.key.display()
        );
    }
    let conf = dir.join("mosquitto.conf");
    std::fs::write(&conf, everything.conf.conf(0, 0)).unwrap();
    let options = ReferenceOptions {
        mosquitto_conf: Some(conf),
        ..ReferenceOptions::default()
    };
    let broker = match mutant {
        Some(m) => Reference::InProcess(InProcessBroker::start_mutant(options, Some(m))),
        None => Reference::start(options),
    };
    let target = everything.target(broker.addr().port(), broker.tls_addr().unwrap().port());
    (broker, target)
}
