//! `toolkit pub` and `toolkit sub` against real brokers (Debian's mosquitto
//! and our reference broker, in this process) and real clients
//! (mosquitto_pub and mosquitto_sub): round trips at every QoS, retained
//! messages, the will, every message source, output formats, -C and -W,
//! a clean DISCONNECT on SIGTERM and Ctrl-C, and the documented exit codes.
//!
//! Every wait is bounded: a subscriber is known to be subscribed when it
//! says so (mosquitto_sub -d prints "Subscribed", toolkit sub logs
//! "subscribed" at info level), and output is read line by line with a
//! timeout; nothing sleeps to synchronise.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../conformance/tests/in_process/mod.rs"]
mod in_process;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::{broker_wanting_alice, new_certs, tls_broker, toolkit};
use testsupport::{Mosquitto, MosquittoOptions, ReferenceOptions, free_port};

/// Bound on each wait for a line, a log entry or an exit.
const WAIT: Duration = Duration::from_secs(20);

/// Exit statuses documented in `toolkit pub --help` and `toolkit sub --help`.
const USAGE: i32 = 2;
const CONNECT: i32 = 3;
const CERTIFICATE: i32 = 5;
const REFUSED: i32 = 6;
const TIMEOUT: i32 = 8;

/// A process whose standard output and error are read line by line as they
/// come; killed when dropped.
struct Running {
    name: String,
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Running {
    fn spawn(mut command: Command, stdin: Stdio) -> Self {
        let name = format!("{command:?}");
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Self {
            stdout: follow(child.stdout.take().unwrap()),
            stderr: follow(child.stderr.take().unwrap()),
            name,
            child,
        }
    }

    /// The next line of standard output.
    fn line(&self) -> String {
        self.stdout
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("{}: no output line within {WAIT:?} ({e})", self.name))
    }

