//! `toolkit conformance` as a CI gate (issue 12): machine reports beside the
//! text one, selection by glob, `--list`, `--fail-on-skip`, `--time-scale`,
//! and baselines recorded from a run, shipped by name and validated whole.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use predicates::prelude::*;
use testsupport::{Mosquitto, MosquittoOptions, free_port};

mod common;

use common::{PING_SCENARIO, conformance, refused, toolkit};

/// `toolkit conformance --list --format json ARGS…` (no broker): the ids
/// listed.
fn listed(args: &[&str]) -> Vec<String> {
    let run = conformance(free_port())
        .args(["--list", "--format", "json"])
        .args(args)
        .assert()
        .code(0);
    let json: serde_json::Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn stdout_of(run: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&run.get_output().stdout).into_owned()
}

fn stderr_of(run: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&run.get_output().stderr).into_owned()
}

#[test]
fn list_shows_id_area_level_statements_and_needs_without_a_broker() {
    let run = conformance(free_port()).arg("--list").assert().code(0);
    let text = stdout_of(&run);
    let line = text
        .lines()
        .find(|l| l.starts_with("tls.client-cert-accepted "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" tls ") && line.contains("client-cert"),
        "{line}"
    );
    assert!(
        predicate::str::is_match(r"\n\d+ scenarios \(suite [0-9a-f]{16}\)\n$")
            .unwrap()
            .eval(&text),
        "{text}"
    );

    let run = conformance(free_port())
        .args(["--list", "--format", "json"])
        .assert()
        .code(0);
    let json: serde_json::Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let all = json["scenarios"].as_array().unwrap();
    let s = all
        .iter()
        .find(|s| s["id"] == "keepalive.timeout-closes")
        .unwrap();
    assert_eq!(s["area"], "keepalive");
    assert_eq!(s["level"], "must");
    assert_eq!(s["statements"][0], "MQTT-3.1.2-24");
    assert_eq!(s["needs"], serde_json::json!([]));
    let auth = all.iter().find(|s| s["id"] == "auth.accepted").unwrap();
    assert_eq!(auth["needs"], serde_json::json!(["auth"]));
    assert!(json["suite_version"].as_str().unwrap().len() == 16);
}

#[test]
fn only_and_skip_take_globs_over_ids_areas_and_statements() {
    // By statement id.
    assert!(listed(&["--only", "MQTT-3.1.2-24"]).contains(&"keepalive.timeout-closes".to_owned()));
    // By area (a tag of the same name matches too, so the area's ids are
    // all there, with other areas' scenarios tagged keepalive).
    let by_area = listed(&["--only", "keepalive"]);
    let ids = listed(&["--only", "keepalive.*"]);
    assert!(ids.len() > 1 && ids.iter().all(|n| n.starts_with("keepalive.")));
    assert!(ids.iter().all(|n| by_area.contains(n)), "{by_area:?}");
    // A glob over ids taken out.
    let fewer = listed(&["--only", "keepalive.*", "--skip", "*.timeout-*"]);
    let timeouts = ids.iter().filter(|n| n.contains(".timeout-")).count();
    assert!(timeouts >= 1);
    assert_eq!(fewer.len(), ids.len() - timeouts);
    assert!(!fewer.contains(&"keepalive.timeout-closes".to_owned()));
    // Repeated and comma-separated patterns add up.
    let both = listed(&[
        "--only",
        "malformed.pingreq-flags,malformed.puback-flags",
        "--only",
        "connect.accepted",
    ]);
    assert_eq!(both.len(), 3, "{both:?}");
    // A pattern that matches nothing is a typo: exit 2, named.
    refused(
        &["--list", "--only", "conect.*"],
        &["--only/--skip conect.* matches no scenario"],
    );
}

#[test]
fn scenarios_dir_adds_to_the_builtin_suite_and_no_builtin_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.toml"), PING_SCENARIO).unwrap();
    let d = dir.path().to_str().unwrap();
    let added = listed(&["--scenarios", d]);
    assert!(
        added.contains(&"mine.ping".to_owned()) && added.contains(&"connect.accepted".to_owned())
    );
    assert_eq!(
        listed(&["--scenarios", d, "--no-builtin"]),
        vec!["mine.ping"]
    );
    // A user scenario reusing a built-in name is refused.
    let clash = tempfile::tempdir().unwrap();
    std::fs::write(
        clash.path().join("c.toml"),
        PING_SCENARIO.replace("mine.ping", "connect.accepted"),
    )
    .unwrap();
    refused(
        &["--list", "--scenarios", clash.path().to_str().unwrap()],
        &["scenario name \"connect.accepted\" is already used"],
    );
}

