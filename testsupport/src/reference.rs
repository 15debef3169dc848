//! The reference broker (this workspace's `broker` binary) for tests, started
//! on ephemeral loopback ports.
//!
//! Nothing here builds the binary: cargo builds it for the broker crate's own
//! integration tests, which pass `env!("CARGO_BIN_EXE_broker")` to
//! [`ReferenceBroker::start`]. Tests in other crates cannot see that
//! variable; they run the broker library in their own process (the
//! conformance crate's `reference_broker` test does), or run a binary named
//! by `$BROKER_BIN` ([`broker_binary_from_env`]), never a `cargo build`
//! nested inside a test. The broker is started with `--port 0 --tls-port 0
//! --bind 127.0.0.1` and the test waits for its `broker ready plain=...
//! tls=...` log line, which carries the ports it really bound.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::stderr_log::StderrLog;

/// How long the broker gets to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The broker binary named by `$BROKER_BIN`, if set: a way to run a test
/// that otherwise uses the in-process broker against a built binary (a
/// release build, an older version).
pub fn broker_binary_from_env() -> Option<PathBuf> {
    std::env::var_os("BROKER_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
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
    /// The plain port; `None` picks a free one. A test restarting a broker
    /// on the port a run already uses gives it.
    pub port: Option<u16>,
    /// The binary's `RUST_LOG` filter, for a test that waits for a debug
    /// line; `$BROKER_LOG`, or `info`, when `None`.
    pub log_filter: Option<String>,
    /// Leave `--bind 127.0.0.1` out, so the broker binds where it does with
    /// no configuration (a test of that default, or one binding elsewhere
    /// through `extra_args`).
    pub default_bind: bool,
    /// A mosquitto.conf for the broker to read (`-c`), which then decides
    /// the listeners: `port`, `tls`, `tls_files` and `default_bind` give no
    /// flags (they would win over the file). See
    /// [`crate::MosquittoOptions::conf`] for one both brokers can read.
    pub mosquitto_conf: Option<PathBuf>,
}

impl ReferenceOptions {
    /// The broker's command-line flags for these options (without the
    /// program name): loopback only, ephemeral ports. The in-process broker
    /// parses the same flags, so both ways of starting it agree.
    pub fn flags(&self) -> Vec<OsString> {
        let mut flags: Vec<OsString> = Vec::new();
        if let Some(conf) = &self.mosquitto_conf {
            flags.extend(["-c".into(), conf.clone().into()]);
        } else {
            self.listener_flags(&mut flags);
        }
        if let Some(p) = &self.password_file {
            flags.extend(["--password-file".into(), p.clone().into()]);
        }
        if let Some(d) = &self.data_dir {
            flags.extend(["--data-dir".into(), d.clone().into()]);
        }
        flags.extend(self.extra_args.iter().map(OsString::from));
        flags
    }

    /// The flags for the listeners: loopback only, ephemeral ports.
    fn listener_flags(&self, flags: &mut Vec<OsString>) {
        if !self.default_bind {
            flags.extend(["--bind", "127.0.0.1"].map(OsString::from));
        }
        flags.push("--port".into());
        flags.push(self.port.unwrap_or(0).to_string().into());
        if self.tls || self.tls_files.is_some() {
            flags.extend(["--tls-port", "0"].map(OsString::from));
        } else {
            flags.push("--no-ssl".into());
        }
        if let Some(t) = &self.tls_files {
            flags.extend([
                "--cert".into(),
                t.cert.clone().into(),
                "--key".into(),
                t.key.clone().into(),
            ]);
            if let Some(ca) = &t.cafile {
                flags.extend(["--cafile".into(), ca.clone().into()]);
            }
            if t.require_certificate {
                flags.push("--require-certificate".into());
            }
        }
    }
}

/// A running reference broker, killed when dropped.
#[derive(Debug)]
pub struct ReferenceBroker {
    child: Option<Child>,
    plain: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    /// The first WebSocket listener (`--ws-port`), and over TLS.
    ws: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    log: StderrLog,
    home: tempfile::TempDir,
    data_dir: Option<PathBuf>,
}

/// Parses `plain=ADDR tls=ADDR ws=ADDR wss=ADDR` from the ready line.
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
    /// Starts `binary` (the broker's own tests pass
    /// `env!("CARGO_BIN_EXE_broker")`) and waits until it logs its bound
    /// addresses. Panics with the broker's log if it does not come up.
    pub fn start(binary: impl AsRef<Path>, options: ReferenceOptions) -> Self {
        let binary = binary.as_ref();
        let home = tempfile::tempdir().expect("temporary home");
        let mut cmd = Command::new(binary);
        cmd.args(options.flags())
            .env("XDG_DATA_HOME", home.path())
            .env(
                "RUST_LOG",
                options.log_filter.clone().unwrap_or_else(|| {
                    std::env::var("BROKER_LOG").unwrap_or_else(|_| "info".into())
                }),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));

        let stderr = child.stderr.take().expect("stderr was piped");
        let (log, ready_rx) = StderrLog::follow(stderr, |line| {
            line.contains("broker ready").then(|| {
                let ws = (field(line, "ws"), field(line, "wss"));
                (field(line, "plain"), field(line, "tls"), ws)
            })
        });
        let ready = ready_rx.recv_timeout(START_TIMEOUT).ok().flatten();
        // A broker started with `--no-plain` has only the TLS listener.
        let Some((plain, tls, (ws, wss))) =
            ready.filter(|(plain, tls, _)| plain.is_some() || tls.is_some())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the broker did not start:\n{}", log.text());
        };
        Self {
            child: Some(child),
            plain,
            tls,
            ws,
            wss,
            log,
            home,
            data_dir: options.data_dir,
        }
    }

    /// The plain listener. Panics for a broker started with `--no-plain`
    /// (see [`Self::plain_addr`]).
    pub fn addr(&self) -> SocketAddr {
        self.plain
            .expect("the broker has a plain listener (it was started with --no-plain)")
    }

    /// The plain listener, `None` with `--no-plain`.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain
    }

    /// The first MQTT-over-WebSocket listener, when started with
    /// `--ws-port` (in `extra_args`).
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws
    }

    /// The first MQTT-over-WebSocket-over-TLS listener (`--wss-port`).
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss
    }

    /// The TLS listener, when started with TLS.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The broker's process id, while it runs: for a test that inspects
    /// or limits the process (its open descriptors, its memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
        self.log.text()
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
