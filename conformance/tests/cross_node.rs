//! The cross-node scenarios (issue 16, item 6) against two real
//! mosquittos joined by a mosquitto bridge (`testsupport::BridgedMosquittos`),
//! and against the reference broker bridged to itself (its `[[bridge]]`):
//! every message-carrying scenario passes across the bridge, and the ones
//! marked with what a bridge cannot promise (a session taken over or
//! resumed on the other node) are observations, not MUST failures, when
//! the run says the nodes are bridged — and MUST failures when it does not
//! (a cluster must keep those promises).

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::sync::Arc;

use conformance::baseline::{Baseline, Evaluation, Status};
use conformance::model::Level;
use conformance::outcome::Verdict;
use conformance::suite::RunReport;
use conformance::suite::Suite;
use conformance::target::{SecondNode, Target};
use in_process::Reference;
use testsupport::{BridgedMosquittos, ReferenceOptions, wait_until_bridged};

/// What only a cluster can promise; a bridge breaks these.
const BEYOND_A_BRIDGE: [&str; 2] = ["cross-node.takeover", "cross-node.session-resumed"];

fn target(pair: &BridgedMosquittos, bridged: bool) -> Target {
    two_nodes(pair.first.port(), pair.second.port(), bridged)
}

fn two_nodes(first: u16, second: u16, bridged: bool) -> Target {
    let mut target = Target::plain("127.0.0.1", first);
    target.second = Some(Arc::new(SecondNode {
        target: Target::plain("127.0.0.1", second),
        bridged,
    }));
    target
}

/// The bar for a bridged pair: every scenario passes but those marked with
/// what a bridge cannot promise, which fail as observations (SHOULD) that
/// say why; the run as a whole passes.
fn assert_bridged_pair_report(report: &RunReport, logs: &dyn Fn() -> String) {
    let baseline = Baseline::default();
    let text = common::text(report, &baseline);
    assert_eq!(
        Evaluation::of(report, &baseline).status(),
        Status::Pass,
        "{text}\n{}",
        logs()
    );
    common::assert_no_strays(report, &baseline);
    for r in &report.results {
        if BEYOND_A_BRIDGE.contains(&r.name.as_str()) {
            let Verdict::Fail { failure } = &r.verdict else {
                panic!(
                    "{} should fail across a bridge: {:?}\n{text}",
                    r.name, r.verdict
                );
            };
            assert_eq!(r.level, Level::Should, "{}", r.name);
            assert!(failure.observed.contains("across a bridge"), "{failure:?}");
        } else {
            assert!(r.passed(), "{} did not pass\n{text}\n{}", r.name, logs());
        }
    }
    assert!(report.broker_target.bridged);
    assert!(report.target.contains("second node") && report.target.contains("(bridged)"));
}

fn logs(pair: &BridgedMosquittos) -> String {
    format!(
        "--- first ---\n{}\n--- second ---\n{}",
        pair.first.log(),
        pair.second.log()
    )
}

#[test]
fn cross_node_scenarios_on_bridged_mosquittos_pass_with_only_the_marked_observations() {
    let pair = BridgedMosquittos::start();
    let suite = Suite::cross_node().unwrap();
    assert!(suite.scenarios.len() >= 10);
    let report = common::run(&suite, &target(&pair, true));
    assert_bridged_pair_report(&report, &|| logs(&pair));
}

#[test]
fn cross_node_scenarios_on_the_reference_broker_bridged_to_itself() {
    // Our broker's own bridge ([[bridge]] in its config file, mosquitto's
    // directives) from the first node to the second.
    let second = Reference::start(ReferenceOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[[bridge]]\nconnection = \"cross-node\"\naddress = \"{}\"\ntopic = [\"# both 2\"]\nrestart_timeout = 1\n",
            second.addr()
        ),
    )
    .unwrap();
    let first = Reference::start(ReferenceOptions {
        extra_args: vec!["--config".to_owned(), config.display().to_string()],
        ..ReferenceOptions::default()
    });
    let logs = || {
        format!(
            "--- first ---\n{}\n--- second ---\n{}",
            first.log(),
            second.log()
        )
    };
    assert!(
        wait_until_bridged(first.addr(), second.addr()),
        "{}",
        logs()
    );
    let suite = Suite::cross_node().unwrap();
    let report = common::run(
        &suite,
        &two_nodes(first.addr().port(), second.addr().port(), true),
    );
    assert_bridged_pair_report(&report, &logs);
}

#[test]
fn without_the_bridged_mark_a_takeover_not_seen_across_nodes_is_a_must_failure() {
    let pair = BridgedMosquittos::start();
    let suite = Suite::cross_node()
        .unwrap()
        .filter(&[], &["cross-node.takeover".to_owned()]);
    let report = common::run(&suite, &target(&pair, false));
    let r = &report.results[0];
    assert!(matches!(r.verdict, Verdict::Fail { .. }), "{:?}", r.verdict);
    assert_eq!(r.level, Level::Must);
    assert_eq!(
        Evaluation::of(&report, &Baseline::default()).status(),
        Status::Fail
    );
}

#[test]
fn cross_node_scenarios_without_a_second_node_are_skipped_naming_the_flag() {
    let m = testsupport::Mosquitto::start(testsupport::MosquittoOptions::default());
    let suite = Suite::cross_node().unwrap();
    let report = common::run(&suite, &Target::plain("127.0.0.1", m.port()));
    for r in &report.results {
        let Verdict::Skipped { reason } = &r.verdict else {
            panic!("{} ran without a second node", r.name);
        };
        assert!(reason.contains("--second-host"), "{reason}");
    }
}
