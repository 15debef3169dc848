//! `batch = "a"`: several packets of one client written together. The
//! bytes of its steps (which only send) go out in one write, or split into
//! writes of `chunk` bytes `pause_ms` apart.
//!
//! Real clients pipeline (CONNECT and SUBSCRIBE in one TCP segment, a burst
//! of PUBLISH packets in one write) and slow links split a packet over many
//! segments; a broker must frame packets from the byte stream whatever the
//! write boundaries were. While a batch runs, the engine's `send` holds the
//! bytes back instead of writing them; the batch then writes them as asked.

use std::time::Duration;

use serde::Deserialize;

use super::{ActionDef, Batched, Step, StepTable, run_steps};
use crate::engine::{Run, StepAt, StepError, StepResult};
use crate::model::Location;
use crate::outcome::Direction;
use crate::script::error::ScriptError;

/// The fields of a `batch` step (besides `steps`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    chunk: Option<usize>,
    pause_ms: Option<u64>,
}

/// Several packets of one client written together: the bytes of the inner
/// steps go out in one write, or split into writes of `chunk` bytes `pause`
/// apart — how real clients pipeline packets into one TCP segment, and how
/// a slow link splits one packet over many.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Client name.
    pub client: String,
    /// The sending steps whose bytes are joined.
    pub steps: Vec<Step>,
    /// Bytes per write; `None` writes everything at once.
    pub chunk: Option<usize>,
    /// Time between two writes of a split batch.
    pub pause: Duration,
}

impl ActionDef for Batch {
    const NAME: &'static str = "batch";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let client = step.client()?;
        let steps_value = step
            .take("steps")
            .ok_or_else(|| step.error("`batch` needs `steps = [ ... ]`"))?;
        let a: Args = step.args()?;
        if a.chunk == Some(0) {
            return Err(step.error("`chunk` is the number of bytes per write: at least 1"));
        }
        if a.pause_ms.is_some() && a.chunk.is_none() {
            return Err(step.error("`pause_ms` goes with `chunk`: without it the batch is one write"));
        }
        let steps = step.steps(steps_value, "`batch` steps")?;
        if steps.is_empty() {
            return Err(step.error("`batch` needs at least one step"));
        }
        for s in &steps {
            check_batched(&step.at, &client, s)?;
        }
        Ok(Batch {
            client,
            steps,
            chunk: a.chunk,
            pause: Duration::from_millis(a.pause_ms.unwrap_or(0)),
        })
    }

    /// Runs the steps (only sending steps, checked when the script was
    /// parsed) with their bytes held back, then writes them: all at once, or
    /// in writes of `chunk` bytes `pause` apart.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let (client, chunk, pause) = (self.client.as_str(), self.chunk, self.pause);
        run.batch = Some((client.to_owned(), Vec::new()));
        let ran = run_steps(run, &self.steps).await;
        let held = run
            .batch
            .take()
            .map(|(_, bytes)| bytes)
            .unwrap_or_default();
        ran?;
        run.require_conn(at, client)?;
        let size = chunk.unwrap_or(held.len()).max(1);
        let writes = held.len().div_ceil(size);
        let how = if writes <= 1 {
            format!("wrote the batch: {} bytes in one write", held.len())
        } else {
            format!(
                "wrote the batch: {} bytes in {writes} writes of at most {size} bytes, {} ms apart",
                held.len(),
                pause.as_millis()
            )
        };
        run.note(client, Direction::Note, how);
        for (i, piece) in held.chunks(size).enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let now = run.elapsed();
            let state = run.client_mut(client);
            state.last_sent = Some(now);
            let result = match state.conn.as_mut() {
                Some(conn) => conn.write(piece).await,
                None => {
                    return Err(StepError::Harness(format!(
                        "{}: the connection of {client:?} went away during the batch",
                        at.location
                    )));
                }
            };
            if let Err(e) = result {
                // The broker closed first; the next expectation sees the close.
                run.note(
                    client,
                    Direction::Note,
                    format!("write {} of {writes} failed: {e}", i + 1),
                );
                break;
            }
        }
        Ok(())
    }
}

/// A step inside a `batch` must only send, for the batch's own client: its
/// bytes are held back until the batch writes them, so a step that waits
/// for an answer (a CONNACK, SUBACK, PUBACK...) would wait for a reply to
/// something not yet sent.
fn check_batched(loc: &Location, client: &str, step: &Step) -> Result<(), ScriptError> {
    let (who, waits) = match step.action.batched() {
        Batched::Sends { client, waits } => (client, waits),
        Batched::Holds(steps) => {
            for s in steps {
                check_batched(loc, client, s)?;
            }
            return Ok(());
        }
        Batched::Refused => {
            return Err(ScriptError::new(
                loc.clone(),
                format!(
                    "a `batch` holds only connect, subscribe, unsubscribe, publish, send, disconnect (close = false) and repeat steps of those, found `{}`",
                    step.action.keyword()
                ),
            ));
        }
    };
    if who != client {
        return Err(ScriptError::new(
            loc.clone(),
            format!(
                "a `batch` for client {client:?} holds a `{}` step for {who:?}: one batch is one connection's bytes",
                step.action.keyword()
            ),
        ));
    }
    if waits {
        return Err(ScriptError::new(
            loc.clone(),
            format!(
                "a `{}` step in a `batch` may not wait for an answer (connack, require, grants, ack, or disconnect's close): its bytes are sent only when the batch ends; check the answers with `expect` steps after the batch",
                step.action.keyword()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn holds_sending_steps_of_its_client() {
        let b: Batch = parse_ok(
            "{ batch = \"a\", chunk = 1, pause_ms = 5, steps = [ { connect = \"a\" }, { repeat = 2, steps = [ { publish = \"a\", topic = \"t\", qos = 1 } ] } ] }",
        );
        assert_eq!((b.client.as_str(), b.steps.len()), ("a", 2));
        assert_eq!((b.chunk, b.pause.as_millis()), (Some(1), 5));
    }

    #[test]
    fn refuses_waiting_and_foreign_steps() {
        let batch = |inner: &str| parse_err(&format!("{{ batch = \"a\", steps = [ {inner} ] }}"));
        for (inner, message) in [
            ("{ connect = \"a\", connack = 0 }", "a `connect` step in a `batch` may not wait"),
            ("{ disconnect = \"a\" }", "a `disconnect` step in a `batch` may not wait"),
            ("{ publish = \"b\", topic = \"t\" }", "a `batch` for client \"a\" holds a `publish` step for \"b\""),
            ("{ wait = 1 }", "a `batch` holds only"),
            ("{ repeat = 1, steps = [ { drop = \"a\" } ] }", "a `batch` holds only"),
            ("", "`batch` needs at least one step"),
        ] {
            let e = batch(inner);
            assert!(e.starts_with(message), "{inner}: {e}");
        }
    }
}
