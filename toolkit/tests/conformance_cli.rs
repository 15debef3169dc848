//! `toolkit conformance` as a user runs it: flags, reports and exit codes
//! (0 pass, 1 failures, 2 bad input, 3 unreachable, 10 stale baseline).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use testsupport::{Mosquitto, MosquittoOptions, free_port};

mod common;

use common::{PING_SCENARIO, conformance, new_certs, refused};

/// Runs `cmd` (with `--format json`), which must exit 0, and returns the
/// report it printed.
fn json_report(cmd: &mut Command) -> serde_json::Value {
    let run = cmd.assert().code(0);
    serde_json::from_slice(&run.get_output().stdout).unwrap()
}

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/mosquitto-2.0.toml")
}

#[test]
fn coverage_prints_every_statement_and_totals_without_a_broker() {
    conformance(free_port())
        .arg("--coverage")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("MQTT-3.1.2-24"))
        .stdout(predicate::str::contains("not testable"))
        .stdout(
            predicate::str::is_match(r"146 statements: \d+ covered, \d+ not testable, 0 missing")
                .unwrap(),
        );
}

#[test]
fn unreachable_broker_exits_3() {
    conformance(free_port())
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error: connection to 127.0.0.1:"))
        .stderr(predicate::str::contains("refused"));
}

#[test]
fn unknown_tag_exits_2_naming_the_known_ones() {
    refused(
        &["--tags", "qos1,retaned"],
        &["unknown tag \"retaned\"", "retained"],
    );
}

#[test]
fn unknown_scenario_exits_2() {
    refused(
        &["--scenario", "connect.nope"],
        &["no scenario named connect.nope"],
    );
}

#[test]
fn tls_port_needs_a_trust_choice() {
    refused(&["--tls-port", "8883"], &["--cafile FILE"]);
}

#[test]
fn bad_script_directory_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[scenario]]\nname = \"mine.one\"\ndescription = \"d\"\nstatements = [\"MQTT-3.1.4-4\"]\ntags = [\"connect\"]\nsteps = [\n  { connect = \"a\", conack = 0 },\n]\n",
    )
    .unwrap();
    refused(
        &["--scenarios", dir.path().to_str().unwrap()],
        &["mine.toml:7: in `connect` step: unknown field `conack`"],
    );
}

#[test]
fn missing_baseline_file_exits_2() {
    refused(
        &["--baseline", "/nonexistent/baseline.toml"],
        &["reading baseline /nonexistent/baseline.toml"],
    );
}

#[test]
fn flag_parse_errors_exit_2() {
    refused(&["--jobs", "0"], &[]);
    refused(&["--format", "xml"], &[]);
    refused(&["--username", "u"], &[]);
}

#[test]
fn runs_against_mosquitto_with_exit_codes_and_formats() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let port = m.port();

    // Passing scenarios with the baseline: exit 0, text report on stdout.
    conformance(port)
        .args(["--tags", "connect", "--baseline"])
        .arg(baseline())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS:"))
        .stderr(predicate::str::contains("pass     connect.accepted"));

    // A known mosquitto deviation without the baseline: exit 1, with the
    // failure's statement, expected and observed in the report.
    conformance(port)
        .args(["--scenario", "malformed.pingreq-flags"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("MQTT-2.2.2-2"))
        .stdout(predicate::str::contains(
            "expected: the server closes the connection",
        ))
        .stdout(predicate::str::contains("observed: PINGRESP"))
        .stderr(predicate::str::contains(
            "1 MUST scenario(s) failed outside the baseline: malformed.pingreq-flags",
        ));

    // A baseline entry that passes: exit 10.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.toml");
    std::fs::write(
        &stale,
        "[[deviation]]\nscenario = \"connect.accepted\"\nstatements = [\"MQTT-3.1.4-4\"]\nreason = \"not really\"\n",
    )
    .unwrap();
    conformance(port)
        .args(["--scenario", "connect.accepted", "--baseline"])
        .arg(&stale)
        .assert()
        .code(10)
        .stdout(predicate::str::contains("STALE BASELINE"))
        .stderr(predicate::str::contains(
            "baseline is stale: connect.accepted",
        ));

    // JSON to stdout and JUnit to a file.
    let json =
        json_report(conformance(port).args(["--scenario", "connect.accepted", "--format", "json"]));
    assert_eq!(json["status"], "pass");
    assert_eq!(json["results"][0]["verdict"], "pass");
    let junit = dir.path().join("report.xml");
    conformance(port)
        .args([
            "--tags", "ping", "--jobs", "2", "--format", "junit", "--output",
        ])
        .arg(&junit)
        .arg("--baseline")
        .arg(baseline())
        .assert()
        .code(0)
        // The old spelling writes the JUnit file and, since issue 12, keeps
        // the text report on standard output for the CI log.
        .stdout(predicate::str::contains("PASS:"));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites") && xml.contains("keepalive.pingresp"),
        "{xml}"
    );
}

