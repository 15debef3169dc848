//! `toolkit fuzz` (issue 17, item 1) against the reference broker: a short
//! run that ends clean, and planted bugs (`broker::mutant`) the fuzzer must
//! find, minimise to a handful of packets, record and replay: a PUBLISH
//! whose topic holds U+FEFF aborts the process (`abort-on-topic`), or makes
//! it stop answering new clients (`stall-after-topic`).
//!
//! The broker runs in a child process, so that an abort takes only it: this
//! test binary started again with [`PORT_ENV`] set, running
//! [`child_broker`] (the broker library, with `$BROKER_MUTANT` planting the
//! bug on every thread). A small script starts it in the background, first
//! killing the one before: the tests run it once themselves and give it to
//! the fuzzer as `--restart-command`, as a user would give
//! `systemctl restart mosquitto`.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::time::Duration;

use testsupport::{Mosquitto, MosquittoOptions, ReferenceOptions, free_port, wait_for_port};

mod common;

use common::{stderr_of, stdout_of, toolkit};

/// Set in the child process: the port its broker binds.
const PORT_ENV: &str = "FUZZ_TEST_BROKER_PORT";

/// U+FEFF, which the fuzzer puts into string fields; no valid session's
/// topic holds it.
const FEFF: &str = "\u{feff}";

/// The broker process of these tests, started again by its restart script;
/// the last one is killed on drop.
struct ChildBroker {
    dir: tempfile::TempDir,
    port: u16,
}

impl ChildBroker {
    /// Writes the restart script for a broker with `mutant` planted (or
    /// none) and runs it once.
    fn start(mutant: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let exe = std::env::current_exe().unwrap();
        let pid = dir.path().join("broker.pid");
        let script = format!(
            "#!/bin/sh\n\
             # Kill the broker before (a hung one too), start a fresh one.\n\
             [ -f '{pid}' ] && kill -9 \"$(cat '{pid}')\" 2>/dev/null\n\
             {PORT_ENV}={port} BROKER_MUTANT='{mutant}' '{exe}' --ignored --exact child_broker \
             --nocapture >/dev/null 2>&1 &\n\
             echo $! > '{pid}'\n",
            pid = pid.display(),
            mutant = mutant.unwrap_or(""),
            exe = exe.display(),
        );
        std::fs::write(dir.path().join("restart.sh"), script).unwrap();
        let broker = Self { dir, port };
        assert!(
            Std::new("sh")
                .arg(broker.script())
                .status()
                .unwrap()
                .success()
        );
        assert!(
            wait_for_port(broker.addr(), Duration::from_secs(20)),
            "the child broker did not come up"
        );
        broker
    }

    fn script(&self) -> PathBuf {
        self.dir.path().join("restart.sh")
    }

    /// `--restart-command` for the fuzzer.
    fn restart_command(&self) -> String {
        format!("sh '{}'", self.script().display())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for ChildBroker {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.path("broker.pid")) {
            let _ = Std::new("kill").args(["-9", pid.trim()]).status();
        }
    }
}

/// Not a test: the body of the child broker process (see the module
/// docs), run only with [`PORT_ENV`] set; ignored so a plain `cargo test`
/// never runs it.
#[test]
#[ignore = "the broker process the fuzz tests start; runs only as their child"]
fn child_broker() {
    let port: u16 = std::env::var(PORT_ENV)
        .expect("child_broker runs only as the fuzz tests' child process")
        .parse()
        .unwrap();
    let options = ReferenceOptions {
        port: Some(port),
        ..ReferenceOptions::default()
    };
    let args: Vec<OsString> = std::iter::once("broker".into())
        .chain(options.flags())
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // The broker before may still hold the port for a moment.
        for _ in 0..100 {
            let config = broker::config::Config::from_args(args.clone()).unwrap();
            if let Ok(b) = broker::server::Broker::bind(config).await {
                let _ = b.run(tokio_util::sync::CancellationToken::new()).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot bind port {port}");
    });
}

fn fuzz(broker: &ChildBroker) -> assert_cmd::Command {
    let mut c = toolkit();
    c.args(["fuzz", "-p", &broker.port.to_string()]);
    c
}

