//! A real mosquitto broker for tests, started from Debian's package with a
//! config file the test writes.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::port::{free_port, wait_for_port};
use crate::stderr_log::StderrLog;

/// How long a broker gets to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the mosquitto binary is: `$MOSQUITTO`, then `/usr/sbin/mosquitto`,
/// then `mosquitto` on `PATH`.
pub fn mosquitto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return PathBuf::from(p);
    }
    let sbin = Path::new("/usr/sbin/mosquitto");
    if sbin.exists() {
        return sbin.to_path_buf();
    }
    PathBuf::from("mosquitto")
}

/// TLS files for mosquitto's second listener.
#[derive(Debug, Clone)]
pub struct MosquittoTls {
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA used to verify client certificates; required by mosquitto for TLS.
    pub cafile: PathBuf,
    /// Demand a client certificate signed by `cafile`.
    pub require_certificate: bool,
}

/// What the test wants of the broker.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    /// Add a TLS listener next to the plain one.
    pub tls: Option<MosquittoTls>,
    /// A mosquitto password file; anonymous clients are refused when set.
    pub password_file: Option<PathBuf>,
    /// A mosquitto ACL file (see [`write_acl_file`]); topics it does not
    /// grant are denied.
    pub acl_file: Option<PathBuf>,
    /// Lines appended to the config (for example `max_inflight_messages 1`).
    pub extra_config: String,
    /// Keep state in this directory (`persistence true`, saved every second
    /// and at shutdown), so a broker started again on it resumes it.
    pub persistence: Option<PathBuf>,
    /// Listen on this plain port rather than a free one: a restart binds
    /// the port the broker had ([`Mosquitto::port`] of the first start).
    pub port: Option<u16>,
}

impl MosquittoOptions {
    /// The mosquitto.conf these options make, with the plain listener on
    /// `port` and the TLS one (when asked for) on `tls_port`, both on
    /// 127.0.0.1. The reference broker reads the same text (`broker -c`),
    /// so a test can start both brokers from one configuration; it may
    /// pass port 0 there, which the reference broker takes as "any free
    /// port" (mosquitto refuses it).
    pub fn conf(&self, port: u16, tls_port: u16) -> String {
        let mut conf = String::new();
        writeln!(conf, "per_listener_settings false").ok();
        writeln!(conf, "log_dest stderr").ok();
        writeln!(conf, "log_type all").ok();
        match &self.persistence {
            Some(dir) => {
                writeln!(conf, "persistence true").ok();
                // The trailing slash: mosquitto joins the file name to it.
                writeln!(conf, "persistence_location {}/", dir.display()).ok();
                writeln!(conf, "autosave_interval 1").ok();
            }
            None => {
                writeln!(conf, "persistence false").ok();
            }
        }
        conf.push_str(user_line());
        match &self.password_file {
            Some(p) => {
                writeln!(conf, "allow_anonymous false").ok();
                writeln!(conf, "password_file {}", p.display()).ok();
            }
            None => {
                writeln!(conf, "allow_anonymous true").ok();
            }
        }
        if let Some(acl) = &self.acl_file {
            writeln!(conf, "acl_file {}", acl.display()).ok();
        }
        writeln!(conf, "listener {port} 127.0.0.1").ok();
        if let Some(tls) = &self.tls {
            writeln!(conf, "listener {tls_port} 127.0.0.1").ok();
            writeln!(conf, "certfile {}", tls.cert.display()).ok();
            writeln!(conf, "keyfile {}", tls.key.display()).ok();
            writeln!(conf, "cafile {}", tls.cafile.display()).ok();
            writeln!(conf, "require_certificate {}", tls.require_certificate).ok();
        }
        conf.push_str(&self.extra_config);
        conf.push('\n');
        conf
    }
}

/// A running mosquitto, killed when dropped. The config and logs live in a
/// temporary directory that is removed with it.
#[derive(Debug)]
pub struct Mosquitto {
    child: Child,
    port: u16,
    tls_port: Option<u16>,
    log: StderrLog,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts mosquitto with a plain listener (and a TLS one if asked) on
    /// ephemeral loopback ports, and waits until it says it is running.
    ///
    /// Panics with the broker's log if it does not come up: this is test
    /// support, and a broker that cannot start is a failed test.
    pub fn start(options: MosquittoOptions) -> Self {
        // A port picked by `free_port` can be taken by another test between the
        // pick and mosquitto's bind; try a few times before giving up.
        let mut last_log = String::new();
        for _ in 0..5 {
            match Self::try_start(&options) {
                Ok(m) => return m,
                Err(log) => last_log = log,
            }
        }
        panic!("mosquitto did not start:\n{last_log}");
    }

