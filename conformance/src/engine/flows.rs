//! The QoS 1 and QoS 2 acknowledgement flows the harness runs for a step
//! with `ack = true`: as a sender after its PUBLISH, and as a receiver after
//! a PUBLISH arrived [MQTT-4.3.2-1], [MQTT-4.3.3-1].

use mqtt_codec::PacketType;
use mqtt_codec::raw::RawPacket;

use super::{Run, StepAt, StepResult};
use crate::model::{IdSpec, Matcher};

impl Run<'_> {
    /// The publisher's side of QoS 1 and 2 after sending a PUBLISH.
    pub(crate) async fn sender_flow(
        &mut self,
        at: StepAt<'_>,
        client: &str,
        qos: u8,
        id: u16,
    ) -> StepResult {
        let within = crate::model::DEFAULT_WITHIN;
        let ack = |t| Matcher {
            packet: Some(t),
            packet_id: Some(IdSpec::Literal(id)),
            ..Matcher::default()
        };
        match qos {
            1 => {
                self.expect_one(at, client, &ack(PacketType::PubAck), within, true)
                    .await?;
            }
            2 => {
                self.expect_one(at, client, &ack(PacketType::PubRec), within, true)
                    .await?;
                self.send(
                    at,
                    client,
                    &simple_packet(PacketType::PubRel, Some(id)).to_bytes(),
                )
                .await?;
                self.expect_one(at, client, &ack(PacketType::PubComp), within, true)
                    .await?;
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
            1 => {
                self.send(
                    at,
                    client,
                    &simple_packet(PacketType::PubAck, Some(id)).to_bytes(),
                )
                .await
            }
            2 => {
                self.send(
                    at,
                    client,
                    &simple_packet(PacketType::PubRec, Some(id)).to_bytes(),
                )
                .await?;
                let m = Matcher {
                    packet: Some(PacketType::PubRel),
                    packet_id: Some(IdSpec::Literal(id)),
                    ..Matcher::default()
                };
                self.expect_one(at, client, &m, crate::model::DEFAULT_WITHIN, true)
                    .await?;
                self.send(
                    at,
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
