//! Issue 13, item 8: `toolkit conformance --target NAME=HOST:PORT` against
//! two mosquittos configured differently (one with `upgrade_outgoing_qos`
//! and `allow_zero_length_clientid false`), so that some cells of the
//! scenario x broker table differ and others do not.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use testsupport::{Mosquitto, MosquittoOptions};

mod common;

use common::{stderr_of, stdout_of, toolkit};

/// Three scenarios the upgraded mosquitto answers differently, and one
/// (`connect.accepted`) both pass.
const ONLY: &str =
    "qos.no-upgrade,qos.delivered-at-granted-qos,connect.empty-client-id-assigned,connect.accepted";

fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/mosquitto-2.0.toml")
}

/// A stock mosquitto, and one that upgrades deliveries to the granted QoS
/// [MQTT-3.8.4-6] and refuses empty client ids.
fn two_mosquittos() -> (Mosquitto, Mosquitto) {
    let plain = Mosquitto::start(MosquittoOptions::default());
    let upgraded = Mosquitto::start(MosquittoOptions {
        extra_config: "upgrade_outgoing_qos true\nallow_zero_length_clientid false\n".into(),
        ..MosquittoOptions::default()
    });
    (plain, upgraded)
}

fn target(name: &str, m: &Mosquitto) -> String {
    format!("{name}=127.0.0.1:{}", m.port())
}

#[test]
fn the_table_shows_where_the_brokers_differ_and_the_first_decides_the_status() {
    let (plain, upgraded) = two_mosquittos();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("d.json");
    let out = toolkit()
        .args(["conformance", "--only", ONLY, "--baseline"])
        .arg(baseline())
        .args(["--target", &target("stock", &plain)])
        .args(["--target", &target("upgraded", &upgraded)])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    // The stock mosquitto, the broker under test, passes: exit 0 although
    // the reference fails two MUST scenarios.
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr_of(&out));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("scenario "))
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["scenario", "stock", "upgraded"],
            vec!["connect.empty-client-id-assigned", "pass", "n/a"],
            vec!["qos.delivered-at-granted-qos", "pass", "FAIL"],
            vec!["qos.no-upgrade", "pass", "FAIL"],
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "3 of 4 scenarios differ between the brokers (--verbose shows every scenario)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("upgraded: 1 passed, 2 failed (MUST), 0 observations, 1 not applicable"),
        "{stdout}"
    );

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["status"], "pass");
    assert_eq!(doc["brokers"], serde_json::json!(["stock", "upgraded"]));
    assert_eq!(
        (doc["scenarios"].as_u64(), doc["differing"].as_u64()),
        (Some(4), Some(3))
    );
    let no_upgrade = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scenario"] == "qos.no-upgrade")
        .unwrap();
    assert_eq!(no_upgrade["cells"], serde_json::json!(["pass", "FAIL"]));
    // Each target's whole report; the baseline judges the first only.
    let upgraded_report = &doc["targets"][1]["report"];
    assert_eq!(doc["targets"][1]["name"], "upgraded");
    assert_eq!(upgraded_report["status"], "fail");
    assert_eq!(upgraded_report["results"].as_array().unwrap().len(), 4);
    assert_eq!(upgraded_report["broker_target"]["port"], upgraded.port());
}

#[test]
fn verbose_shows_every_row_and_a_failing_first_target_exits_1() {
    let (plain, upgraded) = two_mosquittos();
    let out = toolkit()
        .args(["conformance", "--only", ONLY, "--verbose"])
        .args(["--target", &target("upgraded", &upgraded)])
        .args(["--target", &target("stock", &plain)])
        .output()
        .unwrap();
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("2 MUST scenario(s) failed"),
        "{}",
        stderr_of(&out)
    );
    let accepted: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("connect.accepted "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(accepted, ["connect.accepted", "pass", "pass"], "{stdout}");
    assert!(
        stdout.contains("3 of 4 scenarios differ between the brokers\n"),
        "{stdout}"
    );
}

#[test]
fn bad_targets_exit_2_saying_what_is_wrong() {
    for (args, says) in [
        (vec!["--target", "no-equals"], "expected NAME=HOST:PORT"),
        (vec!["--target", "a b=h:1"], "is not a target name"),
        (vec!["--target", "a=::1:1883"], "in brackets"),
        (
            vec!["--target", "a=h:1", "--target", "a=h:2"],
            "the name is given twice",
        ),
        (
            vec!["--target", "a=h:1", "-p", "1883"],
            "cannot be used with",
        ),
        (vec!["--verbose"], "--target"),
    ] {
        toolkit()
            .arg("conformance")
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
}
