//! The restart area against brokers restarted on their port with their
//! data: the in-process reference broker passes every restart scenario,
//! and each of its two planted bugs (`qos2-redeliver-after-restart`,
//! `forget-connected-session`) fails the scenario guarding it; mosquitto
//! with persistence on passes them too.

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;
#[path = "in_process/restart.rs"]
mod in_process_restart;

use common::restart::{restartable_mosquitto, target};
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::suite::Suite;
use in_process_restart::restartable_broker;

/// The built-in restart area.
fn restart_area() -> Suite {
    let suite = Suite::builtin().unwrap();
    let names: Vec<String> = suite
        .scenarios
        .iter()
        .filter(|s| s.area == "restart")
        .map(|s| s.name.clone())
        .collect();
    assert!(
        names.len() >= 10,
        "the restart area has {} scenarios",
        names.len()
    );
    suite.filter(&[], &names)
}

fn verdicts(results: &[ScenarioResult]) -> String {
    results
        .iter()
        .map(|r| match &r.verdict {
            Verdict::Pass => format!("{}: pass\n", r.name),
            Verdict::Fail { failure } => format!(
                "{}: FAIL at {}: expected {} / observed {}\n",
                r.name, failure.location, failure.expected, failure.observed
            ),
            other => format!("{}: {other:?}\n", r.name),
        })
        .collect()
}

#[test]
fn reference_broker_passes_every_restart_scenario() {
    let broker = restartable_broker(&["--autosave-interval", "1"], None);
    let suite = restart_area();
    let report = common::run(&suite, &target(&broker));
    assert!(
        report.results.iter().all(ScenarioResult::passed),
        "{}\n--- broker log ---\n{}",
        verdicts(&report.results),
        broker.log()
    );
}

/// Runs the restart area against the broker with `mutant` planted and
/// returns the names of the scenarios that failed.
fn failing_with(mutant: &str) -> (Vec<String>, String) {
    let broker = restartable_broker(&["--autosave-interval", "1"], Some(mutant));
    let report = common::run(&restart_area(), &target(&broker));
    let failed = report
        .results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail { .. }))
        .map(|r| r.name.clone())
        .collect();
    (failed, verdicts(&report.results))
}

#[test]
fn redelivering_completed_qos2_after_a_restart_fails_its_scenario() {
    let (failed, all) = failing_with("qos2-redeliver-after-restart");
    assert!(
        failed.contains(&"restart.qos2-completed-not-redelivered".to_owned()),
        "{all}"
    );
}

#[test]
fn forgetting_a_connected_session_at_shutdown_fails_its_scenario() {
    let (failed, all) = failing_with("forget-connected-session");
    assert!(
        failed.contains(&"restart.connected-session-kept".to_owned()),
        "{all}"
    );
}

#[test]
fn mosquitto_with_persistence_passes_every_restart_scenario() {
    let mosquitto = restartable_mosquitto();
    let report = common::run(&restart_area(), &target(&mosquitto));
    assert!(
        report.results.iter().all(ScenarioResult::passed),
        "{}\n--- mosquitto log ---\n{}",
        verdicts(&report.results),
        mosquitto.log()
    );
}
