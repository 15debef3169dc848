//! Runs one scenario: sets up the engine context, walks the steps through
//! the action table, turns how they ended into a verdict, and cleans up.
//!
//! This sits above both [`crate::engine`] (the context) and
//! [`crate::actions`] (what each step does), so neither imports the other's
//! user.

use std::time::Duration;

use crate::engine::{Run, StepError};
use crate::outcome::{ScenarioResult, Verdict};
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
    ScenarioResult::new(scenario, verdict, started.elapsed(), transcript)
}
