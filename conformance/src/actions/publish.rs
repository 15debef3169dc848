//! `publish = "a"`: sends PUBLISH (any QoS bits, flags, packet id, topic
//! bytes); with `ack`, runs the sender's side of the QoS flow: QoS 1
//! expects PUBACK, QoS 2 expects PUBREC, sends PUBREL and expects PUBCOMP
//! [MQTT-4.3.2-1], [MQTT-4.3.3-1].
//!
//! A retained message is remembered so the scenario's clean-up can clear it;
//! a retained empty payload clears the topic [MQTT-3.3.1-10].

use mqtt_codec::raw::RawPublish;
use serde::Deserialize;

use super::{ActionDef, Batched, StepTable};
use crate::engine::{Run, StepAt, StepResult, bytes_of};
use crate::model::{BytesSpec, IdSpec};
use crate::script::error::ScriptError;
use crate::script::args::IdArg;
use crate::script::values::one_bytes;

/// The fields of a `publish` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    topic: Option<String>,
    topic_hex: Option<String>,
    payload: Option<String>,
    payload_hex: Option<String>,
    payload_size: Option<usize>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    #[serde(default)]
    dup: bool,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    #[serde(default)]
    ack: bool,
}

/// Send PUBLISH; maybe run the sender's side of the QoS flow.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Client name.
    pub client: String,
    /// Topic bytes.
    pub topic: BytesSpec,
    /// Payload.
    pub payload: BytesSpec,
    /// QoS bits (3 allowed).
    pub qos: u8,
    /// RETAIN.
    pub retain: bool,
    /// DUP.
    pub dup: bool,
    /// Packet id: auto for QoS > 0 when `None`.
    pub packet_id: Option<IdSpec>,
    /// Forced fixed-header flags (overrides qos/retain/dup).
    pub flags: Option<u8>,
    /// QoS 1: expect PUBACK. QoS 2: expect PUBREC, send PUBREL, expect PUBCOMP.
    pub ack: bool,
}

impl ActionDef for Publish {
    const NAME: &'static str = "publish";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let loc = &step.at;
        let topic = one_bytes(loc, "topic", a.topic, a.topic_hex, None)?
            .ok_or_else(|| step.error("`publish` needs `topic` or `topic_hex`"))?;
        let payload = one_bytes(loc, "payload", a.payload, a.payload_hex, a.payload_size)?
            .unwrap_or(BytesSpec::Hex(Vec::new()));
        if a.ack && a.qos == 0 {
            return Err(step.error("`ack` needs `qos` 1 or 2"));
        }
        Ok(Publish {
            client,
            topic,
            payload,
            qos: a.qos,
            retain: a.retain,
            dup: a.dup,
            packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
            flags: a.flags,
            ack: a.ack,
        })
    }

    /// Sends PUBLISH, remembering retained topics for the clean-up; with
    /// `ack`, runs the sender's side of the QoS flow.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        let flags = self.flags.unwrap_or(
            (u8::from(self.dup) << 3) | ((self.qos & 3) << 1) | u8::from(self.retain),
        );
        let wire_qos = (flags >> 1) & 3;
        let id = match &self.packet_id {
            Some(spec) => Some(run.resolve_id(at, spec)?),
            None if wire_qos > 0 => Some(run.client_mut(client).alloc_id()),
            None => None,
        };
        let topic = bytes_of(&self.topic, &run.ph);
        let payload = bytes_of(&self.payload, &run.ph);
        if flags & 1 == 1 {
            if payload.is_empty() {
                run.retained_topics.remove(&topic);
            } else {
                run.retained_topics.insert(topic.clone());
            }
        }
        let raw = RawPublish {
            flags,
            topic,
            packet_id: id,
            payload,
        };
        run.send(at, client, &raw.to_packet().to_bytes()).await?;
        if self.ack {
            let id = id.unwrap_or(0);
            run.sender_flow(at, client, self.qos, id).await?;
        }
        Ok(())
    }

    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, self.ack)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn topic_is_required_and_payload_defaults_to_empty() {
        let p: Publish = parse_ok("{ publish = \"a\", topic = \"{t}/x\", qos = 2 }");
        assert_eq!(p.payload, BytesSpec::Hex(Vec::new()));
        assert_eq!((p.qos, p.ack, p.packet_id), (2, false, None));
        assert_eq!(
            parse_err("{ publish = \"a\" }"),
            "`publish` needs `topic` or `topic_hex`"
        );
    }

    #[test]
    fn ack_needs_a_qos_with_a_flow() {
        assert_eq!(
            parse_err("{ publish = \"a\", topic = \"t\", ack = true }"),
            "`ack` needs `qos` 1 or 2"
        );
    }

    #[test]
    fn one_payload_form_only() {
        let e = parse_err("{ publish = \"a\", topic = \"t\", payload = \"x\", payload_size = 3 }");
        assert_eq!(e, "give only one of `payload`, `payload_hex`, `payload_size`");
    }
}