    /// The next line of standard output that is a message, not one of
    /// mosquitto_sub -d's debug lines.
    fn message(&self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("Client ") && !line.starts_with("Subscribed") {
                return line;
            }
        }
    }

    /// Waits until a line on `stream` holds `needle`.
    fn await_line(&self, stream: &Receiver<String>, needle: &str) {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match stream.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("{}: no {needle:?} within {WAIT:?}; saw {seen:?}", self.name);
    }

    /// mosquitto_sub -d has its SUBACK.
    fn await_mosquitto_subscribed(&self) {
        self.await_line(&self.stdout, "Subscribed");
    }

    /// toolkit sub (with RUST_LOG=info) has its SUBACK.
    fn await_toolkit_subscribed(&self) {
        self.await_line(&self.stderr, "subscribed");
    }

    /// Sends `signal` (a name `kill` knows: TERM, INT).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Waits for the exit and returns its code and what is left of
    /// standard output and standard error.
    fn exit(mut self) -> (i32, Vec<String>, Vec<String>) {
        let status = wait_exit(&mut self.child, &self.name);
        let stdout = self.stdout.iter().collect();
        let stderr = self.stderr.iter().collect();
        (status.code().unwrap_or(-1), stdout, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most [`WAIT`], polling) for `child` to exit.
fn wait_exit(child: &mut Child, name: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines read from `stream`, as they come, on a thread.
fn follow(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `toolkit sub -p PORT ARGS…`, logging "subscribed" to standard error.
fn toolkit_sub(port: u16, args: &[&str]) -> Running {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("toolkit"));
    command
        .args(["sub", "-p", &port.to_string()])
        .args(args)
        .env("RUST_LOG", "toolkit=info")
        .env("NO_COLOR", "1");
    Running::spawn(command, Stdio::null())
}

/// `mosquitto_sub -d -p PORT ARGS…` (debug lines tell when it has
/// subscribed), its output line-buffered by `stdbuf` (to a pipe, C's stdio
/// would hold the lines back until it exits).
fn mosquitto_sub(port: u16, args: &[&str]) -> Running {
    let mut command = Command::new("stdbuf");
    command
        .args([
            "-oL",
            "mosquitto_sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(args);
    Running::spawn(command, Stdio::null())
}

/// `toolkit pub -p PORT ARGS…`, which must succeed.
fn toolkit_pub(port: u16, args: &[&str]) {
    toolkit()
        .args(["pub", "-p", &port.to_string()])
        .args(args)
        .assert()
        .success();
}

/// `mosquitto_pub -p PORT ARGS…`, which must succeed.
fn mosquitto_pub(port: u16, args: &[&str]) {
    assert_cmd::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .timeout(WAIT)
        .assert()
        .success();
}

/// Round trips through the broker on `port`: toolkit pub to mosquitto_sub
/// and mosquitto_pub to toolkit sub at QoS 0, 1 and 2, and a retained
/// message from toolkit pub reaching a later toolkit sub and mosquitto_sub.
fn round_trips(port: u16) {
    let sub = mosquitto_sub(port, &["-v", "-q", "2", "-t", "rt/from-toolkit", "-C", "3"]);
    sub.await_mosquitto_subscribed();
    for qos in ["0", "1", "2"] {
        toolkit_pub(
            port,
            &[
                "-t",
                "rt/from-toolkit",
                "-q",
                qos,
                "-m",
                &format!("toolkit q{qos}"),
            ],
        );
    }
    for qos in ["0", "1", "2"] {
        assert_eq!(sub.message(), format!("rt/from-toolkit toolkit q{qos}"));
    }
    assert_eq!(sub.exit().0, 0);

    let sub = toolkit_sub(
        port,
        &[
            "-t",
            "rt/to-toolkit",
            "-q",
            "2",
            "-C",
            "3",
            "-F",
            "%q %t %p",
        ],
    );
    sub.await_toolkit_subscribed();
    for qos in ["0", "1", "2"] {
        mosquitto_pub(
            port,
            &[
                "-t",
                "rt/to-toolkit",
                "-q",
                qos,
                "-m",
                &format!("mosquitto q{qos}"),
            ],
        );
    }
    for qos in ["0", "1", "2"] {
        assert_eq!(sub.line(), format!("{qos} rt/to-toolkit mosquitto q{qos}"));
    }
    assert_eq!(sub.exit().0, 0);

    toolkit_pub(port, &["-t", "rt/kept", "-r", "-q", "1", "-m", "kept"]);
    let late = toolkit_sub(port, &["-t", "rt/kept", "-C", "1", "-F", "%r %t %p"]);
    assert_eq!(late.line(), "1 rt/kept kept");
    assert_eq!(late.exit().0, 0);
    let late = mosquitto_sub(port, &["-t", "rt/kept", "-C", "1", "-F", "%r %t %p"]);
    assert_eq!(late.message(), "1 rt/kept kept");
    assert_eq!(late.exit().0, 0);
}

#[test]
fn round_trips_with_mosquitto_clients_through_mosquitto() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    round_trips(broker.port());
}

#[test]
fn round_trips_with_mosquitto_clients_through_the_reference_broker() {
    let broker = in_process::Reference::start(ReferenceOptions::default());
    round_trips(broker.addr().port());
}

/// Polls `broker`'s log (bounded) until it holds `needle`.
fn await_log(broker: &Mosquitto, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while !broker.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in mosquitto's log within {WAIT:?}:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_sub_leaves_its_will_and_a_terminated_one_disconnects() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let port = broker.port();
    let watcher = mosquitto_sub(port, &["-v", "-q", "1", "-t", "will/#"]);
    watcher.await_mosquitto_subscribed();
    let will = [
        "--will-topic",
        "will/killed",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
    ];
    let mut args = vec!["-t", "any", "-i", "killed-sub"];
    args.extend(will);
    let victim = toolkit_sub(port, &args);
    victim.await_toolkit_subscribed();
    drop(victim); // SIGKILL: no DISCONNECT, so the broker publishes the will.
    assert_eq!(watcher.message(), "will/killed gone");
    assert!(!broker.log().contains("Received DISCONNECT from killed-sub"));

    // SIGTERM and Ctrl-C (SIGINT) end sub with a DISCONNECT and status 0:
    // the broker logs the DISCONNECT (and so drops the will).
    for (signal, id) in [("TERM", "termed-sub"), ("INT", "interrupted-sub")] {
        let mut args = vec!["-t", "any", "-i", id, "-q", "1"];
        args.extend(will);
        let sub = toolkit_sub(port, &args);
        sub.await_toolkit_subscribed();
        sub.signal(signal);
        assert_eq!(sub.exit().0, 0, "{signal}");
        await_log(&broker, &format!("Received DISCONNECT from {id}"));
    }
}

#[test]
fn every_message_source_is_sent_as_given() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let port = broker.port();
    // %l:%x: the length and bytes of each payload, whatever they hold.
    let sub = mosquitto_sub(port, &["-t", "src", "-q", "1", "-C", "6", "-F", "%l:%x"]);
    sub.await_mosquitto_subscribed();

    // -l: each line as it comes, on one connection; the last one needs no
    // newline.
    toolkit()
        .args(["pub", "-p", &port.to_string(), "-t", "src", "-q", "1", "-l"])
        .write_stdin("one\ntwo")
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, b"\x00\x01\xff\n").unwrap();
    toolkit_pub(
        port,
        &["-t", "src", "-q", "1", "-f", file.to_str().unwrap()],
    );
    toolkit_pub(port, &["-t", "src", "-q", "1", "-n"]);
    toolkit()
        .args(["pub", "-p", &port.to_string(), "-t", "src", "-q", "1", "-s"])
        .write_stdin("whole\nin")
        .assert()
        .success();
    toolkit_pub(port, &["-t", "src", "-q", "1", "-m", "é"]);
    let lines: Vec<String> = (0..6).map(|_| sub.message()).collect();
    assert_eq!(
        lines,
        [
            "3:6f6e65",
            "3:74776f",
            "4:0001ff0a",
            "0:",
            "8:77686f6c650a696e",
            "2:c3a9"
        ]
    );
    assert_eq!(sub.exit().0, 0);
}

#[test]
fn output_formats_follow_mosquitto_sub() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let port = broker.port();
    mosquitto_pub(
        port,
        &["-t", "fmt/json", "-r", "-q", "1", "-m", r#"{"t":21.5}"#],
    );

    let sub = toolkit_sub(port, &["-t", "fmt/json", "--json", "-C", "1"]);
    let line = sub.line();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["topic"], "fmt/json");
    assert_eq!(
        (v["qos"].as_u64(), v["retain"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(v["payload"], r#"{"t":21.5}"#);
    assert_eq!(v["payloadlen"], 10);
    assert!(v["tst"].as_str().unwrap().contains('T'), "{line}");
    assert_eq!(sub.exit().0, 0);

    let sub = toolkit_sub(port, &["-t", "fmt/json", "-q", "1", "-F", "%J", "-C", "1"]);
    let v: serde_json::Value = serde_json::from_str(&sub.line()).unwrap();
    assert_eq!(v["payload"]["t"], 21.5);
    assert_eq!(sub.exit().0, 0);

    let sub = toolkit_sub(port, &["-t", "fmt/json", "-v", "-C", "1"]);
    assert_eq!(sub.line(), r#"fmt/json {"t":21.5}"#);
    assert_eq!(sub.exit().0, 0);

    // -R leaves the retained message out: -W then ends the run (status 0).
    let out = toolkit()
        .args([
            "sub",
            "-p",
            &port.to_string(),
            "-t",
            "fmt/json",
            "-R",
            "-W",
            "1",
        ])
        .assert()
        .success();
    assert!(out.get_output().stdout.is_empty());

    // --retained-only prints the retained message and ends at the first
    // message that is not retained, without printing it.
    let sub = toolkit_sub(port, &["-t", "fmt/#", "--retained-only", "-v"]);
    sub.await_toolkit_subscribed();
    assert_eq!(sub.line(), r#"fmt/json {"t":21.5}"#);
    mosquitto_pub(port, &["-t", "fmt/live", "-m", "not retained"]);
    let (code, rest, _) = sub.exit();
    assert_eq!((code, rest), (0, Vec::<String>::new()));

    // -N: no newline after the payload.
    let out = toolkit()
        .args([
            "sub",
            "-p",
            &port.to_string(),
            "-t",
            "fmt/json",
            "-N",
            "-C",
            "1",
        ])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, br#"{"t":21.5}"#);
}

#[test]
fn wait_without_the_count_reached_is_a_timeout() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let out = toolkit()
        .args([
            "sub",
            "-p",
            &broker.port().to_string(),
            "-t",
            "silent",
            "-C",
            "1",
            "-W",
            "1",
        ])
        .assert()
        .code(TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr, "error: -W 1: 0 of 1 messages (-C) came in time\n");
}

/// The shared connection flags work for pub and sub: over TLS with the CA
/// `toolkit certs` made, to and from mosquitto's clients on the plain port;
/// an unknown server certificate is refused with probe's status 5.
#[test]
fn pub_and_sub_speak_tls_with_the_shared_flags() {
    let certs = new_certs(&[]);
    let broker = tls_broker(certs.path(), "mqtt_server", "ca.pem", false);
    let tls_port = broker.tls_port().unwrap();
    let cafile = certs.path().join("ca.pem");
    let tls = ["--tls", "--cafile", cafile.to_str().unwrap()];

    let watcher = mosquitto_sub(broker.port(), &["-t", "tls/#", "-v", "-q", "1"]);
    watcher.await_mosquitto_subscribed();
    let mut args = vec!["-t", "tls/in", "-q", "1", "-m", "over tls"];
    args.extend(tls);
    toolkit_pub(tls_port, &args);
    assert_eq!(watcher.message(), "tls/in over tls");

    let mut args = vec!["-t", "tls/out", "-q", "1", "-C", "1"];
    args.extend(tls);
    let sub = toolkit_sub(tls_port, &args);
    sub.await_toolkit_subscribed();
    mosquitto_pub(broker.port(), &["-t", "tls/out", "-q", "1", "-m", "to tls"]);
    assert_eq!(sub.line(), "to tls");
    assert_eq!(sub.exit().0, 0);

    fails(
        &["sub", "-p", &tls_port.to_string(), "--tls", "-t", "t"],
        CERTIFICATE,
        &["certificate"],
    );
}

/// Runs `toolkit ARGS…`, which must exit `code` with one line on standard
/// error holding each of `says`.
fn fails(args: &[&str], code: i32, says: &[&str]) {
    let out = toolkit().args(args).assert().code(code);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    for s in says {
        assert!(stderr.contains(s), "{args:?}: no {s:?} in {stderr}");
    }
}

#[test]
fn failures_are_one_line_with_their_exit_status() {
    let closed = free_port().to_string();
    fails(
        &["pub", "-p", &closed, "-t", "t", "-m", "x"],
        CONNECT,
        &["refused", "--port"],
    );
    fails(&["sub", "-p", &closed, "-t", "t"], CONNECT, &["refused"]);

    let (_dir, broker) = broker_wanting_alice();
    let port = broker.port().to_string();
    fails(
        &["sub", "-p", &port, "-t", "t"],
        REFUSED,
        &["CONNACK 5", "--username"],
    );
    fails(
        &[
            "pub", "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "wrong",
        ],
        REFUSED,
        &["CONNACK"],
    );
    toolkit_pub(
        broker.port(),
        &["-t", "t", "-m", "x", "-u", "alice", "-P", "s3cret"],
    );

    fails(
        &["pub", "-p", &port, "-t", "a/#", "-m", "x"],
        USAGE,
        &["-t \"a/#\"", "wildcard"],
    );
    fails(
        &["sub", "-p", &port, "-t", "a/#/b"],
        USAGE,
        &["-t \"a/#/b\""],
    );
    fails(
        &["pub", "-p", &port, "-t", "t", "-f", "/nonexistent/file"],
        USAGE,
        &["-f /nonexistent/file"],
    );
    fails(&["sub", "-p", &port, "-t", "t", "-c"], USAGE, &["-i"]);
    fails(&["sub", "-p", &port, "-t", "t", "-F", "%z"], USAGE, &["%z"]);
    fails(
        &["sub", "-p", &port, "-t", "t", "--cafile", "ca.pem"],
        USAGE,
        &["add --tls"],
    );
    // clap's own errors: status 2, the first line names the flag.
    for args in [
        &["pub", "-t", "t", "-m", "x", "-q", "3"][..],
        &["pub", "-t", "t"],
        &["sub", "-t", "t", "-C", "0"],
    ] {
        let out = toolkit().args(args).assert().code(USAGE);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

/// A kept session (-c -i) queues QoS 1 messages while the subscriber is
/// away, and a later `sub -c` with the same id gets them.
#[test]
fn a_kept_session_receives_what_came_while_away() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let port = broker.port();
    let first = toolkit_sub(port, &["-t", "away", "-q", "1", "-c", "-i", "keeper"]);
    first.await_toolkit_subscribed();
    first.signal("TERM");
    assert_eq!(first.exit().0, 0);
    toolkit_pub(port, &["-t", "away", "-q", "1", "-m", "while away"]);
    let back = toolkit_sub(
        port,
        &["-t", "away", "-q", "1", "-c", "-i", "keeper", "-C", "1"],
    );
    assert_eq!(back.line(), "while away");
    assert_eq!(back.exit().0, 0);
}

/// A reader that goes away (`toolkit sub | head -1`) ends sub quietly with
/// status 0, as mosquitto_sub ends; before, it printed "error: writing to
/// standard output: Broken pipe" and exited 1.
#[test]
fn a_closed_output_ends_sub_quietly() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    mosquitto_pub(broker.port(), &["-t", "gone/reader", "-r", "-m", "x"]);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("toolkit"))
        .args(["sub", "-p", &broker.port().to_string(), "-t", "gone/reader"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything comes
    let stderr = follow(child.stderr.take().unwrap());
    let status = wait_exit(&mut child, "sub with its reader gone");
    let said: Vec<String> = stderr.iter().collect();
    assert_eq!((status.code(), said), (Some(0), Vec::<String>::new()));
}

/// `sub -C` ends after a QoS 2 message only once its exchange is complete:
/// the broker gets PUBCOMP before DISCONNECT (leaving at once, with the
/// PUBREL unanswered, would leave the broker's side half done).
#[test]
fn sub_completes_a_qos2_exchange_before_disconnecting() {
    let broker = Mosquitto::start(MosquittoOptions::default());
    let port = broker.port();
    let sub = toolkit_sub(port, &["-t", "q2", "-q", "2", "-C", "1", "-i", "q2-sub"]);
    sub.await_toolkit_subscribed();
    mosquitto_pub(port, &["-t", "q2", "-q", "2", "-m", "once"]);
    assert_eq!(sub.line(), "once");
    assert_eq!(sub.exit().0, 0);
    await_log(&broker, "Received DISCONNECT from q2-sub");
    let log = broker.log();
    let pubcomp = log.find("Received PUBCOMP from q2-sub");
    let disconnect = log.find("Received DISCONNECT from q2-sub");
    assert!(
        pubcomp.is_some() && pubcomp < disconnect,
        "PUBCOMP must come before DISCONNECT:\n{log}"
    );
}
