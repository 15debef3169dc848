//! Runs one scenario: sets up the engine context, walks the steps through
//! the action table, turns how they ended into a verdict, and cleans up.
//!
//! A `timing` scenario runs several times ([`run_repeats`]): its repeats
//! start [`REPEAT_STAGGER`] apart, each with its own placeholders, and the
//! first failing repeat decides the verdict.
//!
//! This sits above both [`crate::engine`] (the context) and
//! [`crate::actions`] (what each step does), so neither imports the other's
//! user.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Run, StepError};
use crate::outcome::{CloseTiming, Failure, ScenarioResult, Verdict};
use crate::scenario::Scenario;
use crate::script::Placeholders;
use crate::target::Target;

/// The longest a scenario may run before it is stopped as an error (times
/// the target's time scale).
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `scenario` against `target` with the given placeholder values.
pub async fn run_scenario(
    scenario: &Scenario,
    target: &Target,
    ph: Placeholders,
) -> ScenarioResult {
    let started = std::time::Instant::now();
    let mut run = Run::new(target, ph, scenario.name.clone());
    let limit = target.scaled(SCENARIO_TIMEOUT);
    let outcome =
        tokio::time::timeout(limit, crate::actions::run_steps(&mut run, &scenario.steps)).await;
    let verdict = match outcome {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(StepError::Failed(failure))) => Verdict::Fail { failure: *failure },
        Ok(Err(StepError::NotApplicable(reason))) => Verdict::NotApplicable { reason },
        Ok(Err(StepError::Harness(message))) => Verdict::Error { message },
        Err(_) => Verdict::Error {
            message: format!("scenario did not finish within {}s", limit.as_secs()),
        },
    };
    run.finish().await;
    let transcript = run.take_transcript();
    let mut result = ScenarioResult::new(scenario, verdict, started.elapsed(), transcript);
    result.close_timings = std::mem::take(&mut run.close_timings);
    result
}

/// Time between the starts of two repeats of a `timing` scenario run at
/// once. It samples a broker's timers at different phases: a broker that
/// checks keep-alives on a coarse periodic scan (mosquitto 2.0 looks every
/// few seconds) closes staggered clients at different points of its
/// window, so not every repeat can land inside the harness's window,
/// which is far narrower than the stagger. Stretched by `--time-scale`,
/// as the windows are.
pub const REPEAT_STAGGER: Duration = Duration::from_millis(200);

/// Runs `scenario` once per entry of `placeholders` (its repeats, each with
/// its own isolation values) and joins the results into one: the first
/// failing repeat (in repeat order) makes it fail, else the first error,
/// else the first "not applicable"; it passes only when every repeat
/// passes. With `concurrent`, repeat `k` (0-based) starts `k ×`
/// [`REPEAT_STAGGER`] (times the time scale) after the first; otherwise (an `exclusive` scenario,
/// which must see the broker alone) they run one after another. The
/// transcript holds every repeat's lines, the client names marked with the
/// repeat (`a#2`) and timed from the first repeat's start. A single
/// entry is a plain run.
pub async fn run_repeats(
    scenario: Arc<Scenario>,
    target: Arc<Target>,
    placeholders: Vec<Placeholders>,
    concurrent: bool,
) -> ScenarioResult {
    if let [ph] = placeholders.as_slice() {
        // One run: its result as it is, client names unmarked.
        return run_scenario(&scenario, &target, ph.clone()).await;
    }
    let started = tokio::time::Instant::now();
    let total = u32::try_from(placeholders.len()).unwrap_or(u32::MAX);
    let mut runs: Vec<(Duration, ScenarioResult)> = Vec::new();
    if concurrent {
        let mut tasks = Vec::new();
        for (k, ph) in (0u32..).zip(placeholders) {
            let (scenario, target) = (Arc::clone(&scenario), Arc::clone(&target));
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(started + target.scaled(REPEAT_STAGGER) * k).await;
                let offset = started.elapsed();
                (offset, run_scenario(&scenario, &target, ph).await)
            }));
        }
        for task in tasks {
            runs.push(match task.await {
                Ok(run) => run,
                Err(e) => (
                    started.elapsed(),
                    ScenarioResult::new(
                        &scenario,
                        Verdict::Error {
                            message: format!("scenario task failed: {e}"),
                        },
                        Duration::ZERO,
                        Vec::new(),
                    ),
                ),
            });
        }
    } else {
        for ph in placeholders {
            let offset = started.elapsed();
            runs.push((offset, run_scenario(&scenario, &target, ph).await));
        }
    }
    let mut joined = ScenarioResult::new(&scenario, Verdict::Pass, started.elapsed(), Vec::new());
    joined.repeats = total;
    let failed = runs
        .iter()
        .filter(|(_, r)| matches!(r.verdict, Verdict::Fail { .. }))
        .count();
    let in_repeat = |k: u32| {
        if failed > 1 {
            format!("in repeat {k} of {total} ({failed} of {total} failed)")
        } else {
            format!("in repeat {k} of {total}")
        }
    };
    for (k, (offset, r)) in (1u32..).zip(runs) {
        let verdict = match r.verdict {
            Verdict::Fail { failure } => Verdict::Fail {
                failure: Failure {
                    observed: format!("{}: {}", in_repeat(k), failure.observed),
                    ..failure
                },
            },
            Verdict::Error { message } => Verdict::Error {
                message: format!("{}: {message}", in_repeat(k)),
            },
            other => other,
        };
        let rank = |v: &Verdict| match v {
            Verdict::Fail { .. } => 3,
            Verdict::Error { .. } => 2,
            Verdict::NotApplicable { .. } | Verdict::Skipped { .. } => 1,
            Verdict::Pass => 0,
        };
        if rank(&verdict) > rank(&joined.verdict) {
            joined.verdict = verdict;
        }
        joined
            .transcript
            .extend(r.transcript.into_iter().map(|mut l| {
                l.client = format!("{}#{k}", l.client);
                l.at += offset;
                l
            }));
        joined.close_timings.extend(
            r.close_timings
                .into_iter()
                .map(|t| CloseTiming { repeat: k, ..t }),
        );
    }
    joined.transcript.sort_by_key(|l| l.at);
    joined
}
