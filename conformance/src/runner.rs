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

use crate::engine::{Run, StepError, Stray};
use crate::model::Level;
use crate::outcome::{CloseTiming, Failure, ScenarioResult, StrayDelivery, Verdict};
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
    run.exclusive = scenario.exclusive;
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
    let strays = std::mem::take(&mut run.strays);
    let verdict = with_strays(verdict, &strays, scenario);
    let mut result = ScenarioResult::new(scenario, verdict, started.elapsed(), transcript);
    result.strays = strays
        .into_iter()
        .map(|s| StrayDelivery {
            statement: s.statement.to_owned(),
            client: s.client,
            text: s.text,
            own: s.own,
        })
        .collect();
    result.close_timings = std::mem::take(&mut run.close_timings);
    beyond_a_bridge(&mut result, scenario, target);
    result
}

/// Against two bridged brokers (`--second-bridged`), a cross-node
/// scenario marked with what a bridge cannot promise is an observation:
/// its level drops to SHOULD and its failure says why, so a bridged pair
/// is not failed for lacking a cluster's shared sessions. Against a
/// cluster it stays what the statements say.
fn beyond_a_bridge(result: &mut ScenarioResult, scenario: &Scenario, target: &Target) {
    let Some(limit) = &scenario.bridge_limit else {
        return;
    };
    if !target.bridged() {
        return;
    }
    result.level = Level::Should;
    if let Verdict::Fail { failure } = &mut result.verdict {
        failure
            .observed
            .push_str(&format!(" (an observation: across a bridge, {limit})"));
    }
}

/// The verdict once the strays are counted: the first stray on the
/// scenario's own topics fails it under the stray's statement, whatever
/// else the steps saw, since it is the first thing known to be wrong (a
/// later step may have failed only because of it). A harness error stands.
/// Strays on other scenarios' topics change nothing here.
fn with_strays(verdict: Verdict, strays: &[Stray], scenario: &Scenario) -> Verdict {
    if matches!(verdict, Verdict::Error { .. }) {
        return verdict;
    }
    let Some(first) = strays.iter().find(|s| s.own) else {
        return verdict;
    };
    let (location, step) = first
        .at
        .clone()
        .unwrap_or_else(|| (scenario.location.clone(), "stray"));
    let mut observed = first.text.clone();
    if let Verdict::Fail { failure } = &verdict {
        observed.push_str(&format!(
            " (then step `{}` at {} failed: expected {}; observed {})",
            failure.step, failure.location, failure.expected, failure.observed
        ));
    }
    Verdict::Fail {
        failure: Failure {
            location,
            step: step.to_owned(),
            statements: vec![first.statement.to_owned()],
            client: Some(first.client.clone()),
            expected: if first.statement == crate::engine::STRAY_STATEMENT {
                "only messages whose topic matches one of the client's subscriptions".to_owned()
            } else {
                "each QoS 2 message delivered once (a resend carries DUP 1)".to_owned()
            },
            observed,
        },
    }
}

/// Time between the starts of two repeats of a `timing` scenario run at
/// once. It samples a broker's timers at different phases: a broker that
/// checks keep-alives on a coarse periodic scan (mosquitto 2.0 looks every
/// few seconds) closes staggered clients at different points of its
/// window, so not every repeat can land inside the harness's window. An
/// early close passes, so a repeat passes whenever the scan comes before
/// its deadline: the stagger must be wider than the span between a scan
/// broker's earliest close and that deadline (mosquitto: up to 0.6 s, at
/// keep-alives 1 and 3 s), which two staggers of 500 ms are. Stretched by
/// `--time-scale`, as the windows are.
pub const REPEAT_STAGGER: Duration = Duration::from_millis(500);

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
        // A JoinSet, so that a run stopped mid-way (the broker went away)
        // aborts every repeat with it.
        let mut tasks = tokio::task::JoinSet::new();
        for (k, ph) in (0u32..).zip(placeholders) {
            let (scenario, target) = (Arc::clone(&scenario), Arc::clone(&target));
            tasks.spawn(async move {
                tokio::time::sleep_until(started + target.scaled(REPEAT_STAGGER) * k).await;
                let offset = started.elapsed();
                (k, offset, run_scenario(&scenario, &target, ph).await)
            });
        }
        let mut done: Vec<(u32, Duration, ScenarioResult)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            done.push(match joined {
                Ok(run) => run,
                Err(e) => (
                    u32::MAX,
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
        done.sort_by_key(|(k, _, _)| *k);
        runs.extend(done.into_iter().map(|(_, offset, r)| (offset, r)));
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
            Verdict::NotApplicable { .. } | Verdict::Skipped { .. } | Verdict::NotRun { .. } => 1,
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
        joined.strays.extend(r.strays);
        joined.close_timings.extend(
            r.close_timings
                .into_iter()
                .map(|t| CloseTiming { repeat: k, ..t }),
        );
    }
    joined.transcript.sort_by_key(|l| l.at);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Location;

    fn scenario() -> Scenario {
        let suite = crate::suite::Suite::builtin().unwrap_or_default();
        let mut s = suite
            .scenarios
            .into_iter()
            .next()
            .expect("the suite has scenarios");
        s.statements = vec!["MQTT-3.1.4-4".into()];
        s
    }

    fn stray(own: bool) -> Stray {
        Stray {
            statement: crate::engine::STRAY_STATEMENT,
            client: "sub".into(),
            text: "stray delivery".into(),
            own,
            at: Some((
                Location {
                    file: "t.toml".into(),
                    line: 9,
                },
                "expect",
            )),
        }
    }

    fn failed_under(v: &Verdict) -> Option<(Vec<String>, usize, &str)> {
        match v {
            Verdict::Fail { failure } => Some((
                failure.statements.clone(),
                failure.location.line,
                failure.observed.as_str(),
            )),
            _ => None,
        }
    }

    #[test]
    fn a_stray_on_the_scenarios_own_topics_fails_it_under_the_strays_statement() {
        let s = scenario();
        let v = with_strays(Verdict::Pass, &[stray(false), stray(true)], &s);
        let (statements, line, observed) = failed_under(&v).expect("failed");
        assert_eq!(
            (statements.as_slice(), line),
            (&["MQTT-3.3.2-3".to_owned()][..], 9)
        );
        assert_eq!(observed, "stray delivery");
        // It names the step failure that came after it too.
        let later = Verdict::Fail {
            failure: Failure {
                location: s.location.clone(),
                step: "expect_nothing".into(),
                statements: s.statements.clone(),
                client: None,
                expected: "nothing".into(),
                observed: "PUBLISH".into(),
            },
        };
        let v = with_strays(later, &[stray(true)], &s);
        let (statements, _, observed) = failed_under(&v).expect("failed");
        assert_eq!(statements, ["MQTT-3.3.2-3"]);
        assert!(
            observed.contains("then step `expect_nothing`"),
            "{observed}"
        );
    }

    #[test]
    fn another_scenarios_stray_and_harness_errors_leave_the_verdict() {
        let s = scenario();
        assert!(matches!(
            with_strays(Verdict::Pass, &[stray(false)], &s),
            Verdict::Pass
        ));
        let error = Verdict::Error {
            message: "unreachable".into(),
        };
        assert!(matches!(
            with_strays(error, &[stray(true)], &s),
            Verdict::Error { .. }
        ));
    }
}
