//! Snapshots of the text and JUnit reports for a fixed set of scenarios run
//! against mosquitto: one pass, one known deviation (baselined), one failure
//! outside the baseline, one stale baseline entry and one skip. Times, which
//! vary run to run, are redacted; the run nonce is fixed.

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

#[test]
fn text_and_junit_reports() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let names: Vec<String> = [
        "connect.accepted",
        "malformed.pingreq-flags",
        "malformed.puback-flags",
        "auth.accepted",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let whole = Suite::builtin().unwrap();
    let baseline = Baseline::parse("snapshot-baseline.toml", BASELINE, &whole).unwrap();
    let suite = whole.filter(&[], &names);
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
        },
        |_| {},
    ));
    // The port differs run to run.
    report.target = "127.0.0.1:PORT".to_owned();
    let eval = Evaluation::of(&report, &baseline);
    assert_eq!(eval.status(), Status::Fail);
    assert_eq!(eval.failures, vec!["malformed.puback-flags"]);
    assert_eq!(eval.known, vec!["malformed.pingreq-flags"]);
    assert_eq!(eval.stale, vec!["connect.accepted"]);
    assert_eq!(eval.skipped, vec!["auth.accepted"]);
    insta::assert_snapshot!(
        "text_report",
        redact(&conformance::report::text(&report, &eval, &baseline))
    );
    insta::assert_snapshot!(
        "junit_report",
        redact(&conformance::report::junit(&report, &baseline))
    );
    let json: serde_json::Value =
        serde_json::from_str(&conformance::report::json(&report, &eval, &baseline)).unwrap();
    assert_eq!(json["status"], "fail");
    assert_eq!(json["results"].as_array().unwrap().len(), 4);
}
