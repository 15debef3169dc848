//! Attribution and isolation (issue 13, item 2): a broker that leaks
//! retained messages to clients whose subscriptions do not match them (the
//! planted bug `retained-leak`) fails only scenarios under the statement
//! that rule is, [MQTT-3.3.2-3], and the same scenarios whether they run one
//! at a time or 32 at once: a stray is set aside where it arrives, so it
//! cannot fail a check about something else, and only a stray on a
//! scenario's own topics fails that scenario.

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::collections::BTreeMap;

use conformance::engine::STRAY_STATEMENT;
use conformance::outcome::Verdict;
use conformance::suite::{RunReport, Suite};
use conformance::target::Target;
use in_process::{InProcessBroker, Reference};
use testsupport::ReferenceOptions;

/// Per failed or errored scenario: the statements its failure names (an
/// error names none).
fn failures(report: &RunReport) -> BTreeMap<String, Vec<String>> {
    report
        .results
        .iter()
        .filter(|r| r.failed())
        .map(|r| {
            let statements = match &r.verdict {
                Verdict::Fail { failure } => failure.statements.clone(),
                _ => Vec::new(),
            };
            (r.name.clone(), statements)
        })
        .collect()
}

/// The suite at `jobs` against a fresh broker with `mutant` planted (or
/// none), so that no run inherits another's retained messages or sessions.
fn run(suite: &Suite, mutant: Option<&str>, jobs: usize) -> RunReport {
    let broker = Reference::InProcess(InProcessBroker::start_mutant(
        ReferenceOptions::default(),
        mutant,
    ));
    let target = Target::plain("127.0.0.1", broker.addr().port());
    common::run_with(
        suite,
        &target,
        &conformance::suite::RunOptions {
            jobs,
            ..Default::default()
        },
    )
}

#[test]
fn retained_leak_fails_only_its_statement_the_same_at_jobs_1_and_32() {
    let suite = Suite::builtin().unwrap();
    // What fails without the leak (SHOULD/MAY scenarios the broker does not
    // meet; the scenarios that need TLS or credentials are skipped here).
    let clean = failures(&run(&suite, None, 8));
    let one = run(&suite, Some("retained-leak"), 1);
    let many = run(&suite, Some("retained-leak"), 32);
    let (f1, f32) = (failures(&one), failures(&many));
    let text = |r: &RunReport| common::text(r, &Default::default());
    assert!(
        f1.contains_key("retained.only-to-matching-subscribers"),
        "the scenario dedicated to the rule did not catch the leak:\n{}",
        text(&one)
    );
    for (name, statements) in f1.iter().chain(&f32) {
        assert!(
            statements == &[STRAY_STATEMENT] || clean.get(name) == Some(statements),
            "{name} failed under {statements:?}, not the leak's statement, and not as it does without the leak:\n--- jobs 1 ---\n{}\n--- jobs 32 ---\n{}",
            text(&one),
            text(&many)
        );
    }
    assert_eq!(
        f1.keys().collect::<Vec<_>>(),
        f32.keys().collect::<Vec<_>>(),
        "the failures depend on --jobs:\n--- jobs 1 ---\n{}\n--- jobs 32 ---\n{}",
        text(&one),
        text(&many)
    );
    let under_leak: Vec<&String> = f1
        .iter()
        .filter(|(_, s)| s.as_slice() == [STRAY_STATEMENT])
        .map(|(n, _)| n)
        .collect();
    println!(
        "retained-leak: {} scenarios fail under {STRAY_STATEMENT} at jobs 1 and 32: {under_leak:?}; strays seen in {} scenarios at jobs 1, {} at jobs 32",
        under_leak.len(),
        one.results.iter().filter(|r| !r.strays.is_empty()).count(),
        many.results.iter().filter(|r| !r.strays.is_empty()).count(),
    );
}
