//! Helpers shared by the toolkit's command-line tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use testsupport::{Mosquitto, MosquittoOptions, MosquittoTls};

/// Bound on any single toolkit run; nothing a test does should take longer.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The toolkit binary, with a bounded run time and no inherited log filter.
pub fn toolkit() -> Command {
    let mut cmd = Command::cargo_bin("toolkit").unwrap();
    cmd.timeout(RUN_TIMEOUT).env_remove("RUST_LOG");
    cmd
}

/// `toolkit certs --out DIR ARGS…`, which must succeed.
pub fn make_certs(dir: &Path, args: &[&str]) {
    toolkit()
        .arg("certs")
        .arg("--out")
        .arg(dir)
        .args(args)
        .assert()
        .success();
}

/// `toolkit certs client --name NAME --out DIR`, which must succeed.
pub fn make_client_cert(dir: &Path, name: &str) {
    toolkit()
        .args(["certs", "client", "--name", name, "--out"])
        .arg(dir)
        .assert()
        .success();
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it,
/// made with rcgen (not the toolkit under test), written to `ca.pem`,
/// `server.pem` and `server.key` in `dir`: a mosquitto TLS listener's files.
pub fn write_server_certs(dir: &Path) -> MosquittoTls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let tls = MosquittoTls {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        cafile: dir.join("ca.pem"),
        require_certificate: false,
    };
    std::fs::write(&tls.cert, cert.pem()).unwrap();
    std::fs::write(&tls.key, key.serialize_pem()).unwrap();
    std::fs::write(&tls.cafile, ca.pem()).unwrap();
    tls
}

/// A mosquitto with a TLS listener serving `CERTS/SERVER_STEM.pem` and its
/// key, trusting `CERTS/CAFILE` for client certificates (required or not).
pub fn tls_broker(
    certs: &Path,
    server_stem: &str,
    cafile: &str,
    require_certificate: bool,
) -> Mosquitto {
    Mosquitto::start(MosquittoOptions {
        tls: Some(MosquittoTls {
            cert: certs.join(format!("{server_stem}.pem")),
            key: certs.join(format!("{server_stem}.key")),
            cafile: certs.join(cafile),
            require_certificate,
        }),
        ..MosquittoOptions::default()
    })
}

/// `mosquitto_pub -h 127.0.0.1 -p PORT ARGS…`, run to its end.
pub fn mosquitto_pub(port: u16, args: &[&str]) -> std::process::Output {
    std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap()
}

/// Standard output of a finished command, as text.
pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a finished command, as text.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