#[test]
fn junit_and_json_files_are_written_with_the_text_report_on_stdout() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (junit, json) = (
        dir.path().join("report.xml"),
        dir.path().join("report.json"),
    );
    let run = conformance(m.port())
        .args([
            "--only",
            "ping,malformed.pingreq-flags",
            "--baseline",
            "mosquitto-2.0",
        ])
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .assert()
        .code(0);
    let text = stdout_of(&run);
    assert!(
        text.contains("MQTT 3.1.1 conformance against") && text.contains("PASS:"),
        "{text}"
    );
    assert!(text.contains("Known deviations (baseline) (1)"), "{text}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = testsupport::check_junit(&xml).unwrap_or_else(|p| panic!("{p:#?}\n{xml}"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(cases.len(), results.len());
    for r in results {
        let c = cases.iter().find(|c| c.name == r["name"]).unwrap();
        assert!(c.classname.is_some() && c.time.is_some(), "{c:?}");
    }
    let pingreq = results
        .iter()
        .find(|r| r["name"] == "malformed.pingreq-flags")
        .unwrap();
    assert_eq!(pingreq["outcome"], "known-deviation");
    assert!(results.iter().any(|r| r["outcome"] == "passed"));
    assert_eq!(report["status"], "pass");
    assert_eq!(report["broker_target"]["port"], m.port());
    // The toolkit as `toolkit --version` names it, git revision included.
    let version_line = testsupport::expected_version_line(
        "toolkit",
        env!("CARGO_PKG_VERSION"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(
        format!("toolkit {}\n", report["tool_version"].as_str().unwrap()),
        version_line
    );
    assert!(report["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(report["duration_ms"].is_u64());
}

#[test]
fn fail_on_skip_exits_11_when_scenarios_were_skipped() {
    let m = Mosquitto::start(MosquittoOptions::default());
    // The auth scenarios need credentials this run does not have.
    conformance(m.port())
        .args(["--only", "auth.accepted,connect.accepted"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS:"));
    conformance(m.port())
        .args(["--only", "auth.accepted,connect.accepted", "--fail-on-skip"])
        .assert()
        .code(11)
        .stderr(predicate::str::contains(
            "1 scenario(s) skipped with --fail-on-skip: auth.accepted",
        ));
}

/// A scenario waiting 100 ms for a PINGRESP it never asked for.
const SILENT: &str = include_str!("scenarios/silent.toml");

#[test]
fn time_scale_stretches_waits_and_the_report_says_so() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("silent.toml"), SILENT).unwrap();
    let run = |scale: &str| {
        let run = conformance(m.port())
            .arg("--scenarios")
            .arg(dir.path())
            .args(["--no-builtin", "--time-scale", scale])
            .assert()
            .code(1);
        stdout_of(&run)
    };
    let plain = run("1");
    assert!(
        plain.contains("within 100ms") && !plain.contains("time scale"),
        "{plain}"
    );
    let stretched = run("3");
    assert!(stretched.contains("within 300ms"), "{stretched}");
    assert!(
        stretched.contains("time scale: every wait for the broker stretched x3 (--time-scale)"),
        "{stretched}"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn recorded_baseline_passes_then_missing_stale_and_flaky_entries() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.toml");
    let only = ["--only", "malformed.*,connect.accepted"];
    // A run of those scenarios with `baseline`.
    let with_baseline = |baseline: &Path| {
        let mut c = conformance(m.port());
        c.args(only).arg("--baseline").arg(baseline);
        c
    };

    // Record: exit 0 whatever failed, every failure in the file.
    let run = conformance(m.port())
        .args(only)
        .arg("--write-baseline")
        .arg(&file)
        .assert()
        .code(0);
    assert!(
        stderr_of(&run).contains("wrote 2 deviation(s)"),
        "{}",
        stderr_of(&run)
    );
    let recorded = std::fs::read_to_string(&file).unwrap();
    for needle in [
        "scenario = \"malformed.pingreq-flags\"",
        "scenario = \"malformed.puback-flags\"",
        "statements = [\"MQTT-2.2.2-2\"]",
        "reason = \"observed: expected the server closes the connection",
        "date = \"20",
    ] {
        assert!(recorded.contains(needle), "no {needle} in:\n{recorded}");
    }

    // A run with the recorded file passes.
    with_baseline(&file)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS:"));

    // One entry removed: exit 1, naming that scenario.
    let edited = dir.path().join("edited.toml");
    let baseline: toml::Table = toml::from_str(&recorded).unwrap();
    let mut without = baseline.clone();
    without["deviation"]
        .as_array_mut()
        .unwrap()
        .retain(|d| d["scenario"].as_str() != Some("malformed.pingreq-flags"));
    write(&edited, &toml::to_string(&without).unwrap());
    with_baseline(&edited)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "1 MUST scenario(s) failed outside the baseline: malformed.pingreq-flags",
        ));

    // An entry for a scenario that passes: stale, exit 10.
    let passing = "\n[[deviation]]\nscenario = \"connect.accepted\"\nstatements = [\"MQTT-3.1.4-4\"]\nreason = \"timing\"\n";
    write(&edited, &format!("{recorded}{passing}"));
    with_baseline(&edited)
        .assert()
        .code(10)
        .stderr(predicate::str::contains(
            "baseline is stale: connect.accepted",
        ));

    // The same entry marked flaky: never stale.
    write(&edited, &format!("{recorded}{passing}flaky = true\n"));
    with_baseline(&edited)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("PASS:"));

    // Recording again with that baseline keeps the flaky entry as it is.
    let again = dir.path().join("again.toml");
    with_baseline(&edited)
        .arg("--write-baseline")
        .arg(&again)
        .assert()
        .code(0);
    let again: toml::Table = toml::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    let kept = again["deviation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["scenario"].as_str() == Some("connect.accepted"))
        .unwrap_or_else(|| panic!("no connect.accepted entry in:\n{again}"));
    assert_eq!(
        kept.get("flaky"),
        Some(&toml::Value::Boolean(true)),
        "{kept}"
    );
}

#[test]
fn a_bad_baseline_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    write(
        &bad,
        "[[deviation]]\nscenario = \"connect.nope\"\nstatements = [\"MQTT-3.1.4-4\"]\nreason = \"r\"\n\n[[deviation]]\nscenario = \"connect.accepted\"\nstatements = [\"MQTT-0.0-0\"]\n",
    );
    refused(
        &["--baseline", bad.to_str().unwrap()],
        &[
            "line 1: scenario \"connect.nope\" is not in the suite",
            "line 6: entry for \"connect.accepted\": unknown statement id \"MQTT-0.0-0\"",
            "line 6: entry for \"connect.accepted\" needs a `reason`",
        ],
    );
    refused(&["--baseline", "mosquitto-9"], &["shipped: mosquitto-2.0"]);
}

#[test]
fn help_documents_every_exit_status() {
    let run = toolkit().args(["conformance", "--help"]).assert().code(0);
    let help = stdout_of(&run);
    for code in [
        "0 passed",
        "1 a MUST",
        "2 bad flag",
        "3-9 the preflight failed",
        "4 TLS handshake",
        "5 certificate",
        "6 credentials refused",
        "9 closed",
        "10 stale",
        "11 scenarios",
    ] {
        assert!(help.contains(code), "no {code:?} in:\n{help}");
    }
}

/// Issue 12, "Done when": the whole built-in suite against a mosquitto
/// started here, with mosquitto's shipped baseline by name, passes and
/// writes a JUnit file the schema check accepts, one case per scenario.
#[test]
fn whole_suite_against_mosquitto_passes_with_the_shipped_baseline_and_valid_junit() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let run = toolkit()
        .args(["conformance", "--host", "127.0.0.1", "--port"])
        .arg(m.port().to_string())
        .args(["--baseline", "mosquitto-2.0", "--junit"])
        .arg(&junit)
        .assert();
    let text = stdout_of(&run);
    run.code(0);
    let summary = text
        .lines()
        .find(|l| l.starts_with("PASS: "))
        .unwrap_or_else(|| panic!("{text}"));
    let total: usize = summary[6..].split(' ').next().unwrap().parse().unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = testsupport::check_junit(&xml).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(cases.len(), total);
    assert!(cases.iter().all(|c| c.status.as_deref() != Some("failure")));
}

#[test]
fn report_paths_are_checked_before_the_run() {
    for (args, says) in [
        (
            &["--junit", "/nonexistent/dir/r.xml"][..],
            "--junit /nonexistent/dir/r.xml: directory /nonexistent/dir does not exist",
        ),
        (
            &["--json", "/nonexistent/dir/r.json"][..],
            "--json /nonexistent/dir/r.json: directory /nonexistent/dir does not exist",
        ),
        (
            &["--write-baseline", "/nonexistent/dir/b.toml"][..],
            "--write-baseline /nonexistent/dir/b.toml: directory",
        ),
        (
            &["--output", "r.txt"][..],
            "--output needs --format json or junit",
        ),
    ] {
        refused(args, &[says]);
    }
}
