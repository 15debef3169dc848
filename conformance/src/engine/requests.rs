//! The steps that send a request: SUBSCRIBE, UNSUBSCRIBE, PUBLISH and raw
//! packets, with the packet ids they carry, and the acknowledgement each may
//! wait for.

use bytes::Bytes;
use mqtt_codec::raw::{RawPacket, RawPublish, RawSubscribe, RawUnsubscribe, RemainingLength};
use mqtt_codec::{Packet, PacketType};

use super::grants::{Judgement, Requested, judge};
use super::matcher::bytes_of;
use super::steps::StepResult;
use super::{Run, StepError};
use crate::model::{BytesSpec, GrantSpec, IdSpec, Matcher, SendSpec, Step};

/// A PUBLISH as a script asked for it.
pub(super) struct PublishReq<'s> {
    pub topic: &'s BytesSpec,
    pub payload: &'s BytesSpec,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    pub packet_id: Option<&'s IdSpec>,
    pub flags: Option<u8>,
    pub ack: bool,
}

impl Run<'_> {
    /// Sends SUBSCRIBE; with `grants`, expects its SUBACK and judges the
    /// codes (see [`super::grants`]): a violation fails the step, a grant
    /// below what the scenario needs makes it not applicable, and the rest
    /// binds the captured grants.
    pub(super) async fn subscribe(
        &mut self,
        step: &Step,
        client: &str,
        packet_id: Option<&IdSpec>,
        filters: &[(BytesSpec, u8)],
        flags: Option<u8>,
        grants: Option<&GrantSpec>,
    ) -> StepResult {
        let id = self.id_for(step, client, packet_id)?;
        let raw = RawSubscribe {
            packet_id: id,
            filters: filters
                .iter()
                .map(|(f, q)| (bytes_of(f, &self.ph), *q))
                .collect(),
        };
        let requested: Vec<Requested> = raw
            .filters
            .iter()
            .map(|(f, q)| Requested {
                shown: crate::describe::bytes(f),
                qos: *q,
            })
            .collect();
        let mut packet = raw.to_packet();
        if let Some(f) = flags {
            packet = packet.with_flags(f);
        }
        self.send(step, client, &packet.to_bytes()).await?;
        let Some(spec) = grants else {
            return Ok(());
        };
        let m = Matcher {
            packet: Some(PacketType::SubAck),
            packet_id: Some(IdSpec::Literal(id)),
            ..Matcher::default()
        };
        let packet = self
            .expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, true)
            .await?;
        let Some(Packet::SubAck(suback)) = packet else {
            return Err(StepError::Harness(
                "a SUBACK matcher let another packet through".into(),
            ));
        };
        let codes: Vec<u8> = suback.return_codes.iter().map(|c| c.as_u8()).collect();
        match judge(&requested, &codes, spec) {
            Judgement::Usable(bind) => {
                self.vars.extend(bind);
                Ok(())
            }
            Judgement::NotApplicable(reason) => Err(StepError::NotApplicable(reason)),
            Judgement::Violation(what) => Err(self.fail(
                step,
                Some(client),
                format!(
                    "SUBACK(id={id}) with one code per filter, each granting at most the QoS asked for"
                ),
                what,
            )),
        }
    }

    /// Sends UNSUBSCRIBE; with `ack`, expects its UNSUBACK.
    pub(super) async fn unsubscribe(
        &mut self,
        step: &Step,
        client: &str,
        packet_id: Option<&IdSpec>,
        filters: &[BytesSpec],
        flags: Option<u8>,
        ack: bool,
    ) -> StepResult {
        let id = self.id_for(step, client, packet_id)?;
        let raw = RawUnsubscribe {
            packet_id: id,
            filters: filters.iter().map(|f| bytes_of(f, &self.ph)).collect(),
        };
        let mut packet = raw.to_packet();
        if let Some(f) = flags {
            packet = packet.with_flags(f);
        }
        self.send(step, client, &packet.to_bytes()).await?;
        if ack {
            let m = Matcher {
                packet: Some(PacketType::UnsubAck),
                packet_id: Some(IdSpec::Literal(id)),
                ..Matcher::default()
            };
            self.expect_one(step, client, &m, crate::model::DEFAULT_WITHIN, true)
                .await?;
        }
        Ok(())
    }

    /// Sends PUBLISH, remembering retained topics for the clean-up; with
    /// `ack`, runs the sender's side of the QoS flow.
    pub(super) async fn publish(
        &mut self,
        step: &Step,
        client: &str,
        req: PublishReq<'_>,
    ) -> StepResult {
        let flags = req
            .flags
            .unwrap_or((u8::from(req.dup) << 3) | ((req.qos & 3) << 1) | u8::from(req.retain));
        let wire_qos = (flags >> 1) & 3;
        let id = match req.packet_id {
            Some(spec) => Some(self.resolve_id(step, spec)?),
            None if wire_qos > 0 => Some(self.client_mut(client).alloc_id()),
            None => None,
        };
        let topic = bytes_of(req.topic, &self.ph);
        let payload = bytes_of(req.payload, &self.ph);
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
        if req.ack {
            let id = id.unwrap_or(0);
            self.sender_flow(step, client, req.qos, id).await?;
        }
        Ok(())
    }

    /// Sends raw bytes, or a packet built by type and bent as asked.
    pub(super) async fn send_raw(
        &mut self,
        step: &Step,
        client: &str,
        what: &SendSpec,
    ) -> StepResult {
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
        self.send(step, client, &bytes).await
    }

    pub(super) fn resolve_id(&self, step: &Step, spec: &IdSpec) -> Result<u16, StepError> {
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

    pub(super) fn id_for(
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
