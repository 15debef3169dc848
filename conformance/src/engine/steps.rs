//! Running steps: the dispatch from each [`Action`] to the module that
//! carries it out, `repeat`, and `one_of` with its restore-and-retry.

use mqtt_codec::{Packet, PacketId};

use super::requests::PublishReq;
use super::{Run, StepError};
use crate::client::Transport;
use crate::model::{Action, Step};
use crate::outcome::Failure;

pub(super) type StepResult = Result<(), StepError>;

/// The transport a step's `tls` and `client_cert` fields ask for.
pub(super) fn transport(tls: bool, client_cert: bool) -> Transport {
    if tls {
        Transport::Tls { client_cert }
    } else {
        Transport::Plain
    }
}

impl Run<'_> {
    pub(super) async fn steps(&mut self, steps: &[Step]) -> StepResult {
        for step in steps {
            Box::pin(self.step(step)).await?;
        }
        Ok(())
    }

    pub(super) fn fail(
        &self,
        step: &Step,
        client: Option<&str>,
        expected: String,
        observed: String,
    ) -> StepError {
        StepError::Failed(Box::new(Failure {
            location: step.location.clone(),
            step: step.action.keyword().to_owned(),
            client: client.map(str::to_owned),
            expected,
            observed,
        }))
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        match &step.action {
            Action::Open {
                client,
                tls,
                client_cert,
            } => self.open(client, transport(*tls, *client_cert)).await,
            Action::Connect { client, spec } => self.connect(step, client, spec).await,
            Action::Subscribe {
                client,
                packet_id,
                filters,
                flags,
                grants,
            } => {
                self.subscribe(
                    step,
                    client,
                    packet_id.as_ref(),
                    filters,
                    *flags,
                    grants.as_ref(),
                )
                .await
            }
            Action::Unsubscribe {
                client,
                packet_id,
                filters,
                flags,
                ack,
            } => {
                self.unsubscribe(step, client, packet_id.as_ref(), filters, *flags, *ack)
                    .await
            }
            Action::Publish {
                client,
                topic,
                payload,
                qos,
                retain,
                dup,
                packet_id,
                flags,
                ack,
            } => {
                let req = PublishReq {
                    topic,
                    payload,
                    qos: *qos,
                    retain: *retain,
                    dup: *dup,
                    packet_id: packet_id.as_ref(),
                    flags: *flags,
                    ack: *ack,
                };
                self.publish(step, client, req).await
            }
            Action::Send { client, what } => self.send_raw(step, client, what).await,
            Action::Expect {
                client,
                matcher,
                within,
                ack,
            } => {
                let packet = self
                    .expect_one(step, client, matcher, *within, false)
                    .await?;
                if *ack && let Some(Packet::Publish(p)) = packet {
                    let id = p.packet_id().map_or(0, PacketId::get);
                    self.receiver_flow(step, client, p.qos().as_u8(), id)
                        .await?;
                }
                Ok(())
            }
            Action::ExpectAll {
                client,
                matchers,
                within,
            } => self.expect_all(step, client, matchers, *within).await,
            Action::ExpectNothing {
                client,
                matcher,
                duration,
            } => {
                self.expect_nothing(step, client, matcher.as_ref(), *duration)
                    .await
            }
            Action::ExpectClosed {
                client,
                within,
                tls_refused,
            } => {
                self.expect_closed(step, client, *within, *tls_refused)
                    .await
            }
            Action::Disconnect { client, close } => self.disconnect(step, client, *close).await,
            Action::Drop { client } => self.drop_conn(step, client),
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
            Action::Repeat { times, steps } => {
                let outer = self.ph.iteration;
                for n in 1..=*times {
                    self.ph.iteration = n;
                    self.steps(steps).await?;
                }
                self.ph.iteration = outer;
                Ok(())
            }
            Action::OneOf(branches) => self.one_of(step, branches).await,
            Action::Batch {
                client,
                steps,
                chunk,
                pause,
            } => self.batch(step, client, steps, *chunk, *pause).await,
        }
    }

    /// Tries each branch in turn; between tries the consumed marks and the
    /// variables are restored, so a branch that failed half-way leaves no
    /// trace. Branches only observe, so nothing else needs undoing.
    async fn one_of(&mut self, step: &Step, branches: &[Vec<Step>]) -> StepResult {
        let saved: Vec<(String, Vec<bool>)> = self
            .clients
            .iter()
            .map(|(k, v)| (k.clone(), v.consumed.clone()))
            .collect();
        let saved_vars = self.vars.clone();
        let mut failures = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            match self.steps(branch).await {
                Ok(()) => return Ok(()),
                Err(StepError::Failed(f)) => {
                    failures.push(format!(
                        "branch {}: expected {}; observed {}",
                        i + 1,
                        f.expected,
                        f.observed
                    ));
                    for (k, consumed) in &saved {
                        if let Some(state) = self.clients.get_mut(k) {
                            let extra = state.consumed.len().saturating_sub(consumed.len());
                            state.consumed.clone_from(consumed);
                            state.consumed.extend(std::iter::repeat_n(false, extra));
                        }
                    }
                    self.vars.clone_from(&saved_vars);
                }
                Err(e) => return Err(e),
            }
        }
        Err(self.fail(
            step,
            None,
            format!("one of {} allowed outcomes", branches.len()),
            failures.join(" | "),
        ))
    }
}
