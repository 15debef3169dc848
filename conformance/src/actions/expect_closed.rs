//! `expect_closed = "a"`: the server closes the connection before anything
//! else arrives — how a server answers a protocol violation [MQTT-4.8.0-1];
//! with `tls_refused`, the close must come from the TLS layer (a refused
//! handshake or a fatal alert).

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{ActionDef, StepTable, millis_or};
use crate::client::Event;
use crate::engine::{Run, StepAt, StepError, StepResult, describe_arrival};
use crate::model::DEFAULT_WITHIN;
use crate::script::error::ScriptError;

/// The fields of an `expect_closed` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    within_ms: Option<u64>,
    #[serde(default)]
    tls_refused: bool,
}

/// Expect the server to close the connection.
#[derive(Debug, Clone)]
pub struct ExpectClosed {
    /// Client name.
    pub client: String,
    /// How long to wait.
    pub within: Duration,
    /// The close must come from the TLS layer (a refused handshake or a
    /// fatal alert), not after an MQTT exchange.
    pub tls_refused: bool,
}

impl ActionDef for ExpectClosed {
    const NAME: &'static str = "expect_closed";
    const OBSERVES_ONLY: bool = true;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        Ok(ExpectClosed {
            client,
            within: millis_or(a.within_ms, DEFAULT_WITHIN),
            tls_refused: a.tls_refused,
        })
    }

    /// The server closes the connection within `within`, before anything
    /// else arrives; with `tls_refused`, by refusing the TLS handshake or
    /// with a fatal TLS alert.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let (client, tls_refused) = (self.client.as_str(), self.tls_refused);
        let within = run.target.scaled(self.within);
        let deadline = Instant::now() + within;
        run.require_conn(at, client)?;
        let expected = format!(
            "the server closes the connection{} within {}ms",
            if tls_refused {
                " at the TLS layer (handshake refused or fatal alert)"
            } else {
                ""
            },
            within.as_millis()
        );
        let Some(i) = run.wait_unconsumed(client, deadline, false).await else {
            return Err(run.fail(at, Some(client), expected, "connection still open".into()));
        };
        let Some(a) = run.arrival(client, i).cloned() else {
            return Err(StepError::Harness("arrival index out of range".into()));
        };
        match a.event {
            Event::Closed { by_tls, .. } if by_tls || !tls_refused => {
                run.consume(client, i);
                Ok(())
            }
            _ => Err(run.fail(at, Some(client), expected, describe_arrival(&a))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_ok;
    use super::*;

    #[test]
    fn waits_three_seconds_by_default() {
        let e: ExpectClosed = parse_ok("{ expect_closed = \"a\" }");
        assert_eq!((e.within.as_millis(), e.tls_refused), (3000, false));
        let e: ExpectClosed =
            parse_ok("{ expect_closed = \"a\", within_ms = 2500, tls_refused = true }");
        assert_eq!((e.within.as_millis(), e.tls_refused), (2500, true));
    }
}
