//! The reference broker (this workspace's `broker` binary) for tests in any
//! crate, started on ephemeral loopback ports.
//!
//! Cross-crate tests cannot use `CARGO_BIN_EXE_broker`, so
//! [`broker_binary`] builds the binary with `cargo build -p broker --bin
//! broker` once per test process (a no-op when it is fresh) and takes its
//! path from cargo's JSON messages; `$BROKER_BIN` overrides that. The broker
//! is started with `--port 0 --tls-port 0 --bind 127.0.0.1` and the test
//! waits for its `broker ready plain=... tls=...` log line, which carries
//! the ports it really bound.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the broker gets to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `broker` binary: `$BROKER_BIN`, else built by cargo for this
/// workspace. Panics with cargo's output if it cannot be built.
pub fn broker_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("BROKER_BIN") {
            return PathBuf::from(p);
        }
        build_broker().unwrap_or_else(|e| panic!("cannot build the broker binary: {e}"))
    })
    .clone()
}

fn build_broker() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("testsupport has no parent directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // Cargo gives a test process the variables of the crate under test
    // (CARGO_MANIFEST_DIR, CARGO_PKG_*...). Some build scripts (ring's)
    // watch them, so passing them on would make this build and a plain
    // `cargo build` rebuild each other's dependencies every time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if is_crate_variable(&name) {
            cmd.env_remove(&*name);
        }
    }
    let out = cmd
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "broker",
            "--bin",
            "broker",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build failed ({})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "broker")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo did not report the broker executable".to_owned())
}

/// Certificate files for the broker's TLS listener, instead of the one it
/// generates on first run.
#[derive(Debug, Clone)]
pub struct ReferenceTls {
    /// Server certificate chain (PEM), `--cert`.
    pub cert: PathBuf,
    /// Its private key (PEM), `--key`.
    pub key: PathBuf,
    /// CA that client certificates are checked against, `--cafile`.
    pub cafile: Option<PathBuf>,
    /// Demand a client certificate signed by `cafile`
    /// (`--require-certificate`, mutual TLS).
    pub require_certificate: bool,
}

/// Whether `name` is one of the variables cargo sets for the crate it runs
/// (tests included), as opposed to the user's settings (CARGO_HOME,
/// CARGO_TARGET_DIR, CARGO_BUILD_*...), which the inner build must keep.
fn is_crate_variable(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_MANIFEST_LINKS"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
            | "CARGO_TARGET_TMPDIR"
            | "CARGO_RUSTC_CURRENT_DIR"
            | "OUT_DIR"
    ) || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

/// How to start the broker.
#[derive(Debug, Clone, Default)]
pub struct ReferenceOptions {
    /// Also listen for TLS (with the certificate it generates in its data
    /// directory unless `tls_files` or `extra_args` give `--cert`/`--key`).
    pub tls: bool,
    /// The TLS listener's certificate and client-certificate settings
    /// (implies `tls`).
    pub tls_files: Option<ReferenceTls>,
    /// A mosquitto password file (`--password-file`); anonymous clients are
    /// refused unless `extra_args` add `--allow-anonymous`.
    pub password_file: Option<PathBuf>,
    /// Persist to this directory (`--data-dir`); without it the broker
    /// keeps nothing, and a generated certificate goes to a temporary home.
    pub data_dir: Option<PathBuf>,
    /// More flags, for example `--max-inflight 1`.
    pub extra_args: Vec<String>,
    /// The binary to run instead of [`broker_binary`] (the broker's own
    /// tests pass `CARGO_BIN_EXE_broker`).
    pub binary: Option<PathBuf>,
}

/// A running reference broker, killed when dropped.
#[derive(Debug)]
pub struct ReferenceBroker {
    child: Option<Child>,
    plain: SocketAddr,
    tls: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
    home: tempfile::TempDir,
    data_dir: Option<PathBuf>,
}

/// Parses `plain=ADDR tls=ADDR` from the ready line.
fn field(line: &str, name: &str) -> Option<SocketAddr> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..]
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

impl ReferenceBroker {
    /// Starts the broker and waits until it logs its bound addresses.
    /// Panics with the broker's log if it does not come up.
    pub fn start(options: ReferenceOptions) -> Self {
        let home = tempfile::tempdir().expect("temporary home");
        let binary = options.binary.clone().unwrap_or_else(broker_binary);
        let mut cmd = Command::new(&binary);
        cmd.args(["--bind", "127.0.0.1", "--port", "0"]);
        if options.tls || options.tls_files.is_some() {
            cmd.args(["--tls-port", "0"]);
        } else {
            cmd.arg("--no-ssl");
        }
        if let Some(t) = &options.tls_files {
            cmd.arg("--cert").arg(&t.cert).arg("--key").arg(&t.key);
            if let Some(ca) = &t.cafile {
                cmd.arg("--cafile").arg(ca);
            }
            if t.require_certificate {
                cmd.arg("--require-certificate");
            }
        }
        if let Some(p) = &options.password_file {
            cmd.arg("--password-file").arg(p);
        }
        if let Some(d) = &options.data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        cmd.args(&options.extra_args)
            .env("XDG_DATA_HOME", home.path())
            .env(
                "RUST_LOG",
                std::env::var("BROKER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));

        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr was piped");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("broker ready") {
                    let _ = ready_tx.send(Some((field(&line, "plain"), field(&line, "tls"))));
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
            let _ = ready_tx.send(None);
        });
        let ready = ready_rx.recv_timeout(START_TIMEOUT).ok().flatten();
        let Some((Some(plain), tls)) = ready else {
            let _ = child.kill();
            let _ = child.wait();
            let text = log.lock().map(|l| l.clone()).unwrap_or_default();
            panic!("the broker did not start:\n{text}");
        };
        Self {
            child: Some(child),
            plain,
            tls,
            log,
            home,
            data_dir: options.data_dir,
        }
    }

    /// The plain listener.
    pub fn addr(&self) -> SocketAddr {
        self.plain
    }

    /// The TLS listener, when started with TLS.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The CA certificate that signed the generated server certificate.
    pub fn ca_file(&self) -> PathBuf {
        match &self.data_dir {
            Some(d) => d.join("tls").join("ca.pem"),
            None => self
                .home
                .path()
                .join("mqtt-conformance-broker")
                .join("tls")
                .join("ca.pem"),
        }
    }

    /// Everything the broker has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits (at most `timeout`) until the log holds `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the broker to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ReferenceBroker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
