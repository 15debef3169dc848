//! The QoS 1 and QoS 2 acknowledgement flows the harness runs for a step
//! with `ack = true`: as a sender after its PUBLISH, and as a receiver after
//! a PUBLISH arrived [MQTT-4.3.2-1], [MQTT-4.3.3-1].

use mqtt_codec::PacketType;

use super::Run;
use super::requests::simple_packet;
use super::steps::StepResult;
use crate::model::{IdSpec, Matcher, Step};

impl Run<'_> {
    /// The publisher's side of QoS 1 and 2 after sending a PUBLISH.
    pub(super) async fn sender_flow(
        &mut self,
        step: &Step,
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
    pub(super) async fn receiver_flow(
        &mut self,
        step: &Step,
        client: &str,
        qos: u8,
        id: u16,
    ) -> StepResult {
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
