//! Snapshots of the text, JUnit and JSON reports for a fixed set of
//! scenarios run against mosquitto: one pass, one known deviation
//! (baselined), one failure outside the baseline, one stale baseline entry,
//! one skip, and one scenario mosquitto makes not applicable (it refuses an
//! optional CONNECT). Times, which vary run to run, are redacted; the run
//! nonce is fixed.

#![allow(clippy::unwrap_used)]

mod common;

use conformance::baseline::{Baseline, Evaluation, Status};
use conformance::suite::{RunOptions, Suite};
use conformance::target::Target;
use testsupport::{Mosquitto, MosquittoOptions};

const BASELINE: &str = r#"
broker = "mosquitto 2.0.11 (snapshot)"

[[deviation]]
scenario = "malformed.pingreq-flags"
statements = ["MQTT-2.2.2-2"]
reason = "mosquitto 2.0 answers a PINGREQ with bad flags instead of closing."

[[deviation]]
scenario = "connect.accepted"
statements = ["MQTT-3.1.4-4"]
reason = "a deliberately stale entry: this scenario passes."
"#;

fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut l = line.to_owned();
        // "  123ms" columns and "at 45ms" times.
        let mut result = String::new();
        let bytes: Vec<char> = l.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == '.') {
                    i += 1;
                }
                let rest: String = bytes[i..].iter().take(2).collect();
                let prev_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
                if prev_ok && rest.starts_with("ms") {
                    result.push_str("[ms]");
                    i += 2;
                    continue;
                }
                if prev_ok
                    && rest.starts_with('s')
                    && !rest[1..].starts_with(|c: char| c.is_alphanumeric())
                {
                    result.push_str("[s]");
                    i += 1;
                    continue;
                }
                result.extend(&bytes[start..i]);
                continue;
            }
            result.push(bytes[i]);
            i += 1;
        }
        l = result;
        // JUnit time attributes.
        for attr in [" time=\"", " timestamp=\""] {
            if let Some(start) = l.find(attr)
                && let Some(len) = l[start + attr.len()..].find('"')
            {
                l.replace_range(start + attr.len()..start + attr.len() + len, "[redacted]");
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A scenario for an optional feature mosquitto does not have (protocol
/// level 6): its refusal makes the scenario not applicable, not failed.
const EXTRA: &str = r#"
[[scenario]]
name = "extra.optional-level-6"
description = "An optional CONNECT the broker may refuse."
statements = ["MQTT-3.1.2-2"]
tags = ["connect"]
level = "may"
steps = [
  { connect = "a", protocol_level = 6, connack = 0, refusal_not_applicable = true },
  { disconnect = "a" },
]
"#;

/// Replaces every time field of the JSON report (`duration_ms`, transcript
/// `at`) with a marker, so the snapshot holds only what is reproducible.
fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "duration_ms" || k == "at" {
                    *val = serde_json::Value::String("[ms]".into());
                } else {
                    redact_json(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[test]
fn text_junit_and_json_reports() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let names: Vec<String> = [
        "connect.accepted",
        "malformed.pingreq-flags",
        "malformed.puback-flags",
        "auth.accepted",
        "extra.optional-level-6",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let files = conformance::builtin::SCENARIO_FILES
        .iter()
        .map(|(name, text)| (format!("fixtures/scenarios/{name}"), (*text).to_owned()))
        .chain([("extra.toml".to_owned(), EXTRA.to_owned())]);
    let whole = Suite::from_files(files, &conformance::spec::statement_ids()).unwrap();
    let baseline = Baseline::parse("snapshot-baseline.toml", BASELINE, &whole).unwrap();
    let suite = whole.clone().filter(&[], &names);
    let target = Target::plain("127.0.0.1", m.port());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut report = rt.block_on(conformance::suite::run(
        &suite,
        &target,
        &RunOptions {
            jobs: 1,
            run_id: Some("snap".to_owned()),
            ..RunOptions::default()
        },
        |_| {},
    ));
    // The suite's version is a real hash of the built-in files plus EXTRA.
    assert_eq!(report.suite_version, suite.version());
    assert_eq!(report.suite_version.len(), 16);
    assert!(
        time::OffsetDateTime::parse(
            &report.started_at,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "start time {:?} is not RFC 3339",
        report.started_at
    );
    assert_eq!(report.tool_version, env!("CARGO_PKG_VERSION"));
    // The port, start time and versions differ run to run or release to
    // release.
    report.target = "127.0.0.1:PORT".to_owned();
    report.broker_target.port = 0;
    report.started_at = "START".to_owned();
    report.suite_version = "SUITE".to_owned();
    report.tool_version = "VERSION".to_owned();
    let eval = Evaluation::of(&report, &baseline);
    assert_eq!(eval.status(), Status::Fail);
    assert_eq!(eval.failures, vec!["malformed.puback-flags"]);
    assert_eq!(eval.known, vec!["malformed.pingreq-flags"]);
    assert_eq!(eval.stale, vec!["connect.accepted"]);
    assert_eq!(eval.skipped, vec!["auth.accepted"]);
    assert_eq!(eval.not_applicable, vec!["extra.optional-level-6"]);
    insta::assert_snapshot!(
        "text_report",
        redact(&conformance::report::text(&report, &eval, &baseline))
    );
    let junit = conformance::report::junit(&report, &baseline);
    // The Jenkins/Surefire schema's structure, one case per scenario.
    let cases = testsupport::check_junit(&junit).unwrap_or_else(|p| panic!("{p:#?}\n{junit}"));
    assert_eq!(cases.len(), 5);
    for c in &cases {
        assert!(c.classname.is_some() && c.time.is_some(), "{c:?}");
    }
    insta::assert_snapshot!("junit_report", redact(&junit));
    let mut json: serde_json::Value =
        serde_json::from_str(&conformance::report::json(&report, &eval, &baseline)).unwrap();
    assert_eq!(json["status"], "fail");
    assert_eq!(json["results"].as_array().unwrap().len(), 5);
    // One unambiguous outcome per scenario.
    let outcomes: Vec<(&str, &str)> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("auth.accepted", "skipped"),
            ("connect.accepted", "passed"),
            ("malformed.pingreq-flags", "known-deviation"),
            ("malformed.puback-flags", "failed"),
            ("extra.optional-level-6", "not-applicable"),
        ]
    );
    assert_eq!(json["results"][1]["stale_baseline"], true);
    for key in ["tool_version", "suite_version", "started_at", "duration_ms"] {
        assert!(!json[key].is_null(), "no {key} in the JSON report");
    }
    assert_eq!(json["broker_target"]["host"], "127.0.0.1");
    assert_eq!(json["time_scale"], 1.0);
    redact_json(&mut json);

    // The stale entry marked flaky: a pass is neither stale nor a failure,
    // in the evaluation, the JSON outcome and the JUnit file.
    let flaky = Baseline::parse(
        "flaky.toml",
        &BASELINE.replace(
            "reason = \"a deliberately stale entry: this scenario passes.\"",
            "reason = \"timing\"\nflaky = true",
        ),
        &whole,
    )
    .unwrap();
    assert!(flaky.deviations["connect.accepted"].flaky);
    let flaky_eval = Evaluation::of(&report, &flaky);
    assert!(flaky_eval.stale.is_empty());
    assert_eq!(
        flaky_eval.outcome("connect.accepted"),
        conformance::baseline::Outcome::Passed
    );
    let flaky_junit = conformance::report::junit(&report, &flaky);
    let case = testsupport::check_junit(&flaky_junit)
        .unwrap()
        .into_iter()
        .find(|c| c.name == "connect.accepted")
        .unwrap();
    assert_eq!(case.status, None, "{flaky_junit}");
    // A flaky entry that failed, as expected, says so in the text report.
    let text = conformance::report::text(&report, &flaky_eval, &flaky);
    assert!(!text.contains("flaky:"), "{text}");
    let failing_flaky = Baseline::parse(
        "flaky.toml",
        &BASELINE.replace(
            "instead of closing.\"",
            "instead of closing.\"\nflaky = true",
        ),
        &whole,
    )
    .unwrap();
    let eval = Evaluation::of(&report, &failing_flaky);
    let text = conformance::report::text(&report, &eval, &failing_flaky);
    assert!(
        text.contains("    flaky: may pass without making the run stale"),
        "{text}"
    );
    // Numeric times are fields; times inside text ("PINGRESP at 0ms") go
    // through the same redaction as the text report.
    insta::assert_snapshot!(
        "json_report",
        redact(&serde_json::to_string_pretty(&json).unwrap())
    );
}
