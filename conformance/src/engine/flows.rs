//! The QoS 1 and QoS 2 acknowledgement flows the harness runs for a step
//! with `ack = true`: as a sender after its PUBLISH, and as a receiver after
//! a PUBLISH arrived [MQTT-4.3.2-1], [MQTT-4.3.3-1].

use mqtt_codec::raw::RawPacket;
use mqtt_codec::{Packet, PacketType};

use super::{Run, StepAt, StepError, StepResult};
use crate::model::{DEFAULT_WITHIN, IdSpec, Matcher};

impl Run<'_> {
    /// The publisher's side of QoS 1 and 2 after sending a PUBLISH.
    pub(crate) async fn sender_flow(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        qos: u8,
        id: u16,
    ) -> StepResult {
        match qos {
            1 => {
                self.expect_ack(at, client, PacketType::PubAck, id).await?;
            }
            2 => {
                self.expect_ack(at, client, PacketType::PubRec, id).await?;
                self.send_ack(at, client, PacketType::PubRel, id).await?;
                self.expect_ack(at, client, PacketType::PubComp, id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The receiver's side of QoS 1 and 2 after a PUBLISH arrived.
    pub(crate) async fn receiver_flow(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        qos: u8,
        id: u16,
    ) -> StepResult {
        match qos {
            1 => self.send_ack(at, client, PacketType::PubAck, id).await,
            2 => {
                self.send_ack(at, client, PacketType::PubRec, id).await?;
                self.expect_ack(at, client, PacketType::PubRel, id).await?;
                self.send_ack(at, client, PacketType::PubComp, id).await
            }
            _ => Ok(()),
        }
    }

    /// Expects the acknowledgement `t` (PUBACK, PUBREC, PUBREL, PUBCOMP,
    /// SUBACK, UNSUBACK) carrying packet id `id`, within the default bound,
    /// passing over the PUBLISH packets a broker may interleave; returns it.
    pub(crate) async fn expect_ack(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        t: PacketType,
        id: u16,
    ) -> Result<Option<Packet>, StepError> {
        let m = Matcher {
            packet: Some(t),
            packet_id: Some(IdSpec::Literal(id)),
            ..Matcher::default()
        };
        self.expect_one(at, client, &m, DEFAULT_WITHIN, true).await
    }

    /// Sends the acknowledgement `t` carrying packet id `id`.
    async fn send_ack(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        t: PacketType,
        id: u16,
    ) -> StepResult {
        self.send(at, client, &simple_packet(t, Some(id)).to_bytes())
            .await
    }
}

/// A packet of `t` with the required flags and, for the types that carry
/// one, the packet id `id` (0 when none was given).
pub(crate) fn simple_packet(t: PacketType, id: Option<u16>) -> RawPacket {
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
