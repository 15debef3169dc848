//! Runs one scenario: sets up the engine context, walks the steps through
//! the action table, turns how they ended into a verdict, and cleans up.
//!
//! This sits above both [`crate::engine`] (the context) and
//! [`crate::actions`] (what each step does), so neither imports the other's
//! user.

use std::time::Duration;

use crate::engine::{Run, StepError, Stray};
use crate::outcome::{Failure, ScenarioResult, StrayDelivery, Verdict};
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
    result
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