#[test]
fn user_scenarios_with_an_exclusive_one_run_it_last() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.toml"),
        r##"
[[scenario]]
name = "mine.whole-broker"
description = "Sees every topic."
statements = ["MQTT-4.7.1-2"]
tags = ["wildcard"]
exclusive = true
steps = [
  { connect = "a", connack = 0 },
  { subscribe = "a", filter = "#", qos = 0, require = [0] },
  { publish = "a", topic = "{t}/x", payload = "mine" },
  { expect = "a", packet = "publish", topic = "{t}/x", payload = "mine" },
]
"##,
    )
    .unwrap();
    // And one that runs with the others.
    std::fs::write(dir.path().join("ping.toml"), PING_SCENARIO).unwrap();
    // `--scenarios` adds to the built-in suite (issue 12); only these two.
    let out = conformance(m.port())
        .arg("--scenarios")
        .arg(dir.path())
        .arg("--no-builtin")
        .assert()
        .code(0)
        .get_output()
        .stderr
        .clone();
    let progress = String::from_utf8(out).unwrap();
    let ordinary = progress.find("mine.ping").unwrap();
    let exclusive = progress.find("mine.whole-broker").unwrap();
    assert!(
        ordinary < exclusive,
        "exclusive scenario did not run last:\n{progress}"
    );
}

#[test]
fn tls_scenarios_run_with_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(common::write_server_certs(dir.path())),
        ..MosquittoOptions::default()
    });
    let json = json_report(
        conformance(m.port())
            .args(["--tags", "tls", "--insecure", "--tls-port"])
            .arg(m.tls_port().unwrap().to_string())
            .args(["--format", "json"]),
    );
    // Every TLS scenario ran, except the mutual-TLS ones (no --cert here).
    let results = json["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["verdict"] == "pass"));
    for r in results {
        if r["verdict"] == "skipped" {
            assert!(
                r["reason"].as_str().unwrap().contains("--cert"),
                "{} skipped: {}",
                r["name"],
                r["reason"]
            );
        }
    }
}

