//! The `batch` step: the bytes of several sending steps of one client,
//! written together in one write, or split into small writes with pauses.
//!
//! Real clients pipeline (CONNECT and SUBSCRIBE in one TCP segment, a burst
//! of PUBLISH packets in one write) and slow links split a packet over many
//! segments; a broker must frame packets from the byte stream whatever the
//! write boundaries were. While a batch runs, [`Run::send`] holds the bytes
//! back instead of writing them; the batch then writes them as asked.

use std::time::Duration;

use super::steps::StepResult;
use super::{Run, StepError};
use crate::model::Step;
use crate::outcome::Direction;

impl Run<'_> {
    /// Runs `steps` (only sending steps, checked when the script was parsed)
    /// with their bytes held back, then writes them: all at once, or in
    /// writes of `chunk` bytes `pause` apart.
    pub(super) async fn batch(
        &mut self,
        step: &Step,
        client: &str,
        steps: &[Step],
        chunk: Option<usize>,
        pause: Duration,
    ) -> StepResult {
        self.batch = Some((client.to_owned(), Vec::new()));
        let ran = self.steps(steps).await;
        let held = self
            .batch
            .take()
            .map(|(_, bytes)| bytes)
            .unwrap_or_default();
        ran?;
        self.require_conn(step, client)?;
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
        self.note(client, Direction::Note, how);
        for (i, piece) in held.chunks(size).enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let result = match self.client_mut(client).conn.as_mut() {
                Some(conn) => conn.write(piece).await,
                None => {
                    return Err(StepError::Harness(format!(
                        "{}: the connection of {client:?} went away during the batch",
                        step.location
                    )));
                }
            };
            if let Err(e) = result {
                // The broker closed first; the next expectation sees the close.
                self.note(
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
