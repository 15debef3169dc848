//! `one_of = [[...], [...]]`: the spec allows several outcomes (an invalid
//! filter refused with a SUBACK 0x80, or by closing the connection); the
//! step passes if one branch passes.
//!
//! Branches hold only expectations (without `ack`), so trying one consumes
//! nothing irreversibly: between tries the consumed marks and the captured
//! variables are restored, and a branch that failed half-way leaves no
//! trace.

use super::{ActionDef, Step, StepTable, run_steps};
use crate::engine::{Run, StepAt, StepError, StepResult};
use crate::script::error::ScriptError;
use crate::script::args::NoArgs;

/// Alternatives allowed by the spec: passes if any branch passes.
#[derive(Debug, Clone)]
pub struct OneOf(pub Vec<Vec<Step>>);

impl ActionDef for OneOf {
    const NAME: &'static str = "one_of";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let _: NoArgs = step.args()?;
        let toml::Value::Array(branches) = step.value().clone() else {
            return Err(step.error(
                "`one_of` takes an array of branches, each an array of expectation steps",
            ));
        };
        if branches.len() < 2 {
            return Err(step.error("`one_of` needs at least two branches"));
        }
        let mut parsed = Vec::new();
        for b in branches {
            let steps = step.steps(b, "a `one_of` branch")?;
            if steps.is_empty() {
                return Err(step.error("a `one_of` branch is empty"));
            }
            if let Some(s) = steps.iter().find(|s| !s.action.is_expectation()) {
                return Err(step.error(format!(
                    "a `one_of` branch may hold only expect, expect_all, expect_nothing and expect_closed (without ack), found `{}`",
                    s.action.keyword()
                )));
            }
            parsed.push(steps);
        }
        Ok(OneOf(parsed))
    }

    /// Tries each branch in turn, restoring the consumed marks and the
    /// variables between tries.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let branches = &self.0;
        let saved = run.consumed_marks();
        let saved_vars = run.vars.clone();
        let mut failures = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            match run_steps(run, branch).await {
                Ok(()) => return Ok(()),
                Err(StepError::Failed(f)) => {
                    failures.push(format!(
                        "branch {}: expected {}; observed {}",
                        i + 1,
                        f.expected,
                        f.observed
                    ));
                    run.restore_consumed(&saved);
                    run.vars.clone_from(&saved_vars);
                }
                Err(e) => return Err(e),
            }
        }
        Err(run.fail(
            at,
            None,
            format!("one of {} allowed outcomes", branches.len()),
            failures.join(" | "),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn branches_hold_only_expectations() {
        let o: OneOf = parse_ok(
            "{ one_of = [ [ { expect = \"a\", packet = \"suback\" } ], [ { expect_closed = \"a\" } ] ] }",
        );
        assert_eq!(o.0.len(), 2);
        let e = parse_err("{ one_of = [ [ { expect_closed = \"a\" } ], [ { drop = \"a\" } ] ] }");
        assert!(e.starts_with("a `one_of` branch may hold only"), "{e}");
        let e = parse_err(
            "{ one_of = [ [ { expect_closed = \"a\" } ], [ { expect = \"a\", packet = \"publish\", ack = true } ] ] }",
        );
        assert!(e.ends_with("found `expect`"), "{e}");
    }

    #[test]
    fn needs_two_non_empty_branches() {
        for (step, message) in [
            ("{ one_of = [ [ { expect_closed = \"a\" } ] ] }", "`one_of` needs at least two branches"),
            ("{ one_of = [ [ { expect_closed = \"a\" } ], [] ] }", "a `one_of` branch is empty"),
            ("{ one_of = 3 }", "`one_of` takes an array of branches"),
        ] {
            let e = parse_err(step);
            assert!(e.starts_with(message), "{step}: {e}");
        }
    }
}