#[test]
fn mutual_tls_with_cert_and_key_from_toolkit_certs() {
    let dir = new_certs(&[]);
    common::make_client_cert(dir.path(), "harness");
    let file = |n: &str| dir.path().join(n);
    let m = common::tls_broker(dir.path(), "mqtt_server", "ca.pem", true);
    let tls_port = m.tls_port().unwrap().to_string();
    let json = json_report(
        conformance(m.port())
            .args(["--tags", "tls", "--format", "json", "--tls-port", &tls_port])
            .arg("--cafile")
            .arg(file("ca.pem"))
            .arg("--cert")
            .arg(file("harness.pem"))
            .arg("--key")
            .arg(file("harness.key")),
    );
    let results = json["results"].as_array().unwrap();
    for name in [
        "tls.client-cert-required",
        "tls.client-cert-accepted",
        "cross.client-cert-both-ways",
    ] {
        let r = results.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(r["verdict"], "pass", "{name}: {r}");
    }
    assert!(results.iter().all(|r| r["verdict"] == "pass"), "{json:#}");

    // A key file that holds no key is bad input, named.
    conformance(m.port())
        .args(["--tls-port", &tls_port, "--cafile"])
        .arg(file("ca.pem"))
        .arg("--cert")
        .arg(file("harness.pem"))
        .arg("--key")
        .arg(file("ca.pem"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--key"))
        .stderr(predicate::str::contains("ca.pem holds no PEM private key"))
        .stderr(predicate::str::contains("no PRIVATE KEY block"));
}

#[test]
fn progress_bar_on_a_terminal_renders_and_clears_before_the_report() {
    // `script` (util-linux) runs the toolkit on a pseudo-terminal, so stderr
    // is a terminal and the progress bar is drawn instead of plain lines.
    let m = Mosquitto::start(MosquittoOptions::default());
    let command = format!(
        "{} conformance --port {} --tags ping --baseline {}",
        env!("CARGO_BIN_EXE_toolkit"),
        m.port(),
        baseline().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let tty = String::from_utf8_lossy(&out);
    let report = tty
        .find("MQTT 3.1.1 conformance against")
        .unwrap_or_else(|| panic!("no report in:\n{tty:?}"));
    let (during, after) = tty.split_at(report);
    let total = after
        .lines()
        .find_map(|l| l.strip_prefix("PASS: "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no summary line in:\n{after}"));
    // Frames of the bar: "<bar> k/N <elapsed> <scenario>", redrawn in place.
    assert!(
        during.contains(&format!("/{total} ")) && during.contains('\u{2588}'),
        "no progress bar was drawn:\n{during:?}"
    );
    assert!(
        !during.contains("pass     "),
        "plain progress lines on a terminal:\n{during:?}"
    );
    // The bar is cleared (carriage return, erase line) before the report.
    assert!(
        during.ends_with("\r\u{1b}[2K"),
        "the bar was not cleared before the report:\n{during:?}"
    );
    assert!(
        !after.contains('\u{2588}') && !after.contains("\u{1b}[2K"),
        "the bar was drawn over the report:\n{after:?}"
    );
}

#[test]
fn transport_ws_runs_the_suite_over_websocket() {
    // mosquitto behind a real WebSocket server (Debian's mosquitto has no
    // WebSocket listener): the preflight, the scenarios and the report all
    // go through ws:// on the path given.
    let m = Mosquitto::start(MosquittoOptions::default());
    let options = testsupport::GatewayOptions {
        path: "/ws".to_owned(),
        ..testsupport::GatewayOptions::default()
    };
    let gateway = testsupport::WebSocketGateway::start(m.addr(), options);
    let json = json_report(
        conformance(gateway.port())
            .args(["--transport", "ws", "--ws-path", "/ws", "--tags", "connect"])
            .arg("--baseline")
            .arg(baseline())
            .args(["--format", "json"]),
    );
    let url = format!("ws://127.0.0.1:{}/ws", gateway.port());
    assert_eq!(json["broker_target"]["websocket"], url.as_str());
    assert!(json["target"].as_str().unwrap().contains(&url), "{json}");
    let results = json["results"].as_array().unwrap();
    assert!(results.iter().filter(|r| r["verdict"] == "pass").count() > 5);
}

#[test]
fn second_host_adds_the_cross_node_scenarios_on_two_bridged_mosquittos() {
    let pair = testsupport::BridgedMosquittos::start();
    let json = json_report(
        conformance(pair.first.port())
            .args(["--only", "cross-node", "--second-host", "127.0.0.1"])
            .args(["--second-port", &pair.second.port().to_string()])
            .args(["--second-bridged", "--format", "json"]),
    );
    let results = json["results"].as_array().unwrap();
    assert!(results.len() >= 10, "{json}");
    for r in results {
        let name = r["name"].as_str().unwrap();
        match name {
            // What a bridge cannot promise: observations, not failures.
            "cross-node.takeover" | "cross-node.session-resumed" => {
                assert_eq!(r["verdict"], "fail", "{name}");
                assert_eq!(r["level"], "should", "{name}");
            }
            _ => assert_eq!(r["verdict"], "pass", "{name}: {r}"),
        }
    }
    assert_eq!(json["broker_target"]["bridged"], true);
    assert_eq!(
        json["broker_target"]["second_node"],
        format!("127.0.0.1:{}", pair.second.port()).as_str()
    );
}

#[test]
fn cross_node_flags_are_checked() {
    // Without --second-host the cross-node area does not exist.
    refused(&["--only", "cross-node"], &["matches no scenario"]);
    refused(&["--second-port", "1"], &["--second-host"]);
    refused(&["--second-bridged"], &["--second-host"]);
    // A second node nobody listens on stops the run with probe's status.
    let m = Mosquitto::start(MosquittoOptions::default());
    conformance(m.port())
        .args(["--second-host", "127.0.0.1", "--second-port"])
        .arg(free_port().to_string())
        .assert()
        .code(3)
        .stderr(predicate::str::contains("second node (--second-host)"));
}
