//! Builders shared by the tests of the router and of what stands on it (the
//! expiry sweep, the store): a router, a message, a SUBSCRIBE request.

use std::sync::Arc;

use bytes::Bytes;

use super::{Limits, Router};
use crate::stats::Stats;
use mqtt_codec::Message;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{PacketId, QoS, Subscribe, SubscribeFilter};

/// A router with its own statistics, keeping at most `max_queued` messages
/// waiting per client (0: no limit), QoS 0 not queued for offline sessions.
pub fn router(max_queued: usize) -> Router {
    Router::new(
        Limits {
            max_queued,
            queue_qos0: false,
        },
        Arc::new(Stats::new()),
    )
}

/// An application message.
pub fn msg(topic: &str, qos: QoS, retain: bool, payload: &'static str) -> Message {
    Message {
        topic: TopicName::new(topic).expect("valid"),
        payload: Bytes::from_static(payload.as_bytes()),
        qos,
        retain,
    }
}

/// A SUBSCRIBE with packet id 1 for `filters`.
pub fn subscribe(filters: &[(&str, QoS)]) -> Subscribe {
    Subscribe {
        packet_id: PacketId::new(1).expect("non-zero"),
        filters: filters
            .iter()
            .map(|(f, qos)| SubscribeFilter {
                filter: TopicFilter::new(f).expect("valid"),
                qos: *qos,
            })
            .collect(),
    }
}