fn record(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// All the bytes of the recorded sessions, and the number of steps.
fn recorded_bytes(record: &serde_json::Value) -> (Vec<u8>, usize) {
    let mut bytes = Vec::new();
    let mut steps = 0;
    for session in record["sessions"].as_array().unwrap() {
        for step in session["steps"].as_array().unwrap() {
            steps += 1;
            let hex = step["hex"].as_str().unwrap();
            for i in (0..hex.len()).step_by(2) {
                bytes.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
            }
        }
    }
    (bytes, steps)
}

#[test]
fn a_short_run_against_the_reference_broker_ends_clean() {
    let broker = ChildBroker::start(None);
    let out = fuzz(&broker)
        .args(["--seed", "7", "--sessions", "160", "--connections", "8"])
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("fuzz: seed 7 (rerun with --seed 7)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("fuzz summary (seed 7): 160 sessions, "),
        "{stdout}"
    );
    // One check per batch of 8, each passed.
    assert!(stdout.contains("liveness checks passed: 20"), "{stdout}");
    assert!(stdout.contains("closed by the broker"), "{stdout}");
    assert!(stdout.contains("CONNACK"), "{stdout}");
    // Quiet when not on a terminal: no progress line.
    assert!(!stderr.contains("packets/s"), "{stderr}");
}

/// Runs the fuzzer against `broker` until it fails, then checks the record:
/// minimised to a handful of packets, holding U+FEFF, written to `file`.
fn found_and_minimised(broker: &ChildBroker, file: &Path, kind: &str, code: i32, extra: &[&str]) {
    let out = fuzz(broker)
        .args(["--seed", "11", "--duration", "40s", "--restart-wait", "15s"])
        .arg("--restart-command")
        .arg(broker.restart_command())
        .arg("--out")
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("the broker failed ({kind})")),
        "{stderr}"
    );
    assert!(stderr.contains("fuzz: minimised: 1 session(s)"), "{stderr}");
    assert!(stdout.contains("fuzz summary (seed 11)"), "{stdout}");
    let r = record(file);
    assert_eq!(r["format"], "toolkit-fuzz 1");
    assert_eq!(
        (r["seed"].as_u64(), r["failure"].as_str()),
        (Some(11), Some(kind))
    );
    assert_eq!(r["minimised"], true);
    assert_eq!(r["sessions"].as_array().unwrap().len(), 1);
    let (bytes, steps) = recorded_bytes(&r);
    // CONNECT and the PUBLISH are all it takes.
    assert!((1..=3).contains(&steps), "{steps} steps: {r}");
    assert!(
        bytes.windows(3).any(|w| w == FEFF.as_bytes()),
        "the culprit holds U+FEFF: {r}"
    );
}

#[test]
fn a_planted_crash_is_found_minimised_and_replayed() {
    let mutant = format!("abort-on-topic={FEFF}");
    let broker = ChildBroker::start(Some(&mutant));
    let kept = tempfile::tempdir().unwrap();
    let file = kept.path().join("crash.json");
    found_and_minimised(&broker, &file, "crash", 13, &[]);
    drop(broker);

    // The file brings down a fresh mutant broker...
    let fresh = ChildBroker::start(Some(&mutant));
    let out = fuzz(&fresh).arg("--replay").arg(&file).output().unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(13), "{stdout}\n{stderr}");
    assert!(stdout.contains("replaying "), "{stdout}");
    assert!(stdout.contains("the broker failed: "), "{stdout}");
    assert!(
        stderr.contains("error: the replay made the broker crash again"),
        "{stderr}"
    );

    // ...and not a good one.
    let good = ChildBroker::start(None);
    let out = fuzz(&good).arg("--replay").arg(&file).output().unwrap();
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("the broker passed the liveness check afterwards"),
        "{stdout}"
    );
}

#[test]
fn a_planted_hang_is_found_and_minimised() {
    let broker = ChildBroker::start(Some(&format!("stall-after-topic={FEFF}")));
    let file = broker.path("hang.json");
    found_and_minimised(&broker, &file, "hang", 14, &["--deadline", "1s"]);
}

/// The TLS listener of mosquitto: sessions go over TLS, and so does the
/// liveness check (the plain listener is not what is fuzzed).
#[test]
fn a_short_run_over_tls_against_mosquitto_ends_clean() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::write_server_certs(dir.path());
    let cafile = tls.cafile.clone();
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(tls),
        ..MosquittoOptions::default()
    });
    let out = toolkit()
        .args(["fuzz", "--tls", "--cafile"])
        .arg(&cafile)
        .args(["-p", &m.require_tls_port().to_string()])
        .args(["--seed", "3", "--sessions", "48", "--connections", "8"])
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("liveness checks passed: 6"), "{stdout}");
    assert!(stdout.contains("CONNACK"), "{stdout}");
    // mosquitto logs each connection's port: the fuzzed ones came to TLS.
    let on_tls = format!("on port {}.", m.require_tls_port());
    assert!(m.log().matches(&on_tls).count() > 48, "{}", m.log());
}
