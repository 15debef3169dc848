//! `restart = true`: stops the broker gracefully and starts it again with
//! the run's `--restart-command`, then waits until it accepts a client
//! (`within_ms`, default 30,000, scaled by `--time-scale`). Every client's
//! connection ends with it; later steps reconnect the clients they need.
//!
//! The spec does not speak of restarts, but a server that keeps session
//! state for Clean Session 0 clients [MQTT-3.1.2-4] [MQTT-3.1.2-5] and
//! retained messages [MQTT-3.3.1-5] is expected to keep them across one.
//! A scenario with this step needs `restart` (added automatically) and must
//! be `exclusive`: the restart drops the clients of every other scenario.

use std::time::Duration;

use serde::Deserialize;

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult, Stop};
use crate::restart::ACCEPT_TIMEOUT;
use crate::script::error::ScriptError;

/// The fields of a `restart` or `kill` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    within_ms: Option<u64>,
}

/// Parses a `restart = true` or `kill = true` step: its key's value must be
/// `true`; returns how long the broker gets to accept clients again.
pub(super) fn parse_within(step: &mut StepTable<'_, '_>, keyword: &str) -> Result<Duration, ScriptError> {
    if step.value().as_bool() != Some(true) {
        return Err(step.error(format!(
            "`{keyword}` takes `true`, e.g. {{ {keyword} = true }}"
        )));
    }
    let a: Args = step.args()?;
    Ok(super::millis_or(a.within_ms, ACCEPT_TIMEOUT))
}

/// Restart the broker gracefully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// How long the broker gets to accept a client again.
    pub within: Duration,
}

impl ActionDef for Restart {
    const NAME: &'static str = "restart";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let within = parse_within(&mut step, Self::NAME)?;
        step.cx.uses_restart = true;
        Ok(Restart { within })
    }

    async fn run(&self, run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        run.restart_broker(Stop::Graceful, self.within).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn takes_true_and_a_bound() {
        let r: Restart = parse_ok("{ restart = true }");
        assert_eq!(r.within, ACCEPT_TIMEOUT);
        let r: Restart = parse_ok("{ restart = true, within_ms = 5000 }");
        assert_eq!(r.within, Duration::from_secs(5));
        assert_eq!(
            parse_err("{ restart = \"a\" }"),
            "`restart` takes `true`, e.g. { restart = true }"
        );
        let e = parse_err("{ restart = true, within = 5 }");
        assert!(e.starts_with("in `restart` step: unknown field `within`"), "{e}");
    }

    #[tokio::test]
    async fn without_a_restart_command_it_is_a_harness_error() {
        let target = crate::target::Target::plain("127.0.0.1", 1);
        let e = super::super::run_alone(&Restart { within: ACCEPT_TIMEOUT }, &target)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, crate::engine::StepError::Harness(m) if m == "the scenario restarts the broker but the run has no --restart-command"),
            "{e:?}"
        );
    }
}
