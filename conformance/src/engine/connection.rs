//! A client's connection: opening it (TCP or TLS), CONNECT, writing bytes,
//! DISCONNECT and dropping it abruptly.

use mqtt_codec::raw::{RawConnect, RawWill};
use mqtt_codec::{Packet, PacketType};
use tokio::time::Instant;

use super::matcher::bytes_of;
use super::steps::StepResult;
use super::{Run, StepError};
use crate::client::{Connection, Event, Transport};
use crate::model::{ConnectSpec, Matcher, Step};
use crate::outcome::Direction;

impl Run<'_> {
    pub(super) fn client_mut(&mut self, client: &str) -> &mut super::ClientState {
        self.clients.entry(client.to_owned()).or_default()
    }

    pub(super) fn close_conn(&mut self, client: &str, note: &str) {
        let state = self.client_mut(client);
        state.conn = None;
        state.log.clear();
        state.consumed.clear();
        state.closed = false;
        self.note(client, Direction::Note, note.to_owned());
    }

    pub(super) fn require_conn(&self, step: &Step, client: &str) -> StepResult {
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

    pub(super) async fn open(&mut self, client: &str, transport: Transport) -> StepResult {
        let tls = transport != Transport::Plain;
        let span = tracing::info_span!("connection", scenario = %self.name, client = %client, tls);
        let conn = Connection::open(self.target, transport, self.epoch, span)
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
        let mut text = match transport {
            Transport::Plain => "opened TCP connection".to_owned(),
            Transport::Tls { client_cert } => {
                let has_cert = self.target.tls.as_ref().is_some_and(|t| t.client_cert);
                match (has_cert, client_cert) {
                    (true, true) => "opened TLS connection with the client certificate".to_owned(),
                    (true, false) => {
                        "opened TLS connection without a client certificate".to_owned()
                    }
                    (false, _) => "opened TLS connection".to_owned(),
                }
            }
        };
        if unread > 0 {
            text.push_str(&format!(
                " ({unread} unread arrivals of the previous one discarded)"
            ));
        }
        self.note(client, Direction::Note, text);
        Ok(())
    }

    pub(super) async fn send(&mut self, step: &Step, client: &str, bytes: &[u8]) -> StepResult {
        self.require_conn(step, client)?;
        let text = crate::describe::sent(bytes);
        if let Some((batched, held)) = self.batch.as_mut()
            && batched == client
        {
            held.extend_from_slice(bytes);
            self.note(
                client,
                Direction::Sent,
                format!("{text} (held for the batch)"),
            );
            return Ok(());
        }
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

    pub(super) async fn connect(
        &mut self,
        step: &Step,
        client: &str,
        spec: &ConnectSpec,
    ) -> StepResult {
        let live = self
            .clients
            .get(client)
            .is_some_and(|s| s.conn.is_some() && !s.closed);
        if !live {
            self.open(client, super::steps::transport(spec.tls, spec.client_cert))
                .await?;
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
        let asked = format!(
            "protocol {} level {}",
            crate::describe::bytes(&raw.protocol_name),
            raw.protocol_level
        );
        self.send(step, client, &raw.to_packet().to_bytes()).await?;
        if spec.refusal_not_applicable
            && let Some(refusal) = self.refusal(client).await
        {
            return Err(StepError::NotApplicable(format!(
                "the broker does not accept a CONNECT with {asked}: it {refusal}"
            )));
        }
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

    /// How the broker refused the CONNECT just sent, if it did: the first
    /// answer is a CONNACK with a non-zero code, or the close. Leaves the
    /// answer unconsumed for the CONNACK check that follows. After a refusing
    /// CONNACK the server must close [MQTT-3.2.2-5]; the close is awaited
    /// (boundedly) so the transcript shows the whole refusal.
    async fn refusal(&mut self, client: &str) -> Option<String> {
        let deadline = Instant::now() + crate::model::DEFAULT_WITHIN;
        let i = self.wait_unconsumed(client, deadline, false).await?;
        let refusal = match &self.arrival(client, i)?.event {
            Event::Closed { reason, .. } => {
                return Some(format!("closed the connection ({reason})"));
            }
            Event::Packet {
                packet: Packet::ConnAck(c),
                ..
            } if c.code.as_u8() != 0 => format!(
                "answered CONNACK 0x{:02x} ({})",
                c.code.as_u8(),
                c.code.describe()
            ),
            _ => return None,
        };
        while !self.clients.get(client).is_some_and(|s| s.closed) {
            if !self.pull(client, deadline).await {
                break;
            }
        }
        Some(refusal)
    }

    /// Sends DISCONNECT and, with `close`, shuts the connection down.
    pub(super) async fn disconnect(
        &mut self,
        step: &Step,
        client: &str,
        close: bool,
    ) -> StepResult {
        self.send(step, client, &[0xe0, 0x00]).await?;
        if close {
            if let Some(conn) = self.client_mut(client).conn.as_mut() {
                conn.shutdown().await;
            }
            self.close_conn(client, "closed the connection after DISCONNECT");
        }
        Ok(())
    }

    /// Closes the socket without DISCONNECT, so the will fires [MQTT-3.1.2-8].
    pub(super) fn drop_conn(&mut self, step: &Step, client: &str) -> StepResult {
        self.require_conn(step, client)?;
        self.close_conn(client, "dropped the connection (no DISCONNECT)");
        Ok(())
    }
}
