//! `disconnect = "a"`: sends DISCONNECT and then closes the socket, as a
//! client must [MQTT-3.14.4-1]; `close = false` keeps it open, to see what
//! the server does (it must close [MQTT-3.14.4-2]) or to put the DISCONNECT
//! in a `batch`.

use serde::Deserialize;

use super::{ActionDef, Batched, StepTable};
use crate::engine::{Run, StepAt, StepResult};
use crate::script::error::ScriptError;

/// The fields of a `disconnect` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    close: Option<bool>,
}

/// Send DISCONNECT and (unless told not to) close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Client name.
    pub client: String,
    /// Close the socket after sending.
    pub close: bool,
}

impl ActionDef for Disconnect {
    const NAME: &'static str = "disconnect";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        Ok(Disconnect {
            client,
            close: a.close.unwrap_or(true),
        })
    }

    /// Sends DISCONNECT and, with `close`, shuts the connection down.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        run.send(at, client, &[0xe0, 0x00]).await?;
        if self.close {
            if let Some(conn) = run.client_mut(client).conn.as_mut() {
                conn.shutdown().await;
            }
            run.close_conn(client, "closed the connection after DISCONNECT");
        }
        Ok(())
    }

    /// Closing the socket is not a byte the batch can hold back, so only
    /// `close = false` may stand in a batch.
    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, self.close)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_ok;
    use super::*;

    #[test]
    fn closes_unless_told_not_to() {
        let close = |step| parse_ok::<Disconnect>(step).close;
        assert!(close("{ disconnect = \"a\" }"));
        assert!(!close("{ disconnect = \"a\", close = false }"));
    }
}
