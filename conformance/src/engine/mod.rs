//! The scenario engine: runs one [`Scenario`]'s steps against a [`Target`]
//! and returns its [`ScenarioResult`].
//!
//! Each client keeps the log of what arrived on its current connection and
//! which arrivals an expectation has consumed. An expectation looks at the
//! first arrival not yet consumed (waiting for one, boundedly), so packets are
//! checked in the order the broker sent them. `one_of` tries its branches in
//! turn, restoring the consumed marks and variables between tries; branches
//! hold only expectations, so nothing irreversible happens inside one.

mod batch;
mod cleanup;
mod connection;
mod expect;
mod flows;
mod grants;
mod matcher;
mod requests;
mod steps;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Arrival, Connection, Event};
use crate::model::Scenario;
use crate::outcome::{Direction, Failure, Line, ScenarioResult, Verdict};
use crate::script::Placeholders;
use crate::target::Target;

pub use matcher::bytes_of;

/// The longest a scenario may run before it is stopped as an error.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// A client's connection and what arrived on it.
#[derive(Debug, Default)]
struct ClientState {
    conn: Option<Connection>,
    log: Vec<Arrival>,
    consumed: Vec<bool>,
    /// The reader reported the close (it may not be consumed yet).
    closed: bool,
    next_id: u16,
}

impl ClientState {
    fn alloc_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }
}

/// One scenario being run.
#[derive(Debug)]
struct Run<'a> {
    target: &'a Target,
    ph: Placeholders,
    epoch: Instant,
    clients: BTreeMap<String, ClientState>,
    vars: HashMap<String, u16>,
    transcript: Vec<Line>,
    /// Client ids that asked for a persistent session: discarded at the end.
    persistent_ids: BTreeSet<Vec<u8>>,
    /// Topics given a retained message: cleared at the end.
    retained_topics: BTreeSet<Vec<u8>>,
    /// The scenario's name, for the tracing span of each connection.
    name: String,
    /// While a `batch` step runs: its client and the bytes held back.
    batch: Option<(String, Vec<u8>)>,
}

/// Runs `scenario` against `target` with the given placeholder values.
pub async fn run_scenario(
    scenario: &Scenario,
    target: &Target,
    ph: Placeholders,
) -> ScenarioResult {
    let started = std::time::Instant::now();
    let mut run = Run {
        target,
        ph,
        epoch: Instant::now(),
        clients: BTreeMap::new(),
        vars: HashMap::new(),
        transcript: Vec::new(),
        persistent_ids: BTreeSet::new(),
        retained_topics: BTreeSet::new(),
        name: scenario.name.clone(),
        batch: None,
    };
    let outcome = tokio::time::timeout(SCENARIO_TIMEOUT, run.steps(&scenario.steps)).await;
    let verdict = match outcome {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(StepError::Failed(failure))) => Verdict::Fail { failure: *failure },
        Ok(Err(StepError::NotApplicable(reason))) => Verdict::NotApplicable { reason },
        Ok(Err(StepError::Harness(message))) => Verdict::Error { message },
        Err(_) => Verdict::Error {
            message: format!("scenario did not finish within {SCENARIO_TIMEOUT:?}"),
        },
    };
    run.finish().await;
    let mut transcript = std::mem::take(&mut run.transcript);
    transcript.sort_by_key(|l| l.at);
    ScenarioResult::new(scenario, verdict, started.elapsed(), transcript)
}

/// Why a step stopped the scenario.
#[derive(Debug)]
enum StepError {
    /// The broker did not do what the step expected (boxed: it is large
    /// and the success path is hot).
    Failed(Box<Failure>),
    /// The broker made a choice the spec allows that leaves the scenario
    /// nothing to check (a lower grant, a refused subscription).
    NotApplicable(String),
    /// The harness could not do its part (e.g. cannot reach the broker).
    Harness(String),
}

