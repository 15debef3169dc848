//! The keep-alive checks against the reference broker with its keep-alive
//! timer planted wrong (`broker::mutant`): a broker closing silent clients
//! at 1.7 × the keep-alive fails every keep-alive close check, in every
//! repeat, while one closing early (1.3 ×, which §3.1.2.10 allows) passes
//! with its close times reported; one that closes at 1.5 × passes every keep-alive scenario
//! in 50 repeats out of 50; and a broker that does not reset the timer on
//! one packet type fails the scenario sending only that type (issue 13,
//! items 3 and 5).

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::time::Instant;

use conformance::outcome::{ScenarioResult, Verdict};
use conformance::suite::{RunOptions, RunReport, Suite};
use conformance::target::Target;
use in_process::{InProcessBroker, Reference};
use testsupport::ReferenceOptions;

/// The scenarios that time a keep-alive close, one per keep-alive value.
const CLOSE_CHECKS: [&str; 3] = [
    "keepalive.timeout-closes-ka1",
    "keepalive.timeout-closes",
    "keepalive.timeout-closes-ka3",
];

/// Runs the scenarios `names` (all keepalive-tagged ones when empty) with
/// `repeats` timing repeats against a reference broker with `mutant`.
fn run(mutant: Option<&str>, names: &[&str], repeats: u32) -> RunReport {
    let broker = Reference::InProcess(InProcessBroker::start_mutant(
        ReferenceOptions::default(),
        mutant,
    ));
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let tags = if names.is_empty() {
        vec!["keepalive".to_owned()]
    } else {
        Vec::new()
    };
    let suite = Suite::builtin().unwrap().filter(&tags, &names);
    assert!(
        names.is_empty() || suite.scenarios.len() == names.len(),
        "a scenario name is wrong: {names:?}"
    );
    let target = Target::plain("127.0.0.1", broker.addr().port());
    let options = RunOptions {
        jobs: 16,
        timing_repeats: repeats,
        ..RunOptions::default()
    };
    common::run_with(&suite, &target, &options)
}

fn failure(r: &ScenarioResult) -> &conformance::outcome::Failure {
    match &r.verdict {
        Verdict::Fail { failure } => failure,
        other => panic!("{} should fail, got {other:?}", r.name),
    }
}

/// Every close a scenario saw, with the keep-alive: (keep-alive, silence).
fn closes(r: &ScenarioResult) -> Vec<(u16, Option<u64>)> {
    r.close_timings
        .iter()
        .map(|t| (t.keep_alive_s, t.closed_after_ms))
        .collect()
}

#[test]
fn a_broker_closing_at_1_7_times_keep_alive_fails_every_close_check() {
    let report = run(Some("keepalive-factor=1.7"), &CLOSE_CHECKS, 3);
    for r in &report.results {
        let f = failure(r);
        assert!(
            f.observed.starts_with("in repeat 1 of 3 (3 of 3 failed): "),
            "{f:?}"
        );
        assert!(
            f.observed.contains("still open after"),
            "{}: {}",
            r.name,
            f.observed
        );
        // Every repeat ended its window with the connection open: each
        // keep-alive value catches the late timer on its own.
        assert_eq!(r.repeats, 3);
        assert_eq!(r.close_timings.len(), 3, "{}", r.name);
        for t in &r.close_timings {
            assert_eq!(t.closed_after_ms, None, "{}: {t}", r.name);
            assert!(
                t.latest_ms < u64::from(t.keep_alive_s) * 1700,
                "the window must end before 1.7 × keep-alive: {t}"
            );
        }
    }
}

#[test]
fn a_broker_closing_late_fails_and_one_closing_early_passes_with_its_times() {
    // No value: 1.75 × keep-alive, late.
    let late = run(Some("keepalive-factor"), &CLOSE_CHECKS[..1], 1);
    assert!(failure(&late.results[0]).observed.contains("still open"));
    // 1.3 ×: before 1.5 × the keep-alive, which [MQTT-3.1.2-24] does not
    // forbid (§3.1.2.10: a server may close an inactive client at any
    // time). It passes, and the report has the early close times.
    let early = run(Some("keepalive-factor=1.3"), &CLOSE_CHECKS, 2);
    for r in &early.results {
        assert!(r.passed(), "{}: {:?}", r.name, r.verdict);
        for (keep_alive, closed) in closes(r) {
            let closed = closed.unwrap();
            let expected = u64::from(keep_alive) * 1300;
            assert!(
                (expected..expected + 500).contains(&closed),
                "{}: closed after {closed} ms at keep-alive {keep_alive}",
                r.name
            );
        }
    }
}

#[test]
fn a_broker_closing_at_1_5_times_keep_alive_passes_fifty_runs_of_fifty() {
    let started = Instant::now();
    let report = run(None, &[], 50);
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {:?}", r.name, r.verdict))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(report.results.len() >= 14, "{}", report.results.len());
    let mut seen = 0;
    let mut latest_close = 0;
    for r in report
        .results
        .iter()
        .filter(|r| r.name.contains("timeout-closes"))
    {
        assert_eq!(r.repeats, 50, "{}", r.name);
        assert_eq!(r.close_timings.len(), 50, "{}", r.name);
        for t in &r.close_timings {
            let closed = t.closed_after_ms.unwrap();
            assert!((t.earliest_ms..=t.latest_ms).contains(&closed), "{t}");
            latest_close = latest_close.max(closed - t.earliest_ms);
            seen += 1;
        }
    }
    assert_eq!(seen, 150);
    eprintln!(
        "{} keep-alive scenarios × 50 repeats passed in {:.1} s; closes seen up to {latest_close} ms after 1.5 × keep-alive",
        report.results.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_packet_type_that_does_not_reset_the_keep_alive_fails_its_scenario() {
    // (packet type number, the scenarios that send only that type)
    let cases: [(u8, &[&str]); 8] = [
        (
            3,
            &[
                "keepalive.publish-keeps-alive",
                "keepalive.reset-by-publish-qos1",
                "keepalive.reset-by-publish-qos2",
            ],
        ),
        (4, &["keepalive.reset-by-puback"]),
        (5, &["keepalive.reset-by-pubrec"]),
        (6, &["keepalive.reset-by-pubrel"]),
        (7, &["keepalive.reset-by-pubcomp"]),
        (8, &["keepalive.reset-by-subscribe"]),
        (10, &["keepalive.reset-by-unsubscribe"]),
        (12, &["keepalive.pingreq-keeps-alive"]),
    ];
    // Each case has its own broker; they run side by side.
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(packet_type, names)| {
            std::thread::spawn(move || {
                let mutant = format!("keepalive-reset-skips={packet_type}");
                (mutant.clone(), run(Some(&mutant), names, 1))
            })
        })
        .collect();
    for t in threads {
        let (mutant, report) = t.join().unwrap();
        for r in &report.results {
            let f = failure(r);
            assert!(
                f.observed.contains("closed"),
                "{mutant}: {}: {}",
                r.name,
                f.observed
            );
        }
    }
}
