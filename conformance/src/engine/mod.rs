//! The engine context every action runs against: each client's connection,
//! what arrived on it and which arrivals an expectation has consumed, the
//! captured variables, the placeholders of this run and the transcript.
//!
//! An expectation looks at the first arrival not yet consumed (waiting for
//! one, boundedly), so packets are checked in the order the broker sent
//! them. The actions themselves (what `connect`, `expect`, `one_of`... do)
//! live in [`crate::actions`], which builds on this module; this module
//! knows nothing of them. [`crate::runner`] runs a whole scenario.

mod cleanup;
mod connection;
mod expect;
mod flows;
mod grants;
mod matcher;
mod packet_ids;
mod restart;
pub(crate) mod service;
mod strays;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Arrival, Connection, Event};
use crate::model::Location;
use crate::outcome::{CloseTiming, Direction, Failure, Line};
use crate::script::template::Placeholders;
use crate::target::Target;

pub(crate) use connection::transport;
pub(crate) use flows::simple_packet;
pub(crate) use grants::{Judgement, Requested, judge};
pub use matcher::bytes_of;
pub(crate) use matcher::{check, describe};
pub(crate) use restart::Stop;
pub use service::SessionError;
pub(crate) use strays::Stray;
pub use strays::{DUPLICATE_STATEMENT, STRAY_STATEMENT};

/// A client's connection and what arrived on it.
#[derive(Debug, Default)]
pub(crate) struct ClientState {
    /// The live connection, if any.
    pub(crate) conn: Option<Connection>,
    /// What arrived on the current connection, in order.
    pub(crate) log: Vec<Arrival>,
    /// Per arrival of `log`: whether an expectation has consumed it.
    pub(crate) consumed: Vec<bool>,
    /// The reader reported the close (it may not be consumed yet).
    pub(crate) closed: bool,
    /// How this connection's deliveries are judged for strays.
    watch: strays::Watch,
    /// The keep-alive the last CONNECT on this connection asked for.
    pub(crate) keep_alive: Option<u16>,
    /// When the client last wrote to the current connection (since the
    /// scenario's start, taken before the write): where a keep-alive's
    /// silence begins.
    pub(crate) last_sent: Option<Duration>,
    next_id: u16,
}

impl ClientState {
    /// The next packet id for this client: 1, 2, ... 65535, 1 (never 0).
    pub(crate) fn alloc_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        if self.next_id == 0 {
            self.next_id = 1;
        }
        self.next_id
    }
}

/// One scenario being run: the state the actions read and change.
#[derive(Debug)]
pub(crate) struct Run<'a> {
    /// The broker under test.
    pub(crate) target: &'a Target,
    /// This run's placeholder values (`{n}` changes inside `repeat`).
    pub(crate) ph: Placeholders,
    epoch: Instant,
    /// Per client name: its connection and arrivals.
    pub(crate) clients: BTreeMap<String, ClientState>,
    /// Variables captured by expectations and grants (`$p`, `$g`).
    pub(crate) vars: HashMap<String, u16>,
    transcript: Vec<Line>,
    /// Client ids that asked for a persistent session: discarded at the end.
    pub(crate) persistent_ids: BTreeSet<Vec<u8>>,
    /// Topics given a retained message: cleared at the end.
    pub(crate) retained_topics: BTreeSet<Vec<u8>>,
    /// The scenario's name, for the tracing span of each connection.
    name: String,
    /// While a `batch` step runs: its client and the bytes held back.
    pub(crate) batch: Option<(String, Vec<u8>)>,
    /// The scenario sees the whole broker: its deliveries are not judged
    /// for strays.
    pub(crate) exclusive: bool,
    /// Per session (client id): the subscriptions the harness sent.
    subscriptions: strays::Sessions,
    /// Sessions with an empty client id made so far (each its own).
    anonymous: u32,
    /// The stray deliveries seen, in order.
    pub(crate) strays: Vec<Stray>,
    /// The step running now (the innermost), where a stray is reported.
    pub(crate) current: Option<(Location, &'static str)>,
    /// The keep-alive closes observed, for the report.
    pub(crate) close_timings: Vec<CloseTiming>,
}

/// The step being run, as failures and script errors name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepAt<'s> {
    /// Where the step was written.
    pub(crate) location: &'s Location,
    /// Its action keyword.
    pub(crate) keyword: &'static str,
    /// The statements its check stands for (see [`crate::actions::Step`]).
    pub(crate) statements: &'s [String],
}

