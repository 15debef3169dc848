//! `repeat = N`: runs its `steps` N times (1 to 10000), with `{n}` the
//! 1-based iteration, for checks about many messages (ordering, packet ids
//! in flight). Its steps may stand in a `batch` when they only send.

use super::{ActionDef, Batched, Step, StepTable, run_steps};
use crate::engine::{Run, StepAt, StepResult};
use crate::script::error::ScriptError;
use crate::script::args::NoArgs;

/// Run steps `times` times; `{n}` is the 1-based iteration.
#[derive(Debug, Clone)]
pub struct Repeat {
    /// How many times.
    pub times: u32,
    /// The steps.
    pub steps: Vec<Step>,
}

impl ActionDef for Repeat {
    const NAME: &'static str = "repeat";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let times = match step.value().as_integer() {
            Some(n) if (1..=10_000).contains(&n) => n as u32,
            _ => return Err(step.error("`repeat` takes a count from 1 to 10000")),
        };
        let steps_value = step
            .take("steps")
            .ok_or_else(|| step.error("`repeat` needs `steps = [ ... ]`"))?;
        let _: NoArgs = step.args()?;
        let steps = step.steps(steps_value, "`repeat` steps")?;
        Ok(Repeat { times, steps })
    }

    async fn run(&self, run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        let outer = run.ph.iteration;
        for n in 1..=self.times {
            run.ph.iteration = n;
            run_steps(run, &self.steps).await?;
        }
        run.ph.iteration = outer;
        Ok(())
    }

    fn batched(&self) -> Batched<'_> {
        Batched::Holds(&self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn parses_count_and_nested_steps() {
        let r: Repeat = parse_ok(
            "{ repeat = 3, steps = [ { publish = \"a\", topic = \"t\", payload = \"{n}\" }, { wait = 1 } ] }",
        );
        assert_eq!(r.times, 3);
        let keywords: Vec<&str> = r.steps.iter().map(|s| s.action.keyword()).collect();
        assert_eq!(keywords, ["publish", "wait"]);
    }

    #[test]
    fn count_and_steps_are_checked() {
        for (step, message) in [
            ("{ repeat = 0, steps = [] }", "`repeat` takes a count from 1 to 10000"),
            ("{ repeat = 2 }", "`repeat` needs `steps = [ ... ]`"),
            (
                "{ repeat = 2, steps = [ { wait = 1 } ], times = 3 }",
                "in `repeat` step: unknown field `times`",
            ),
            (
                "{ repeat = 2, steps = { wait = 1 } }",
                "`repeat` steps must be an array of step tables",
            ),
            (
                "{ repeat = 2, steps = [ 1 ] }",
                "`repeat` steps must hold step tables, found integer",
            ),
        ] {
            let e = parse_err(step);
            assert!(e.starts_with(message), "{step}: {e}");
        }
    }
}
