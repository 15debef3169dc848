//! `expect_all = "a"`: these packets arrive, in any order, with nothing
//! else in between — for deliveries whose relative order the spec leaves
//! open (different topics, different subscriptions).

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{ActionDef, StepTable, millis_or};
use crate::client::Event;
use crate::engine::{Run, StepAt, StepError, StepResult, check, describe, describe_arrival};
use crate::model::{DEFAULT_WITHIN, Matcher};
use crate::script::error::ScriptError;
use crate::script::args::MatcherArgs;

/// The fields of an `expect_all` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    packets: Vec<MatcherArgs>,
    within_ms: Option<u64>,
}

/// Expect these packets, in any order.
#[derive(Debug, Clone)]
pub struct ExpectAll {
    /// Client name.
    pub client: String,
    /// One matcher per expected packet.
    pub matchers: Vec<Matcher>,
    /// How long to wait for all of them.
    pub within: Duration,
}

impl ActionDef for ExpectAll {
    const NAME: &'static str = "expect_all";
    const OBSERVES_ONLY: bool = true;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        if a.packets.is_empty() {
            return Err(step.error("`expect_all` needs at least one entry in `packets`"));
        }
        let loc = &step.at;
        let matchers = a
            .packets
            .into_iter()
            .map(|m| {
                m.forbid(loc, "expect_all packets", &["for_ms", "within_ms", "ack"])?;
                m.into_matcher(loc)
            })
            .collect::<Result<_, _>>()?;
        Ok(ExpectAll {
            client,
            matchers,
            within: millis_or(a.within_ms, DEFAULT_WITHIN),
        })
    }

    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let (client, matchers) = (self.client.as_str(), &self.matchers);
        let within = run.target.scaled(self.within);
        run.require_conn(at, client)?;
        let deadline = Instant::now() + within;
        let mut done = vec![false; matchers.len()];
        let all = || {
            matchers
                .iter()
                .map(|m| describe(m, &run.ph, &run.vars))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let expected = format!("in any order: {}", all());
        while done.iter().any(|d| !d) {
            let Some(i) = run.wait_unconsumed(client, deadline, false).await else {
                let missing: Vec<String> = matchers
                    .iter()
                    .zip(&done)
                    .filter(|(_, d)| !**d)
                    .map(|(m, _)| describe(m, &run.ph, &run.vars))
                    .collect();
                return Err(run.fail(
                    at,
                    Some(client),
                    expected,
                    format!(
                        "still missing after {}ms: {}",
                        within.as_millis(),
                        missing.join(", ")
                    ),
                ));
            };
            let Some(a) = run.arrival(client, i).cloned() else {
                return Err(StepError::Harness("arrival index out of range".into()));
            };
            let hit = match &a.event {
                Event::Packet { packet, .. } => matchers.iter().enumerate().find_map(|(k, m)| {
                    if done[k] {
                        return None;
                    }
                    check(m, packet, &run.ph, &run.vars).ok().map(|b| (k, b))
                }),
                _ => None,
            };
            match hit {
                Some((k, bind)) => {
                    done[k] = true;
                    run.consume(client, i);
                    run.vars.extend(bind);
                }
                None => {
                    return Err(run.fail(
                        at,
                        Some(client),
                        expected,
                        format!("unexpected {}", describe_arrival(&a)),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn matchers_take_no_timing_of_their_own() {
        let e: ExpectAll = parse_ok(
            "{ expect_all = \"a\", packets = [ { packet = \"publish\", topic = \"{t}/a\" }, { packet = \"publish\", topic = \"{t}/b\" } ], within_ms = 500 }",
        );
        assert_eq!((e.matchers.len(), e.within.as_millis()), (2, 500));
        let e = parse_err(
            "{ expect_all = \"a\", packets = [ { packet = \"publish\", within_ms = 5 } ] }",
        );
        assert_eq!(e, "`within_ms` does not belong in `expect_all packets`");
        let e = parse_err("{ expect_all = \"a\", packets = [] }");
        assert_eq!(e, "`expect_all` needs at least one entry in `packets`");
    }
}