    /// Starts mosquitto on a config the test writes: `conf` gets a free
    /// port for its one listener, which must be on 127.0.0.1. Begin it with
    /// [`user_line`] so that mosquitto started as root can read the test's
    /// files. Panics with the log if it does not come up.
    pub fn start_with_conf(conf: impl Fn(u16) -> String) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Self::try_spawn(&conf(port), port, None) {
                Ok(m) => return m,
                Err(log) => last_log = log,
            }
        }
        panic!("mosquitto did not start:\n{last_log}");
    }

    fn try_start(options: &MosquittoOptions) -> Result<Self, String> {
        let port = options.port.unwrap_or_else(free_port);
        let tls_port = options.tls.as_ref().map(|_| free_port());
        Self::try_spawn(&options.conf(port, tls_port.unwrap_or(0)), port, tls_port)
    }

    /// Writes `conf` and starts mosquitto on it; waits for it to say it
    /// runs and for `port` (and `tls_port`) on 127.0.0.1 to accept.
    fn try_spawn(conf: &str, port: u16, tls_port: Option<u16>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;

        let mut child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", mosquitto_binary().display()))?;

        // Collect the log in the background; tell the waiter when mosquitto
        // reports it is running or its log ends.
        let stderr = child.stderr.take().expect("stderr was piped");
        let (log, ready_rx) =
            StderrLog::follow(stderr, |line| line.contains(" running").then_some(()));

        let started = matches!(ready_rx.recv_timeout(START_TIMEOUT), Ok(Some(())));
        let listening = started
            && wait_for_port(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), START_TIMEOUT)
            && tls_port.is_none_or(|p| {
                wait_for_port(SocketAddr::from((Ipv4Addr::LOCALHOST, p)), START_TIMEOUT)
            });
        if !listening {
            let _ = child.kill();
            let _ = child.wait();
            return Err(log.text());
        }
        Ok(Self {
            child,
            port,
            tls_port,
            log,
            dir,
        })
    }

    /// The plain listener's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS listener's port, when one was asked for.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The TLS listener's port; panics when the broker was started without one.
    pub fn require_tls_port(&self) -> u16 {
        self.tls_port
            .expect("this mosquitto was started without MosquittoOptions::tls")
    }

    /// The plain listener's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The broker's process id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything mosquitto has logged so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Stops mosquitto with SIGTERM, as `systemctl stop` does (it saves its
    /// persistence file first), and waits (at most 15 s) for it to exit.
    /// Returns its log.
    pub fn terminate(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        // Polled: std's Child has no wait with a timeout.
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log.text()
    }

    /// Kills mosquitto with SIGKILL (no save) and waits for it to exit.
    /// Returns its log.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.text()
    }

    /// The temporary directory holding the config; tests may put files there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `user root\n` when the test runs as root, else nothing: started as
/// root, mosquitto drops to the `mosquitto` user and then cannot read the
/// 0600 keys the test wrote, so it stays the test's user.
pub fn user_line() -> &'static str {
    if running_as_root() { "user root\n" } else { "" }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Writes a mosquitto password file holding `user` with `password`, using
/// `mosquitto_passwd` (from the mosquitto package), and returns its path.
pub fn write_password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("passwords");
    let passwd = mosquitto_binary().with_file_name("mosquitto_passwd");
    let program = if passwd.exists() {
        passwd
    } else {
        PathBuf::from("mosquitto_passwd")
    };
    let out = Command::new(&program)
        .arg("-b")
        .arg("-c")
        .arg(&path)
        .arg(user)
        .arg(password)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "mosquitto_passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Writes a mosquitto ACL file with `lines` (for example `topic read a/#`)
/// and returns its path. Lines before any `user` line apply to anonymous
/// clients.
pub fn write_acl_file(dir: &Path, lines: &[&str]) -> PathBuf {
    let path = dir.join("acl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_accepts_connections() {
        let m = Mosquitto::start(MosquittoOptions::default());
        assert!(
            wait_for_port(m.addr(), Duration::from_secs(5)),
            "{}",
            m.log()
        );
        assert!(m.log().contains("running"));
    }
}
