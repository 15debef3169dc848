//! `expect_keepalive_close = "a"`: client `a` falls silent, and the server
//! must close it once 1.5 × the keep-alive of its CONNECT has passed, no
//! later than a measured allowance after [MQTT-3.1.2-24].
//!
//! The step first measures this run's round trip: `probes` PINGREQs (3 by
//! default), each answered by a PINGRESP before the next goes out. The
//! silence starts at the last probe's write. Then:
//!
//! - A close before 1.5 × keep-alive passes, and is reported as early:
//!   [MQTT-3.1.2-24] obliges the close once 1.5 × keep-alive has passed,
//!   and §3.1.2.10 lets a server close a client it deems inactive at any
//!   time, so no statement forbids it (an earlier draft of this step failed
//!   it, asking more than the statement). Its close time is in the report.
//!   Any packet other than the close, before it, fails.
//! - The close must be seen by 1.5 × keep-alive + allowance, where
//!   `allowance = time_scale × (2 × the longest probe round trip + 100 ms)`:
//!   the server hears the last probe up to a one-way delay after it was
//!   written and its close takes another to come back (one round trip
//!   together); a second round trip and 100 ms cover the scheduling of the
//!   server's timer and of the harness's reader on a loaded machine (on two
//!   cores shared with builds, wake-ups ran over 50 ms late about once in
//!   500 closes).
//! - A machine can get busy during the silence, after the first probes. So
//!   when the window ends with the connection open (or the close is read
//!   only after the window's end), the round trip is
//!   measured once more, at that moment, on a second connection of its own
//!   (client id `{id}` + name + `K`, keep-alive 0: the silent client stays
//!   silent): its CONNECT/CONNACK and a PINGREQ/PINGRESP. If it is longer,
//!   the allowance is recomputed with it and the wait goes on to the new
//!   end. A server that is late only because it is busy answers late too;
//!   one whose timer is long answers at once and still fails.
//!
//! On loopback the allowance stays near 100 ms, half the 0.2 × keep-alive
//! by which a server closing at 1.7 × keep-alive is late even at a
//! keep-alive of 1 s. The observed close time, the window and the
//! allowance go to the transcript, the failure and the JSON report.

use std::time::Duration;

use mqtt_codec::{Packet, PacketType};
use serde::Deserialize;
use tokio::time::Instant;

use mqtt_codec::raw::RawConnect;

use super::{ActionDef, StepTable};
use crate::client::{Arrival, Event, Transport};
use crate::engine::{Run, StepAt, StepError, StepResult, describe_arrival, simple_packet};
use crate::model::{DEFAULT_WITHIN, Matcher};
use crate::outcome::{CloseTiming, Direction};
use crate::script::error::ScriptError;

/// What the allowance adds to the measured round trips, for the
/// scheduling of timers and readers (before `--time-scale`).
pub const SCHEDULING_ALLOWANCE: Duration = Duration::from_millis(100);

/// The fields of an `expect_keepalive_close` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    probes: Option<u8>,
}

/// Expect the keep-alive close of a client that falls silent.
#[derive(Debug, Clone)]
pub struct ExpectKeepaliveClose {
    /// Client name.
    pub client: String,
    /// How many PINGREQ round trips measure the allowance (1 to 10).
    pub probes: u8,
}

