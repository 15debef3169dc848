//! The expectation steps: the next packet matches (`expect`), these packets
//! in any order (`expect_all`), nothing (matching) for a while
//! (`expect_nothing`), and the server closing the connection
//! (`expect_closed`).

use std::time::Duration;

use mqtt_codec::Packet;
use tokio::time::Instant;

use super::matcher::{check, describe};
use super::steps::StepResult;
use super::{Run, StepError, describe_arrival};
use crate::client::Event;
use crate::model::{Matcher, Step};

impl Run<'_> {
    /// Waits for the next (unconsumed) arrival and checks it against `m`.
    /// Returns the packet on success.
    pub(super) async fn expect_one(
        &mut self,
        step: &Step,
        client: &str,
        m: &Matcher,
        within: Duration,
        skip_publish: bool,
    ) -> Result<Option<Packet>, StepError> {
        self.require_conn(step, client)?;
        let deadline = Instant::now() + within;
        let expected = describe(m, &self.ph, &self.vars);
        let Some(i) = self.wait_unconsumed(client, deadline, skip_publish).await else {
            return Err(self.fail(
                step,
                Some(client),
                format!("{expected} within {}ms", within.as_millis()),
                if self.clients.get(client).is_some_and(|c| c.closed) {
                    "nothing arrived before the connection closed".into()
                } else {
                    "nothing arrived".into()
                },
            ));
        };
        let Some(a) = self.arrival(client, i).cloned() else {
            return Err(StepError::Harness("arrival index out of range".into()));
        };
        match &a.event {
            Event::Packet { packet, .. } => match check(m, packet, &self.ph, &self.vars) {
                Ok(bind) => {
                    self.consume(client, i);
                    self.vars.extend(bind);
                    Ok(Some(packet.clone()))
                }
                Err(diff) => Err(self.fail(
                    step,
                    Some(client),
                    expected,
                    format!("{} — {diff}", describe_arrival(&a)),
                )),
            },
            _ => Err(self.fail(step, Some(client), expected, describe_arrival(&a))),
        }
    }

    pub(super) async fn expect_all(
        &mut self,
        step: &Step,
        client: &str,
        matchers: &[Matcher],
        within: Duration,
    ) -> StepResult {
        self.require_conn(step, client)?;
        let deadline = Instant::now() + within;
        let mut done = vec![false; matchers.len()];
        let all = || {
            matchers
                .iter()
                .map(|m| describe(m, &self.ph, &self.vars))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let expected = format!("in any order: {}", all());
        while done.iter().any(|d| !d) {
            let Some(i) = self.wait_unconsumed(client, deadline, false).await else {
                let missing: Vec<String> = matchers
                    .iter()
                    .zip(&done)
                    .filter(|(_, d)| !**d)
                    .map(|(m, _)| describe(m, &self.ph, &self.vars))
                    .collect();
                return Err(self.fail(
                    step,
                    Some(client),
                    expected,
                    format!(
                        "still missing after {}ms: {}",
                        within.as_millis(),
                        missing.join(", ")
                    ),
                ));
            };
            let Some(a) = self.arrival(client, i).cloned() else {
                return Err(StepError::Harness("arrival index out of range".into()));
            };
            let hit = match &a.event {
                Event::Packet { packet, .. } => matchers.iter().enumerate().find_map(|(k, m)| {
                    if done[k] {
                        return None;
                    }
                    check(m, packet, &self.ph, &self.vars).ok().map(|b| (k, b))
                }),
                _ => None,
            };
            match hit {
                Some((k, bind)) => {
                    done[k] = true;
                    self.consume(client, i);
                    self.vars.extend(bind);
                }
                None => {
                    return Err(self.fail(
                        step,
                        Some(client),
                        expected,
                        format!("unexpected {}", describe_arrival(&a)),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) async fn expect_nothing(
        &mut self,
        step: &Step,
        client: &str,
        m: Option<&Matcher>,
        duration: Duration,
    ) -> StepResult {
        self.require_conn(step, client)?;
        let deadline = Instant::now() + duration;
        let what = m.map_or("nothing".to_owned(), |m| {
            format!("no {}", describe(m, &self.ph, &self.vars))
        });
        let expected = format!("{what} for {}ms", duration.as_millis());
        loop {
            let hit = {
                let state = self.clients.get(client);
                state
                    .and_then(|s| {
                        s.log.iter().zip(&s.consumed).find(|(a, c)| {
                            !**c && match (m, &a.event) {
                                (None, _) => true,
                                (Some(m), Event::Packet { packet, .. }) => {
                                    check(m, packet, &self.ph, &self.vars).is_ok()
                                }
                                (Some(_), _) => false,
                            }
                        })
                    })
                    .map(|(a, _)| describe_arrival(a))
            };
            if let Some(found) = hit {
                return Err(self.fail(step, Some(client), expected, found));
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            if !self.pull(client, deadline).await && Instant::now() < deadline {
                tokio::time::sleep_until(deadline).await;
            }
        }
    }

    /// The server closes the connection within `within`, before anything
    /// else arrives; with `tls_refused`, by refusing the TLS handshake or
    /// with a fatal TLS alert.
    pub(super) async fn expect_closed(
        &mut self,
        step: &Step,
        client: &str,
        within: Duration,
        tls_refused: bool,
    ) -> StepResult {
        let deadline = Instant::now() + within;
        self.require_conn(step, client)?;
        let expected = format!(
            "the server closes the connection{} within {}ms",
            if tls_refused {
                " at the TLS layer (handshake refused or fatal alert)"
            } else {
                ""
            },
            within.as_millis()
        );
        let Some(i) = self.wait_unconsumed(client, deadline, false).await else {
            return Err(self.fail(step, Some(client), expected, "connection still open".into()));
        };
        let Some(a) = self.arrival(client, i).cloned() else {
            return Err(StepError::Harness("arrival index out of range".into()));
        };
        match a.event {
            Event::Closed { by_tls, .. } if by_tls || !tls_refused => {
                self.consume(client, i);
                Ok(())
            }
            _ => Err(self.fail(step, Some(client), expected, describe_arrival(&a))),
        }
    }
}
