//! `wait = MS`: lets time pass, for checks that depend on time (keep-alive,
//! a will sent only after the connection is lost). Prefer an expectation's
//! `within_ms`, which ends as soon as the packet comes.

use std::time::Duration;

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult};
use crate::script::error::ScriptError;
use crate::script::args::NoArgs;

/// Let time pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl ActionDef for Wait {
    const NAME: &'static str = "wait";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let _: NoArgs = step.args()?;
        match step.value().as_integer() {
            Some(ms) if ms >= 0 => Ok(Wait(Duration::from_millis(ms.unsigned_abs()))),
            _ => Err(step.error("`wait` takes milliseconds, e.g. { wait = 500 }")),
        }
    }

    async fn run(&self, _run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn takes_milliseconds() {
        assert_eq!(parse_ok::<Wait>("{ wait = 500 }").0, Duration::from_millis(500));
        for bad in ["{ wait = -1 }", "{ wait = \"1s\" }"] {
            assert_eq!(
                parse_err(bad),
                "`wait` takes milliseconds, e.g. { wait = 500 }"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lets_that_much_time_pass() {
        let target = crate::target::Target::plain("127.0.0.1", 1);
        let start = tokio::time::Instant::now();
        super::super::run_alone(&Wait(Duration::from_millis(250)), &target)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
