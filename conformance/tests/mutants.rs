//! Mutation testing of the suite: the whole built-in suite runs against the
//! reference broker once per planted bug of `broker::mutant::ALL`, set up
//! exactly as `reference_broker.rs` sets it up (`full_reference`: plain and
//! mutual-TLS listeners, a password file), and every bug must make at
//! least [`MIN_CATCHES`] MUST scenarios fail. A bug one scenario alone
//! catches is one edit away from going unnoticed; two independent catches
//! keep the suite honest when a scenario is changed or baselined.
//!
//! "Fail" means the verdict `Fail`: a harness error or "not applicable" is
//! not a catch, since neither says the broker broke a rule. A control run
//! against the unmutated broker goes alongside, and must pass every MUST
//! scenario, so a catch is the bug's doing and not the load's.
//!
//! The table (mutant, catching scenarios, survivors) is printed (visible
//! with `--nocapture`, as `just mutants` runs it) and, when
//! `$MUTANTS_REPORT` names a file, written there as Markdown. `$MUTANTS`
//! (names separated by commas) runs only those, for working on one bug.

#![allow(clippy::unwrap_used)]

mod common;
mod full_reference;
mod in_process;

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conformance::model::Level;
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::suite::{RunReport, Suite};

/// How many broker + suite pairs run at once: enough to keep two cores
/// busy while scenarios wait on their timeouts, few enough that the
/// timing scenarios keep their margins.
const CONCURRENT: usize = 4;

/// The fewest MUST scenarios that must fail for a planted bug.
const MIN_CATCHES: usize = 2;

/// What one run of the suite told about one broker.
struct Outcome {
    /// The mutant's name, or `None` for the control run.
    mutant: Option<&'static str>,
    description: &'static str,
    /// MUST scenarios with the verdict `Fail`.
    caught_by: Vec<String>,
    /// Scenarios the harness could not carry out, with why.
    errors: Vec<String>,
    took: Duration,
}

/// Runs the whole suite against a fresh fully configured broker with
/// `mutant` planted (none for the control run).
fn run(suite: &Suite, mutant: Option<&'static str>, description: &'static str) -> Outcome {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (broker, target) = full_reference::reference_with_everything(dir.path(), mutant);
    let report = common::run(suite, &target);
    drop(broker);
    assert_eq!(report.results.len(), suite.scenarios.len());
    Outcome {
        mutant,
        description,
        caught_by: names(&report, |r| {
            r.level == Level::Must && matches!(r.verdict, Verdict::Fail { .. })
        }),
        errors: report
            .results
            .iter()
            .filter_map(|r| match &r.verdict {
                Verdict::Error { message } => Some(format!("{}: {message}", r.name)),
                _ => None,
            })
            .collect(),
        took: started.elapsed(),
    }
}

fn names(report: &RunReport, pick: impl Fn(&ScenarioResult) -> bool) -> Vec<String> {
    report
        .results
        .iter()
        .filter(|r| pick(r))
        .map(|r| r.name.clone())
        .collect()
}

/// The mutants to run: all of `broker::mutant::ALL`, or those `$MUTANTS`
/// names.
fn selected() -> Vec<(&'static str, &'static str)> {
    let all = broker::mutant::ALL;
    match std::env::var("MUTANTS") {
        Ok(only) if !only.trim().is_empty() => only
            .split(',')
            .map(str::trim)
            .map(|name| {
                *all.iter().find(|(n, _)| *n == name).unwrap_or_else(|| {
                    panic!("$MUTANTS names {name:?}, which is not in broker::mutant::ALL")
                })
            })
            .collect(),
        _ => all.to_vec(),
    }
}

/// Runs every job on [`CONCURRENT`] threads; results in the jobs' order.
fn run_all(suite: &Suite, jobs: &[(Option<&'static str>, &'static str)]) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..CONCURRENT.min(jobs.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(mutant, description)) = jobs.get(i) else {
                        break;
                    };
                    let outcome = run(suite, mutant, description);
                    println!(
                        "{:<40} caught by {:>3} ({:.1} s)",
                        mutant.unwrap_or("(control: no mutant)"),
                        outcome.caught_by.len(),
                        outcome.took.as_secs_f64()
                    );
                    done.lock().unwrap().push((i, outcome));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

/// The Markdown table: one row per mutant, survivors listed after it.
fn table(outcomes: &[&Outcome], took: Duration) -> String {
    let mut out = String::new();
    let caught = outcomes
        .iter()
        .filter(|o| o.caught_by.len() >= MIN_CATCHES)
        .count();
    writeln!(
        out,
        "# Mutation test\n\n{caught} of {} planted bugs caught by at least {MIN_CATCHES} MUST \
         scenarios ({:.0}%), in {:.0} s.\n",
        outcomes.len(),
        100.0 * caught as f64 / outcomes.len().max(1) as f64,
        took.as_secs_f64()
    )
    .unwrap();
    writeln!(out, "| mutant | what it breaks | catches | caught by |").unwrap();
    writeln!(out, "|---|---|---:|---|").unwrap();
    for o in outcomes {
        writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            o.mutant.unwrap_or_default(),
            o.description.replace('|', "\\|"),
            o.caught_by.len(),
            o.caught_by.join(", ")
        )
        .unwrap();
    }
    let survivors: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.caught_by.len() < MIN_CATCHES)
        .filter_map(|o| o.mutant)
        .collect();
    if survivors.is_empty() {
        writeln!(out, "\nSurvivors: none.").unwrap();
    } else {
        writeln!(
            out,
            "\nSurvivors (fewer than {MIN_CATCHES} catches): {}",
            survivors.join(", ")
        )
        .unwrap();
    }
    out
}

#[test]
fn every_planted_bug_fails_at_least_two_must_scenarios() {
    let mutants = selected();
    assert!(
        !mutants.is_empty(),
        "broker::mutant::ALL is empty: nothing to test the suite with"
    );
    let suite = Suite::builtin().unwrap();
    let started = Instant::now();
    let mut jobs: Vec<(Option<&'static str>, &'static str)> = vec![(None, "no bug planted")];
    jobs.extend(
        mutants
            .iter()
            .map(|&(name, description)| (Some(name), description)),
    );
    let outcomes = run_all(&suite, &jobs);
    let took = started.elapsed();

    let (control, planted) = outcomes.split_first().unwrap();
    assert!(
        control.caught_by.is_empty() && control.errors.is_empty(),
        "the unmutated broker failed {:?} and the harness could not run {:?}: catches \
         would mean nothing (see reference_broker.rs)",
        control.caught_by,
        control.errors
    );
    let planted: Vec<&Outcome> = planted.iter().collect();
    let table = table(&planted, took);
    println!("\n{table}");
    if let Ok(path) = std::env::var("MUTANTS_REPORT")
        && !path.is_empty()
    {
        std::fs::write(&path, &table).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        println!("table written to {path}");
    }
    let survivors: Vec<String> = planted
        .iter()
        .filter(|o| o.caught_by.len() < MIN_CATCHES)
        .map(|o| {
            format!(
                "{} (caught by {:?}; harness errors: {:?})",
                o.mutant.unwrap_or_default(),
                o.caught_by,
                o.errors
            )
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "planted bugs fewer than {MIN_CATCHES} MUST scenarios caught:\n{}\n\n{table}",
        survivors.join("\n")
    );
}