impl ActionDef for ExpectKeepaliveClose {
    const NAME: &'static str = "expect_keepalive_close";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let probes = match a.probes {
            None => 3,
            Some(n @ 1..=10) => n,
            Some(_) => {
                return Err(step.error("`probes` is a count of PINGREQ round trips from 1 to 10"));
            }
        };
        Ok(ExpectKeepaliveClose { client, probes })
    }

    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        run.require_conn(at, client)?;
        let keep_alive = match run.clients.get(client).and_then(|s| s.keep_alive) {
            Some(k) if k > 0 => k,
            _ => {
                return Err(StepError::Harness(format!(
                    "{}: `{}` for client {client:?}, which did not connect with a keep-alive above 0 (script error: give its `connect` step `keep_alive = SECONDS`)",
                    at.location, at.keyword
                )));
            }
        };
        let round_trip = self.probe(run, at).await?;
        let Some(silence_from) = run.clients.get(client).and_then(|s| s.last_sent) else {
            return Err(StepError::Harness("no write recorded after the probes".into()));
        };
        let allowance = run
            .target
            .scaled(round_trip * 2 + SCHEDULING_ALLOWANCE);
        let earliest = Duration::from_millis(u64::from(keep_alive) * 1500);
        let latest = earliest + allowance;
        let mut timing = CloseTiming {
            client: client.to_owned(),
            repeat: 1,
            keep_alive_s: keep_alive,
            closed_after_ms: None,
            earliest_ms: millis(earliest),
            latest_ms: millis(latest),
            round_trip_us: round_trip.as_micros().try_into().unwrap_or(u64::MAX),
            allowance_ms: millis(allowance),
        };
        let mut arrival = wait_until(run, client, silence_from + latest).await;
        let open_or_late = arrival.as_ref().is_none_or(|(_, a)| {
            matches!(a.event, Event::Closed { .. }) && a.at.saturating_sub(silence_from) > latest
        });
        if open_or_late {
            let late = self.probe_aside(run, at).await?;
            if late > round_trip {
                let allowance = run.target.scaled(late * 2 + SCHEDULING_ALLOWANCE);
                timing.round_trip_us = late.as_micros().try_into().unwrap_or(u64::MAX);
                timing.allowance_ms = millis(allowance);
                timing.latest_ms = millis(earliest + allowance);
                if arrival.is_none() {
                    arrival = wait_until(run, client, silence_from + earliest + allowance).await;
                }
            }
        }
        let result = match arrival {
            None => Err(format!(
                "connection still open after {} ms of silence",
                timing.latest_ms
            )),
            Some((i, a)) => {
                let silence = a.at.saturating_sub(silence_from);
                match a.event {
                    Event::Closed { ref reason, .. } => {
                        run.consume(client, i);
                        timing.closed_after_ms = Some(millis(silence));
                        if silence < earliest {
                            // Allowed (§3.1.2.10), so only noted.
                            run.note(
                                client,
                                Direction::Note,
                                format!(
                                    "closed early, after {} ms of silence (before 1.5 × keep-alive: \
                                     a server may close an inactive client at any time, §3.1.2.10)",
                                    millis(silence)
                                ),
                            );
                            Ok(())
                        } else if millis(silence) > timing.latest_ms {
                            // Read together with the deadline's expiry.
                            Err(format!(
                                "connection {reason} after {} ms of silence, after the window",
                                millis(silence)
                            ))
                        } else {
                            Ok(())
                        }
                    }
                    _ => Err(format!(
                        "{} ({} ms into the silence)",
                        describe_arrival(&a),
                        millis(silence)
                    )),
                }
            }
        };
        let expected = format!(
            "the server closes the connection after 1.5 × {keep_alive} s = {} ms of silence, by {} ms (allowance {} ms = {}2 × round trip {:.2} ms + {} ms)",
            timing.earliest_ms,
            timing.latest_ms,
            timing.allowance_ms,
            if run.target.time_scale == 1.0 {
                String::new()
            } else {
                format!("time scale {} × ", run.target.time_scale)
            },
            timing.round_trip_us as f64 / 1000.0,
            SCHEDULING_ALLOWANCE.as_millis(),
        );
        run.note(client, Direction::Note, timing.to_string());
        run.close_timings.push(timing);
        result.map_err(|observed| run.fail(at, Some(client), expected, observed))
    }
}

