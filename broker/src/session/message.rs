//! [`Message`]: an application message on its way through the broker.

use bytes::Bytes;

use mqtt_codec::topic::TopicName;
use mqtt_codec::{PacketId, Publish, QoS};

/// An application message as the router moves it: topic, payload, QoS and the
/// RETAIN flag. Cloning costs two reference counts and no allocation, so one
/// PUBLISH can reach many subscribers without copying its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was published.
    pub topic: TopicName,
    /// The payload, shared with the buffer it was read from.
    pub payload: Bytes,
    /// The QoS it travels at (on delivery: the minimum of the published QoS
    /// and the subscription's granted QoS [MQTT-3.8.4-6]).
    pub qos: QoS,
    /// The RETAIN flag it carries.
    pub retain: bool,
}

impl Message {
    /// The message carried by an incoming PUBLISH.
    pub fn from_publish(p: Publish) -> Self {
        Self {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
        }
    }

    /// A copy at `qos` and with `retain`, for one subscriber.
    pub fn for_delivery(&self, qos: QoS, retain: bool) -> Self {
        Self {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos,
            retain,
        }
    }

    /// The PUBLISH that carries this message with `packet_id` (ignored at
    /// QoS 0, where a PUBLISH has none [MQTT-2.3.1-5]).
    pub fn to_publish(&self, packet_id: Option<PacketId>, dup: bool) -> Publish {
        let packet_id = if self.qos == QoS::AtMostOnce {
            None
        } else {
            packet_id
        };
        Publish {
            dup: dup && packet_id.is_some(),
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.clone(),
            packet_id,
            payload: self.payload.clone(),
        }
    }

    /// The size of topic and payload, for byte counters and memory limits.
    pub fn size(&self) -> usize {
        self.topic.as_str().len() + self.payload.len()
    }
}
