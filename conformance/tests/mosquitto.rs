//! The whole built-in suite against a real mosquitto 2.0, judged against
//! `fixtures/baselines/mosquitto-2.0.toml`: every MUST scenario passes or
//! fails exactly as the baseline says, and no baseline entry passes.

#![allow(clippy::unwrap_used)]

mod common;

use conformance::baseline::{Evaluation, Status};
use conformance::outcome::Verdict;
use conformance::suite::Suite;

#[test]
fn builtin_suite_matches_mosquitto_baseline_plain_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (m, target) = common::mosquitto_with_tls(dir.path());
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    let eval = Evaluation::of(&report, &baseline);
    assert_eq!(
        eval.status(),
        Status::Pass,
        "{}\n--- mosquitto log ---\n{}",
        common::text(&report, &baseline),
        m.log()
    );
    // Only the auth scenarios (no credentials here) may be skipped: TLS ran.
    for r in &report.results {
        if let Verdict::Skipped { .. } = r.verdict {
            assert!(
                r.tags.contains(&"auth".to_owned()),
                "{} was skipped",
                r.name
            );
        }
    }
    assert!(
        report
            .results
            .iter()
            .any(|r| r.tags.contains(&"tls".to_owned()) && r.passed())
    );
}

#[test]
fn builtin_suite_with_credentials_matches_mosquitto_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let (m, target) = common::mosquitto_with_auth(dir.path(), "conformance", "s3cret-pw");
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    let eval = Evaluation::of(&report, &baseline);
    assert_eq!(
        eval.status(),
        Status::Pass,
        "{}\n--- mosquitto log ---\n{}",
        common::text(&report, &baseline),
        m.log()
    );
    let auth: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.tags.contains(&"auth".to_owned()))
        .collect();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|r| r.passed()),
        "auth scenarios did not all pass"
    );
}
