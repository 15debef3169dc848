//! Issue 13, item 1, as a user sees it: a broker that stops answering in
//! one scenario (mosquitto behind `toolkit proxy --pause-broker` on that
//! scenario's first PUBLISH, which stops the broker side of every
//! connection, new ones too, for an hour) ends the run within seconds with
//! exit status 12, naming that scenario, the rest not run.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use testsupport::{Mosquitto, MosquittoOptions};

mod common;

use common::{ProxyProcess, conformance, stderr_of, stdout_of};

/// Publishes on `{t}/x`; no other scenario's topic holds this text.
const CULPRIT: &str = "qos.qos1-delivery";

/// `toolkit proxy` in front of `m` that hangs the broker for an hour at the
/// culprit's first PUBLISH.
fn hanging_proxy(m: &Mosquitto) -> ProxyProcess {
    let pause = format!("publish:topic=mqc/+/{CULPRIT}/#,to-broker,nth=1,global,for=1h");
    ProxyProcess::start(&["-p", &m.port().to_string(), "--pause-broker", &pause])
}

#[test]
fn a_broker_that_stops_answering_exits_12_naming_the_scenario() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let mut proxy = hanging_proxy(&m);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let started = Instant::now();
    let out = conformance(proxy.addr.port())
        .args(["--only", "qos", "--jobs", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let took = started.elapsed();
    let (stdout, stderr) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(12), "{stdout}\n{stderr}");
    assert!(
        proxy
            .wait_for(" to-broker pause broker side 1h (rule 1, match 1): PUBLISH(")
            .is_some(),
        "{:?}",
        proxy.log()
    );
    // One probe timeout (5 s) after the scenario, not twenty scenarios' worth.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        stderr.contains(&format!(
            "error: the broker became unavailable (likely cause: {CULPRIT}); "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("stopping the run"), "{stderr}");
    assert!(stdout.contains("BROKER BECAME UNAVAILABLE"), "{stdout}");
    assert!(stdout.contains("\nBROKER UNAVAILABLE: "), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["status"], "broker_unavailable");
    assert_eq!(report["summary"]["outages"][0]["suspects"][0], CULPRIT);
    let not_run = report["summary"]["not_run"].as_array().unwrap();
    assert!(not_run.len() > 10, "{not_run:?}");
}

#[test]
fn continue_after_crash_gives_up_after_crash_wait_and_exits_12() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let proxy = hanging_proxy(&m);
    let out = conformance(proxy.addr.port())
        .args(["--only", "qos", "--jobs", "1"])
        .args(["--continue-after-crash", "--crash-wait", "1"])
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(12), "{stderr}");
    assert!(
        stderr.contains("waiting up to 1s for it to answer again (--continue-after-crash)"),
        "{stderr}"
    );
    assert!(stderr.contains("not run"), "{stderr}");
}
