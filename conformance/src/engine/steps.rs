//! What each step does on the wire.

use std::time::Duration;

use broker::codec::raw::{
    RawConnect, RawPacket, RawPublish, RawSubscribe, RawUnsubscribe, RawWill, RemainingLength,
};
use broker::codec::{Packet, PacketId, PacketType};
use bytes::Bytes;
use tokio::time::Instant;

use super::matcher::{bytes_of, check, describe};
use super::{Run, StepError, describe_arrival};
use crate::client::{Connection, Event};
use crate::model::{Action, ConnectSpec, IdSpec, Matcher, SendSpec, Step};
use crate::outcome::{Direction, Failure};

type StepResult = Result<(), StepError>;

/// How long the end-of-scenario clean-up may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(3);

impl Run<'_> {
    pub(super) async fn steps(&mut self, steps: &[Step]) -> StepResult {
        for step in steps {
            Box::pin(self.step(step)).await?;
        }
        Ok(())
    }

    fn fail(
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
            Action::Open { client, tls } => {
                self.open(client, *tls).await?;
            }
            Action::Connect { client, spec } => self.connect(step, client, spec).await?,
            Action::Subscribe {
                client,
                packet_id,
                filters,
                flags,
                granted,
            } => {
                let id = self.id_for(step, client, packet_id.as_ref())?;
                let raw = RawSubscribe {
                    packet_id: id,
                    filters: filters
                        .iter()
                        .map(|(f, q)| (bytes_of(f, &self.ph), *q))
                        .collect(),
                };
                let mut packet = raw.to_packet();
                if let Some(f) = flags {
                    packet = packet.with_flags(*f);
                }
                self.send(step, client, &packet.to_bytes()).await?;
                if let Some(codes) = granted {
                    let m = Matcher {
                        packet: Some(PacketType::SubAck),
                        packet_id: Some(IdSpec::Literal(id)),
                        return_codes: Some(codes.clone()),
                        ..Matcher::default()
                    };
                    self.expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, true)
                        .await?;
                }
            }
            Action::Unsubscribe {
                client,
                packet_id,
                filters,
                flags,
                ack,
            } => {
                let id = self.id_for(step, client, packet_id.as_ref())?;
                let raw = RawUnsubscribe {
                    packet_id: id,
                    filters: filters.iter().map(|f| bytes_of(f, &self.ph)).collect(),
                };
                let mut packet = raw.to_packet();
                if let Some(f) = flags {
                    packet = packet.with_flags(*f);
                }
                self.send(step, client, &packet.to_bytes()).await?;
                if *ack {
                    let m = Matcher {
                        packet: Some(PacketType::UnsubAck),
                        packet_id: Some(IdSpec::Literal(id)),
                        ..Matcher::default()
                    };
                    self.expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, true)
                        .await?;
                }
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
                let flags =
                    flags.unwrap_or((u8::from(*dup) << 3) | ((qos & 3) << 1) | u8::from(*retain));
                let wire_qos = (flags >> 1) & 3;
                let id = match packet_id {
                    Some(spec) => Some(self.resolve_id(step, spec)?),
                    None if wire_qos > 0 => Some(self.client_mut(client).alloc_id()),
                    None => None,
                };
                let topic = bytes_of(topic, &self.ph);
                let payload = bytes_of(payload, &self.ph);
                if flags & 1 == 1 {
                    if payload.is_empty() {
                        self.retained_topics.remove(&topic);
                    } else {
                        self.retained_topics.insert(topic.clone());
                    }
                }
                let raw = RawPublish {
                    flags,
                    topic,
                    packet_id: id,
                    payload,
                };
                self.send(step, client, &raw.to_packet().to_bytes()).await?;
                if *ack {
                    let id = id.unwrap_or(0);
                    self.sender_flow(step, client, *qos, id).await?;
                }
            }
            Action::Send { client, what } => {
                let bytes = match what {
                    SendSpec::Hex(b) => Bytes::copy_from_slice(b),
                    SendSpec::Packet {
                        packet,
                        packet_id,
                        flags,
                        body,
                        remaining_length,
                    } => {
                        let id = packet_id
                            .as_ref()
                            .map(|s| self.resolve_id(step, s))
                            .transpose()?;
                        let mut raw = simple_packet(*packet, id);
                        if let Some(f) = flags {
                            raw = raw.with_flags(*f);
                        }
                        if let Some(b) = body {
                            raw = raw.with_body(b.clone());
                        }
                        if let Some(rl) = remaining_length {
                            raw = raw.with_remaining_length(RemainingLength::Value(*rl));
                        }
                        raw.to_bytes()
                    }
                };
                self.send(step, client, &bytes).await?;
            }
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
                    let id = p.packet_id.map_or(0, PacketId::get);
                    self.receiver_flow(step, client, p.qos.as_u8(), id).await?;
                }
            }
            Action::ExpectAll {
                client,
                matchers,
                within,
            } => self.expect_all(step, client, matchers, *within).await?,
            Action::ExpectNothing {
                client,
                matcher,
                duration,
            } => {
                self.expect_nothing(step, client, matcher.as_ref(), *duration)
                    .await?
            }
            Action::ExpectClosed { client, within } => {
                let deadline = Instant::now() + *within;
                self.require_conn(step, client)?;
                match self.wait_unconsumed(client, deadline, false).await {
                    Some(i) => {
                        let a = self.arrival(client, i).cloned();
                        if let Some(a) = a {
                            if matches!(a.event, Event::Closed { .. }) {
                                self.consume(client, i);
                            } else {
                                return Err(self.fail(
                                    step,
                                    Some(client),
                                    format!(
                                        "the server closes the connection within {}ms",
                                        within.as_millis()
                                    ),
                                    describe_arrival(&a),
                                ));
                            }
                        }
                    }
                    None => {
                        return Err(self.fail(
                            step,
                            Some(client),
                            format!(
                                "the server closes the connection within {}ms",
                                within.as_millis()
                            ),
                            "connection still open".into(),
                        ));
                    }
                }
            }
            Action::Disconnect { client, close } => {
                self.send(step, client, &[0xe0, 0x00]).await?;
                if *close {
                    if let Some(conn) = self.client_mut(client).conn.as_mut() {
                        conn.shutdown().await;
                    }
                    self.close_conn(client, "closed the connection after DISCONNECT");
                }
            }
            Action::Drop { client } => {
                self.require_conn(step, client)?;
                self.close_conn(client, "dropped the connection (no DISCONNECT)");
            }
            Action::Wait(d) => tokio::time::sleep(*d).await,
            Action::Repeat { times, steps } => {
                let outer = self.ph.iteration;
                for n in 1..=*times {
                    self.ph.iteration = n;
                    self.steps(steps).await?;
                }
                self.ph.iteration = outer;
            }
            Action::OneOf(branches) => {
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
                return Err(self.fail(
                    step,
                    None,
                    format!("one of {} allowed outcomes", branches.len()),
                    failures.join(" | "),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn client_mut(&mut self, client: &str) -> &mut super::ClientState {
        self.clients.entry(client.to_owned()).or_default()
    }

    fn close_conn(&mut self, client: &str, note: &str) {
        let state = self.client_mut(client);
        state.conn = None;
        state.log.clear();
        state.consumed.clear();
        state.closed = false;
        self.note(client, Direction::Note, note.to_owned());
    }

    fn require_conn(&self, step: &Step, client: &str) -> StepResult {
        if self.clients.get(client).is_some_and(|s| s.conn.is_some()) {
            Ok(())
        } else {
            Err(StepError::Harness(format!(
                "{}: `{}` for client {client:?}, which has no connection (script error: connect or open it first)",
                step.location,
                step.action.keyword()
            )))
        }
    }

    async fn open(&mut self, client: &str, tls: bool) -> StepResult {
        let span = tracing::info_span!("connection", scenario = %self.name, client = %client, tls);
        let conn = Connection::open(self.target, tls, self.epoch, span)
            .await
            .map_err(|e| StepError::Harness(e.to_string()))?;
        let unread = self
            .clients
            .get(client)
            .map_or(0, |s| s.consumed.iter().filter(|c| !**c).count());
        let state = self.client_mut(client);
        state.conn = Some(conn);
        state.log.clear();
        state.consumed.clear();
        state.closed = false;
        let mut text = format!("opened {} connection", if tls { "TLS" } else { "TCP" });
        if unread > 0 {
            text.push_str(&format!(
                " ({unread} unread arrivals of the previous one discarded)"
            ));
        }
        self.note(client, Direction::Note, text);
        Ok(())
    }

    async fn send(&mut self, step: &Step, client: &str, bytes: &[u8]) -> StepResult {
        self.require_conn(step, client)?;
        let text = crate::describe::sent(bytes);
        self.note(client, Direction::Sent, text);
        let result = match self.client_mut(client).conn.as_mut() {
            Some(conn) => conn.write(bytes).await,
            None => Ok(()),
        };
        if let Err(e) = result {
            // The broker closed first; the next expectation will see the close.
            self.note(client, Direction::Note, format!("write failed: {e}"));
        }
        Ok(())
    }

    fn resolve_id(&self, step: &Step, spec: &IdSpec) -> Result<u16, StepError> {
        match spec {
            IdSpec::Literal(n) => Ok(*n),
            IdSpec::Template(t) => {
                let text = self.ph.expand(t);
                text.parse().map_err(|_| {
                    StepError::Harness(format!(
                        "{}: packet id {text:?} is not a number from 0 to 65535 (script error)",
                        step.location
                    ))
                })
            }
            IdSpec::Var(v) => self.vars.get(v).copied().ok_or_else(|| {
                StepError::Harness(format!(
                    "{}: packet id variable ${v} is used before an expectation captured it (script error)",
                    step.location
                ))
            }),
        }
    }

    fn id_for(
        &mut self,
        step: &Step,
        client: &str,
        spec: Option<&IdSpec>,
    ) -> Result<u16, StepError> {
        match spec {
            Some(s) => self.resolve_id(step, s),
            None => Ok(self.client_mut(client).alloc_id()),
        }
    }

    async fn connect(&mut self, step: &Step, client: &str, spec: &ConnectSpec) -> StepResult {
        let live = self
            .clients
            .get(client)
            .is_some_and(|s| s.conn.is_some() && !s.closed);
        if !live {
            self.open(client, spec.tls).await?;
        }
        let ph = &self.ph;
        let mut raw = RawConnect {
            protocol_name: bytes_of(&spec.protocol_name, ph),
            protocol_level: spec.protocol_level,
            flags: spec.flags,
            clean_session: spec.clean_session,
            keep_alive: spec.keep_alive,
            client_id: spec.client_id.as_ref().map(|c| bytes_of(c, ph)),
            will: spec.will.as_ref().map(|w| RawWill {
                topic: bytes_of(&w.topic, ph),
                message: bytes_of(&w.payload, ph),
                qos: w.qos,
                retain: w.retain,
            }),
            username: spec.username.as_ref().map(|u| bytes_of(u, ph)),
            password: spec.password.as_ref().map(|p| bytes_of(p, ph)),
        };
        if spec.credentials
            && let Some(c) = &self.target.credentials
        {
            raw.username = Some(c.username.clone().into_bytes());
            raw.password = Some(c.password.clone().into_bytes());
        }
        if !spec.clean_session
            && let Some(id) = &raw.client_id
        {
            self.persistent_ids.insert(id.clone());
        }
        if let Some(w) = &raw.will
            && w.retain
        {
            self.retained_topics.insert(w.topic.clone());
        }
        self.send(step, client, &raw.to_packet().to_bytes()).await?;
        if let Some(code) = spec.connack {
            let m = Matcher {
                packet: Some(PacketType::ConnAck),
                code: Some(code),
                session_present: spec.session_present,
                ..Matcher::default()
            };
            self.expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, false)
                .await?;
        }
        Ok(())
    }

    /// Waits for the next (unconsumed) arrival and checks it against `m`.
    /// Returns the packet on success.
    async fn expect_one(
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

    async fn expect_all(
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

    async fn expect_nothing(
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

    /// The publisher's side of QoS 1 and 2 after sending a PUBLISH.
    async fn sender_flow(&mut self, step: &Step, client: &str, qos: u8, id: u16) -> StepResult {
        let within = crate::model::DEFAULT_WITHIN;
        let ack = |t| Matcher {
            packet: Some(t),
            packet_id: Some(IdSpec::Literal(id)),
            ..Matcher::default()
        };
        match qos {
            1 => {
                self.expect_one(step, client, &ack(PacketType::PubAck), within, true)
                    .await?;
            }
            2 => {
                self.expect_one(step, client, &ack(PacketType::PubRec), within, true)
                    .await?;
                self.send(
                    step,
                    client,
                    &simple_packet(PacketType::PubRel, Some(id)).to_bytes(),
                )
                .await?;
                self.expect_one(step, client, &ack(PacketType::PubComp), within, true)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The receiver's side of QoS 1 and 2 after a PUBLISH arrived.
    async fn receiver_flow(&mut self, step: &Step, client: &str, qos: u8, id: u16) -> StepResult {
        match qos {
            1 => {
                self.send(
                    step,
                    client,
                    &simple_packet(PacketType::PubAck, Some(id)).to_bytes(),
                )
                .await
            }
            2 => {
                self.send(
                    step,
                    client,
                    &simple_packet(PacketType::PubRec, Some(id)).to_bytes(),
                )
                .await?;
                let m = Matcher {
                    packet: Some(PacketType::PubRel),
                    packet_id: Some(IdSpec::Literal(id)),
                    ..Matcher::default()
                };
                self.expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, true)
                    .await?;
                self.send(
                    step,
                    client,
                    &simple_packet(PacketType::PubComp, Some(id)).to_bytes(),
                )
                .await
            }
            _ => Ok(()),
        }
    }
}

/// A packet of `t` with the required flags and, for the types that carry
/// one, the packet id `id` (0 when none was given).
pub(super) fn simple_packet(t: PacketType, id: Option<u16>) -> RawPacket {
    let first = ((t as u8) << 4) | t.required_flags().unwrap_or(0);
    let body: Vec<u8> = match t {
        PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::UnsubAck => id.unwrap_or(0).to_be_bytes().to_vec(),
        PacketType::ConnAck => vec![0, 0],
        PacketType::SubAck => {
            let mut b = id.unwrap_or(0).to_be_bytes().to_vec();
            b.push(0);
            b
        }
        _ => match id {
            Some(i) => i.to_be_bytes().to_vec(),
            None => Vec::new(),
        },
    };
    RawPacket::new(first, body)
}

/// Best-effort: discards the persistent sessions and retained messages the
/// scenario created, so a long-lived broker is left as it was found. Errors
/// are ignored: the scenario's verdict is already decided.
pub(super) async fn cleanup(run: &mut Run<'_>) {
    if run.persistent_ids.is_empty() && run.retained_topics.is_empty() {
        return;
    }
    let ids = std::mem::take(&mut run.persistent_ids);
    let topics = std::mem::take(&mut run.retained_topics);
    let target = run.target;
    let epoch = run.epoch;
    let work = async move {
        for id in ids {
            let _ = clean_connect(target, epoch, id, &[]).await;
        }
        if !topics.is_empty() {
            let topics: Vec<Vec<u8>> = topics.into_iter().collect();
            let _ = clean_connect(target, epoch, Vec::new(), &topics).await;
        }
    };
    let _ = tokio::time::timeout(CLEANUP_TIMEOUT, work).await;
}

async fn clean_connect(
    target: &crate::target::Target,
    epoch: Instant,
    client_id: Vec<u8>,
    clear: &[Vec<u8>],
) -> Option<()> {
    let mut conn = Connection::open(target, false, epoch, tracing::Span::none())
        .await
        .ok()?;
    let mut raw = RawConnect {
        client_id: Some(client_id),
        ..RawConnect::default()
    };
    if let Some(c) = &target.credentials {
        raw.username = Some(c.username.clone().into_bytes());
        raw.password = Some(c.password.clone().into_bytes());
    }
    conn.write(&raw.to_packet().to_bytes()).await.ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    match conn.next(deadline).await?.event {
        Event::Packet {
            packet: Packet::ConnAck(c),
            ..
        } if c.code.as_u8() == 0 => {}
        _ => return None,
    }
    for topic in clear {
        let p = RawPublish {
            flags: 0b0001,
            topic: topic.clone(),
            packet_id: None,
            payload: Vec::new(),
        };
        conn.write(&p.to_packet().to_bytes()).await.ok()?;
    }
    conn.write(&[0xe0, 0x00]).await.ok()?;
    conn.shutdown().await;
    // Wait for the broker to close so the DISCONNECT is processed before the
    // next scenario might look.
    while let Some(a) = conn.next(deadline).await {
        if matches!(a.event, Event::Closed { .. }) {
            break;
        }
    }
    Some(())
}
