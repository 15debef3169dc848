//! `kill = true`: stops the broker abruptly (as SIGKILL or a power loss
//! would) and starts it again with the run's `--kill-command`, then waits
//! until it accepts a client (`within_ms`, default 30,000, scaled). Every
//! client's connection ends with it.
//!
//! What survives a kill depends on what the broker promises (mosquitto
//! saves every `autosave_interval`; ours documents its own in
//! docs/broker.md), so the scenarios with this step are observations
//! (SHOULD or MAY) unless a broker documents more. A scenario with it needs
//! `kill` (added automatically) and must be `exclusive`.

use std::time::Duration;

use super::restart::parse_within;
use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult, Stop};
use crate::script::error::ScriptError;

/// Kill the broker and start it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// How long the broker gets to accept a client again.
    pub within: Duration,
}

impl ActionDef for Kill {
    const NAME: &'static str = "kill";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let within = parse_within(&mut step, Self::NAME)?;
        step.cx.uses_kill = true;
        Ok(Kill { within })
    }

    async fn run(&self, run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        run.restart_broker(Stop::Kill, self.within).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn takes_true_and_a_bound() {
        let k: Kill = parse_ok("{ kill = true, within_ms = 2000 }");
        assert_eq!(k.within, Duration::from_secs(2));
        assert_eq!(
            parse_err("{ kill = 1 }"),
            "`kill` takes `true`, e.g. { kill = true }"
        );
    }
}
