//! The connection flags `probe`, `conformance` and `bench` share, spelled as
//! mosquitto_pub/sub spell them (issue 12): `-h` is the host everywhere and
//! never prints help (`toolkit conformance -h broker` used to print help and
//! exit 0, so a CI step passed without testing anything), help is `--help`
//! only, and `-u` takes its password from `-P` or `MQTT_PASSWORD`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{broker_wanting_alice, stderr_of, stdout_of, toolkit};
use testsupport::{Mosquitto, MosquittoOptions};

/// `toolkit SUBCOMMAND… -h 127.0.0.1 -p PORT` for `broker`, more flags to
/// follow.
fn dash_h(subcommand: &[&str], broker: &Mosquitto) -> assert_cmd::Command {
    let mut c = toolkit();
    c.args(subcommand)
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()]);
    c
}

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/mosquitto-2.0.toml")
}

#[test]
fn conformance_dash_h_runs_the_whole_suite_against_mosquitto() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let out = dash_h(&["conformance"], &m)
        .arg("--baseline")
        .arg(baseline())
        .output()
        .unwrap();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Usage:"), "printed help:\n{stdout}");
    assert!(
        stdout.contains("MQTT 3.1.1 conformance against 127.0.0.1:"),
        "{stdout}"
    );
    // Scenarios ran: the summary counts passes, and each was announced.
    let summary = stdout.lines().find(|l| l.starts_with("PASS: ")).unwrap();
    let passed: u32 = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" passed"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed > 100, "{summary}");
    assert!(stderr.contains("pass     connect.accepted"), "{stderr}");
}

#[test]
fn probe_dash_h_probes() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let out = dash_h(&["probe"], &m)
        .args(["-i", "probe-dash-i", "--qos", "1"])
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains("passed: connect, subscribe"), "{stdout}");
    assert!(stdout.contains("client id probe-dash-i"), "{stdout}");
}

#[test]
fn bench_dash_h_benches() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let out = dash_h(&["bench", "pairs"], &m)
        .args(["-c", "1", "-n", "20", "-i", "dash-i", "--json", "--quiet"])
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["delivery"]["totals"]["delivered"], 20, "{report:#}");
    assert!(m.log().contains("dash-i-"), "-i is the client id prefix");
}

#[test]
fn dash_h_never_prints_help_and_double_dash_help_does() {
    for sub in [
        &[][..],
        &["probe"],
        &["conformance"],
        &["bench"],
        &["bench", "fan-in"],
        &["certs"],
        &["passwd"],
    ] {
        // `-h` without its value is a usage error (exit 2), not help (exit 0).
        let out = toolkit().args(sub).arg("-h").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{sub:?} -h");
        assert!(
            !stdout_of(&out).contains("Usage:"),
            "{sub:?} -h printed help"
        );

        let out = toolkit().args(sub).arg("--help").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub:?} --help");
        let help = stdout_of(&out);
        assert!(help.contains("Usage:") && help.contains("--help"), "{help}");
    }
}

#[test]
fn help_shows_one_spelling_of_the_connection_flags() {
    for sub in [&["probe"][..], &["conformance"], &["bench", "pairs"]] {
        let out = toolkit().args(sub).arg("--help").output().unwrap();
        // Words as one line: clap wraps long help at its own width.
        let help = stdout_of(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for flag in [
            "-h, --host <HOST>",
            "-p, --port <PORT>",
            "-u, --username <USER>",
            "-P, --password <PASSWORD>",
            "-i, --client-id <ID>",
            "--cafile <FILE>",
            "--cert <FILE>",
            "--key <FILE>",
            "--insecure",
            "--tls",
            "--tls-port <PORT>",
            "MQTT_PASSWORD",
            "[default: 127.0.0.1]",
        ] {
            assert!(help.contains(flag), "{sub:?}: no {flag:?} in\n{help}");
        }
        assert!(!help.contains("-H"), "the old -H stays hidden:\n{help}");
    }
}

#[test]
fn the_password_comes_from_mqtt_password_in_all_three() {
    let (_passwords, m) = broker_wanting_alice();
    let port = m.port().to_string();
    let baseline = baseline().display().to_string();
    let runs: [&[&str]; 3] = [
        &["probe", "-p", &port, "-u", "alice", "--qos", "0"],
        &[
            "conformance",
            "-p",
            &port,
            "-u",
            "alice",
            "--tags",
            "ping",
            "--baseline",
            &baseline,
        ],
        &[
            "bench", "pairs", "-p", &port, "-u", "alice", "-c", "1", "-n", "5", "--quiet",
        ],
    ];
    for args in runs {
        let out = toolkit()
            .args(args)
            .env("MQTT_PASSWORD", "s3cret")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\n{}\n{}",
            stdout_of(&out),
            stderr_of(&out)
        );
        // And a wrong one is refused: the variable is really what is sent.
        let out = toolkit()
            .args(args)
            .env("MQTT_PASSWORD", "wrong")
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{args:?} with a wrong password");
    }
}