/// What running a step gives: done, or why the scenario stops.
pub(crate) type StepResult = Result<(), StepError>;

/// Why a step stopped the scenario.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The broker did not do what the step expected (boxed: it is large
    /// and the success path is hot).
    Failed(Box<Failure>),
    /// The broker made a choice the spec allows that leaves the scenario
    /// nothing to check (a lower grant, a refused subscription).
    NotApplicable(String),
    /// The harness could not do its part (e.g. cannot reach the broker).
    Harness(String),
}

impl<'a> Run<'a> {
    /// A run of scenario `name` against `target`, its clock starting now.
    pub(crate) fn new(target: &'a Target, ph: Placeholders, name: String) -> Self {
        Run {
            target,
            ph,
            epoch: Instant::now(),
            clients: BTreeMap::new(),
            vars: HashMap::new(),
            transcript: Vec::new(),
            persistent_ids: BTreeSet::new(),
            retained_topics: BTreeSet::new(),
            name,
            batch: None,
            exclusive: false,
            subscriptions: strays::Sessions::default(),
            anonymous: 0,
            strays: Vec::new(),
            current: None,
            close_timings: Vec::new(),
        }
    }

    /// Time since the scenario started: the clock arrivals are timed by.
    pub(crate) fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The transcript so far, in time order, leaving it empty.
    pub(crate) fn take_transcript(&mut self) -> Vec<Line> {
        let mut transcript = std::mem::take(&mut self.transcript);
        transcript.sort_by_key(|l| l.at);
        transcript
    }
}

impl Run<'_> {
    /// Adds a line to the transcript, timed now.
    pub(crate) fn note(&mut self, client: &str, direction: Direction, text: String) {
        self.transcript.push(Line {
            at: self.epoch.elapsed(),
            client: client.to_owned(),
            direction,
            text,
        });
    }

    /// The failure of the step at `at`: what it expected and what came.
    pub(crate) fn fail(
        &self,
        at: StepAt<'_>,
        client: Option<&str>,
        expected: String,
        observed: String,
    ) -> StepError {
        StepError::Failed(Box::new(Failure {
            location: at.location.clone(),
            step: at.keyword.to_owned(),
            statements: at.statements.to_vec(),
            client: client.map(str::to_owned),
            expected,
            observed,
        }))
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
    pub(crate) async fn pull(&mut self, client: &str, deadline: Instant) -> bool {
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
                if let Event::Packet { packet, .. } = &a.event
                    && self.judge_arrival(client, packet, a.at)
                {
                    self.set_aside(client);
                }
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
    pub(crate) async fn wait_unconsumed(
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

    /// Arrival `i` of `client`'s current connection.
    pub(crate) fn arrival(&self, client: &str, i: usize) -> Option<&Arrival> {
        self.clients.get(client).and_then(|s| s.log.get(i))
    }

    /// Sets `client`'s latest arrival aside as a stray: consumed, so no
    /// expectation sees it, and kept so when a `one_of` branch is undone.
    fn set_aside(&mut self, client: &str) {
        if let Some(state) = self.clients.get_mut(client) {
            let i = state.consumed.len().saturating_sub(1);
            if let Some(c) = state.consumed.last_mut() {
                *c = true;
                state.watch.set_aside.insert(i);
            }
        }
    }

    /// Every client's consumed marks, for [`Run::restore_consumed`].
    pub(crate) fn consumed_marks(&self) -> Vec<(String, Vec<bool>)> {
        self.clients
            .iter()
            .map(|(k, v)| (k.clone(), v.consumed.clone()))
            .collect()
    }

    /// Undoes what expectations consumed since `marks` were taken: arrivals
    /// that came since are unconsumed again, except strays, which stay set
    /// aside.
    pub(crate) fn restore_consumed(&mut self, marks: &[(String, Vec<bool>)]) {
        for (k, consumed) in marks {
            if let Some(state) = self.clients.get_mut(k) {
                let (old, new) = (consumed.len(), state.consumed.len());
                state.consumed.clone_from(consumed);
                let aside = &state.watch.set_aside;
                state
                    .consumed
                    .extend((old..new).map(|i| aside.contains(&i)));
            }
        }
    }

    /// Marks arrival `i` of `client` as consumed by an expectation.
    pub(crate) fn consume(&mut self, client: &str, i: usize) {
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
    pub(crate) async fn finish(&mut self) {
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
