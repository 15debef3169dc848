//! `expect_nothing = "a"`: no packet (or none matching the given fields)
//! arrives for `for_ms` — for what a broker must not send: a message to a
//! client that unsubscribed, a second copy, a will after a clean DISCONNECT.

use std::time::Duration;

use tokio::time::Instant;

use super::{ActionDef, StepTable};
use crate::client::Event;
use crate::engine::{Run, StepAt, StepResult, check, describe, describe_arrival};
use crate::model::Matcher;
use crate::script::error::ScriptError;
use crate::script::args::MatcherArgs;

/// Expect no packet (matching, if a matcher is given) for a while.
#[derive(Debug, Clone)]
pub struct ExpectNothing {
    /// Client name.
    pub client: String,
    /// Only packets matching this count; `None`: anything counts.
    pub matcher: Option<Matcher>,
    /// How long to watch.
    pub duration: Duration,
}

impl ActionDef for ExpectNothing {
    const NAME: &'static str = "expect_nothing";
    const OBSERVES_ONLY: bool = true;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<MatcherArgs>()?;
        let loc = &step.at;
        a.forbid(loc, Self::NAME, &["within_ms", "ack"])?;
        let Some(ms) = a.for_ms else {
            return Err(step.error("`expect_nothing` needs `for_ms`"));
        };
        let matcher = if a.is_empty_matcher() {
            None
        } else {
            Some(a.into_matcher(loc)?)
        };
        Ok(ExpectNothing {
            client,
            matcher,
            duration: Duration::from_millis(ms),
        })
    }

    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let (client, m, duration) = (self.client.as_str(), self.matcher.as_ref(), self.duration);
        run.require_conn(at, client)?;
        let deadline = Instant::now() + duration;
        let what = m.map_or("nothing".to_owned(), |m| {
            format!("no {}", describe(m, &run.ph, &run.vars))
        });
        let expected = format!("{what} for {}ms", duration.as_millis());
        loop {
            let hit = {
                let state = run.clients.get(client);
                state
                    .and_then(|s| {
                        s.log.iter().zip(&s.consumed).find(|(a, c)| {
                            !**c && match (m, &a.event) {
                                (None, _) => true,
                                (Some(m), Event::Packet { packet, .. }) => {
                                    check(m, packet, &run.ph, &run.vars).is_ok()
                                }
                                (Some(_), _) => false,
                            }
                        })
                    })
                    .map(|(a, _)| describe_arrival(a))
            };
            if let Some(found) = hit {
                return Err(run.fail(at, Some(client), expected, found));
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            if !run.pull(client, deadline).await && Instant::now() < deadline {
                tokio::time::sleep_until(deadline).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn for_ms_is_required_and_fields_narrow_the_watch() {
        assert_eq!(
            parse_err("{ expect_nothing = \"a\" }"),
            "`expect_nothing` needs `for_ms`"
        );
        let e: ExpectNothing = parse_ok("{ expect_nothing = \"a\", for_ms = 300 }");
        assert!(e.matcher.is_none(), "no fields: anything counts");
        let e: ExpectNothing =
            parse_ok("{ expect_nothing = \"a\", for_ms = 300, packet = \"publish\" }");
        assert!(e.matcher.is_some());
        let e = parse_err("{ expect_nothing = \"a\", for_ms = 1, within_ms = 2 }");
        assert_eq!(e, "`within_ms` does not belong in `expect_nothing`");
    }
}
