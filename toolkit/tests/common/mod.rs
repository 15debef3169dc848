//! Helpers shared by the toolkit's command-line tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use testsupport::{Mosquitto, MosquittoOptions, MosquittoTls, free_port, write_password_file};

/// Bound on any single toolkit run; nothing a test does should take longer.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The toolkit binary, with a bounded run time and no inherited log filter.
pub fn toolkit() -> Command {
    let mut cmd = Command::cargo_bin("toolkit").unwrap();
    cmd.timeout(RUN_TIMEOUT).env_remove("RUST_LOG");
    cmd
}

/// `toolkit conformance --port PORT`, more flags to follow.
pub fn conformance(port: u16) -> Command {
    let mut c = toolkit();
    c.args(["conformance", "--port", &port.to_string()]);
    c
}

/// `toolkit conformance --port PORT ARGS…`, no broker listening on that
/// port, must exit 2 (bad input), its standard error holding each of `says`;
/// returns that standard error.
pub fn refused(args: &[&str], says: &[&str]) -> String {
    let run = conformance(free_port()).args(args).assert().code(2);
    let stderr = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    for s in says {
        assert!(stderr.contains(s), "{args:?}: no {s:?} in {stderr}");
    }
    stderr
}

/// A user scenario file: `mine.ping`, in which a PINGREQ gets a PINGRESP.
pub const PING_SCENARIO: &str = include_str!("../scenarios/ping.toml");

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

/// A new temporary folder holding what `toolkit certs --out DIR ARGS…`
/// wrote there.
pub fn new_certs(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), args);
    dir
}

/// A mosquitto that wants user `alice` with password `s3cret`, and the
/// folder holding its password file, to keep while it runs.
pub fn broker_wanting_alice() -> (tempfile::TempDir, Mosquitto) {
    let dir = tempfile::tempdir().unwrap();
    let passwords = write_password_file(dir.path(), "alice", "s3cret");
    let broker = Mosquitto::start(MosquittoOptions {
        password_file: Some(passwords),
        ..MosquittoOptions::default()
    });
    (dir, broker)
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

/// A `toolkit proxy` child process, killed when dropped.
pub struct ProxyProcess {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Lines before this one were looked at by `wait_for`.
    cursor: usize,
}

impl ProxyProcess {
    /// Starts `toolkit proxy --listen 127.0.0.1:0 ARGS` and waits for its
    /// banner.
    pub fn start(args: &[&str]) -> Self {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("toolkit"))
            .args(["proxy", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut proxy = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            seen: Vec::new(),
            cursor: 0,
        };
        let banner = proxy
            .wait_for("proxy listening on ")
            .expect("toolkit proxy printed its banner");
        let addr = banner
            .trim_start_matches("proxy listening on ")
            .split(' ')
            .next()
            .unwrap();
        proxy.addr = addr.parse().unwrap();
        proxy
    }

    /// The first line holding `needle` after the one the last call
    /// returned, waiting at most [`RUN_TIMEOUT`] for it to be printed.
    pub fn wait_for(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(at) = self.seen[self.cursor..]
                .iter()
                .position(|l| l.contains(needle))
            {
                self.cursor += at + 1;
                return Some(self.seen[self.cursor - 1].clone());
            }
            self.cursor = self.seen.len();
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line);
        }
    }

    /// Every line printed so far.
    pub fn log(&mut self) -> &[String] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