impl ExpectKeepaliveClose {
    /// Measures the round trip now on a second connection (the silent one
    /// must stay silent): CONNECT with keep-alive 0 to CONNACK, then
    /// PINGREQ to PINGRESP; the longer of the two. The connection is left
    /// to the end of the scenario, which drops it.
    async fn probe_aside(&self, run: &mut Run<'_>, at: StepAt<'_>) -> Result<Duration, StepError> {
        // Uppercase: no scenario client can have this name or id.
        let name = format!("{}K", self.client);
        run.open(&name, Transport::Plain, crate::target::Node::First)
            .await?;
        let mut connect = RawConnect {
            protocol_name: b"MQTT".to_vec(),
            protocol_level: 4,
            flags: None,
            clean_session: true,
            keep_alive: 0,
            client_id: Some(format!("{}{name}", run.ph.client_id).into_bytes()),
            will: None,
            username: None,
            password: None,
        };
        if let Some(c) = &run.target.credentials {
            connect.username = Some(c.username.clone().into_bytes());
            connect.password = Some(c.password.clone().into_bytes());
        }
        let mut longest = Duration::ZERO;
        for (bytes, answer) in [
            (connect.to_packet().to_bytes(), PacketType::ConnAck),
            (
                simple_packet(PacketType::PingReq, None).to_bytes(),
                PacketType::PingResp,
            ),
        ] {
            let sent = run.elapsed();
            run.send(at, &name, &bytes).await?;
            let m = Matcher {
                packet: Some(answer),
                code: (answer == PacketType::ConnAck).then_some(0),
                ..Matcher::default()
            };
            run.expect_one(at, &name, &m, DEFAULT_WITHIN, false).await?;
            longest = longest.max(run.elapsed().saturating_sub(sent));
        }
        Ok(longest)
    }

    /// Sends the probes, each PINGREQ answered by a PINGRESP before the
    /// next; the longest round trip.
    async fn probe(&self, run: &mut Run<'_>, at: StepAt<'_>) -> Result<Duration, StepError> {
        let client = self.client.as_str();
        let pingreq = simple_packet(PacketType::PingReq, None).to_bytes();
        let mut longest = Duration::ZERO;
        for n in 1..=self.probes {
            let sent = run.elapsed();
            run.send(at, client, &pingreq).await?;
            let within = run.target.scaled(DEFAULT_WITHIN);
            let expected = format!(
                "PINGRESP to round-trip probe {n} of {} within {} ms",
                self.probes,
                within.as_millis()
            );
            let Some(i) = run
                .wait_unconsumed(client, Instant::now() + within, false)
                .await
            else {
                return Err(run.fail(at, Some(client), expected, "nothing arrived".into()));
            };
            let Some(a) = run.arrival(client, i).cloned() else {
                return Err(StepError::Harness("arrival index out of range".into()));
            };
            match a.event {
                Event::Packet {
                    packet: Packet::PingResp,
                    ..
                } => {
                    run.consume(client, i);
                    longest = longest.max(a.at.saturating_sub(sent));
                }
                _ => return Err(run.fail(at, Some(client), expected, describe_arrival(&a))),
            }
        }
        Ok(longest)
    }
}

/// The first unconsumed arrival of `client`, waiting until `until` (since
/// the scenario's start); `None` when nothing came by then.
async fn wait_until(run: &mut Run<'_>, client: &str, until: Duration) -> Option<(usize, Arrival)> {
    let deadline = Instant::now() + until.saturating_sub(run.elapsed());
    let i = run.wait_unconsumed(client, deadline, false).await?;
    run.arrival(client, i).cloned().map(|a| (i, a))
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn probes_default_to_three_and_are_bounded() {
        let e: ExpectKeepaliveClose = parse_ok("{ expect_keepalive_close = \"a\" }");
        assert_eq!((e.client.as_str(), e.probes), ("a", 3));
        let e: ExpectKeepaliveClose = parse_ok("{ expect_keepalive_close = \"a\", probes = 10 }");
        assert_eq!(e.probes, 10);
        for step in [
            "{ expect_keepalive_close = \"a\", probes = 0 }",
            "{ expect_keepalive_close = \"a\", probes = 11 }",
        ] {
            assert_eq!(
                parse_err(step),
                "`probes` is a count of PINGREQ round trips from 1 to 10",
                "{step}"
            );
        }
        assert_eq!(
            parse_err("{ expect_keepalive_close = \"a\", within_ms = 5 }"),
            "in `expect_keepalive_close` step: unknown field `within_ms`, expected `probes`"
        );
    }
}
