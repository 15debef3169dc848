//! Waiting for the next arrival and checking it against a matcher: the
//! core of the `expect` step, and of every acknowledgement a step waits for
//! (CONNACK, SUBACK, PUBACK...).

use std::time::Duration;

use mqtt_codec::Packet;
use tokio::time::Instant;

use super::matcher::{check, describe};
use super::{Run, StepAt, StepError, describe_arrival};
use crate::client::Event;
use crate::model::Matcher;

impl Run<'_> {
    /// Waits for the next (unconsumed) arrival and checks it against `m`.
    /// Returns the packet on success. With `skip_publish`, PUBLISH packets
    /// are passed over (a broker may interleave deliveries with the
    /// acknowledgement a step waits for).
    pub(crate) async fn expect_one(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        m: &Matcher,
        within: Duration,
        skip_publish: bool,
    ) -> Result<Option<Packet>, StepError> {
        self.require_conn(at, client)?;
        let within = self.target.scaled(within);
        let deadline = Instant::now() + within;
        let expected = describe(m, &self.ph, &self.vars);
        let Some(i) = self.wait_unconsumed(client, deadline, skip_publish).await else {
            return Err(self.fail(
                at,
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
                    at,
                    Some(client),
                    expected,
                    format!("{} — {diff}", describe_arrival(&a)),
                )),
            },
            _ => Err(self.fail(at, Some(client), expected, describe_arrival(&a))),
        }
    }
}