impl Run<'_> {
    fn note(&mut self, client: &str, direction: Direction, text: String) {
        self.transcript.push(Line {
            at: self.epoch.elapsed(),
            client: client.to_owned(),
            direction,
            text,
        });
    }

    fn record_arrival(&mut self, client: &str, a: &Arrival) {
        let text = match &a.event {
            Event::Packet { packet, .. } => crate::describe::packet(packet),
            Event::Garbage { bytes, error } => {
                format!(
                    "undecodable bytes 0x{} ({error})",
                    crate::describe::hex(&bytes[..bytes.len().min(64)])
                )
            }
            Event::Closed { reason, .. } => format!("connection {reason}"),
        };
        self.transcript.push(Line {
            at: a.at,
            client: client.to_owned(),
            direction: if matches!(a.event, Event::Closed { .. }) {
                Direction::Note
            } else {
                Direction::Received
            },
            text,
        });
    }

    /// Takes one more arrival for `client` into its log, waiting until
    /// `deadline`. Returns false on timeout or when nothing more can come.
    async fn pull(&mut self, client: &str, deadline: Instant) -> bool {
        let Some(state) = self.clients.get_mut(client) else {
            return false;
        };
        let Some(conn) = state.conn.as_mut() else {
            return false;
        };
        if state.closed {
            // Nothing follows a close: no point waiting for the deadline.
            return false;
        }
        match conn.next(deadline).await {
            Some(a) => {
                state.closed |= matches!(a.event, Event::Closed { .. });
                state.log.push(a.clone());
                state.consumed.push(false);
                self.record_arrival(client, &a);
                true
            }
            None => false,
        }
    }

    fn first_unconsumed(&self, client: &str, skip_publish: bool) -> Option<usize> {
        let state = self.clients.get(client)?;
        state.consumed.iter().enumerate().position(|(i, c)| {
            let is_publish = matches!(
                state.log.get(i).map(|a| &a.event),
                Some(Event::Packet {
                    packet: mqtt_codec::Packet::Publish(_),
                    ..
                })
            );
            let skipped = skip_publish && is_publish;
            !*c && !skipped
        })
    }

    /// The index of the first unconsumed arrival, waiting for one until
    /// `deadline`. With `skip_publish`, PUBLISH packets are passed over (left
    /// unconsumed): the spec lets a broker interleave deliveries with the
    /// acknowledgement a step is waiting for.
    async fn wait_unconsumed(
        &mut self,
        client: &str,
        deadline: Instant,
        skip_publish: bool,
    ) -> Option<usize> {
        loop {
            if let Some(i) = self.first_unconsumed(client, skip_publish) {
                return Some(i);
            }
            if !self.pull(client, deadline).await {
                return None;
            }
        }
    }

    fn arrival(&self, client: &str, i: usize) -> Option<&Arrival> {
        self.clients.get(client).and_then(|s| s.log.get(i))
    }

    fn consume(&mut self, client: &str, i: usize) {
        if let Some(c) = self
            .clients
            .get_mut(client)
            .and_then(|s| s.consumed.get_mut(i))
        {
            *c = true;
        }
    }

    /// Drops every connection, records what arrived unread, and discards
    /// the sessions and retained messages the scenario left on the broker.
    async fn finish(&mut self) {
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for name in names {
            if let Some(state) = self.clients.get_mut(&name) {
                let mut late = Vec::new();
                if let Some(conn) = state.conn.as_mut() {
                    while let Some(a) = conn.try_next() {
                        late.push(a);
                    }
                }
                state.conn = None;
                for a in late {
                    self.record_arrival(&name, &a);
                }
            }
        }
        cleanup::cleanup(self).await;
    }
}

/// An arrival as text with its time.
pub(crate) fn describe_arrival(a: &Arrival) -> String {
    let what = match &a.event {
        Event::Packet { packet, .. } => crate::describe::packet(packet),
        Event::Garbage { bytes, error } => format!(
            "undecodable bytes 0x{} ({error})",
            crate::describe::hex(&bytes[..bytes.len().min(64)])
        ),
        Event::Closed { reason, .. } => format!("connection {reason}"),
    };
    format!("{what} at {}ms", a.at.as_millis())
}
