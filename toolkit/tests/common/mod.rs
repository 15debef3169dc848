//! Helpers shared by the toolkit's command-line tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

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

/// Standard output of a finished command, as text.
pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a finished command, as text.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
