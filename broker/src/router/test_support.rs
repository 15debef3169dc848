//! Builders shared by the tests of the router, of what stands on it (the
//! expiry sweep, the store) and of the session's SUBSCRIBE handling: a
//! router, a message, a SUBSCRIBE request.

use std::sync::Arc;

use bytes::Bytes;

use super::{Attachment, Limits, Router};
use crate::stats::Stats;
use mqtt_codec::Message;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{Packet, PacketId, QoS, SubAck, Subscribe, SubscribeFilter, Unsubscribe};

/// A router with its own statistics, keeping at most `max_queued` messages
/// waiting per client (0: no limit), QoS 0 not queued for offline sessions.
/// It records what changes, as with a store, so a test may save it.
pub fn router(max_queued: usize) -> Router {
    let r = Router::new(
        Limits {
            max_queued,
            max_queued_bytes: 0,
            queue_qos0: false,
        },
        Arc::new(Stats::new()),
    );
    r.track_changes(false);
    r
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

/// Subscribes `a`'s session as its connection does: the router grants, the
/// session records the grants and builds the SUBACK. Returns the SUBACK and
/// the retained messages sent after it, fed from the router as the
/// connection would (with the outbox empty before, that is all it holds).
pub fn subscribe_session(
    r: &Router,
    a: &mut Attachment,
    request: Subscribe,
) -> (SubAck, Vec<Message>) {
    let grants = r.subscribe(&a.slot, &request.filters);
    let suback = a.session.granted(request, grants.return_codes);
    let mut retained = Vec::new();
    loop {
        let owed = r.feed_retained(&a.slot);
        let more = a.slot.take(&mut retained, usize::MAX, usize::MAX).more;
        if !owed && !more {
            return (suback, retained);
        }
    }
}

/// Unsubscribes `a`'s session as its connection does; returns the UNSUBACK.
pub fn unsubscribe_session(r: &Router, a: &mut Attachment, request: Unsubscribe) -> Packet {
    let (held, unsuback) = a.session.unsubscribe(request);
    r.unsubscribe(&a.slot, &held);
    unsuback
}

/// Parks a persistent session `id` subscribed to `q/#` at QoS 2, with one
/// QoS 1 message still in flight to it when its client went away: the
/// state a store must keep across a save and load.
pub async fn park_with_message_in_flight(r: &Router, id: &str) {
    let mut a = r
        .connect(id, false, 10, std::time::Duration::from_secs(1))
        .await
        .expect("attached");
    subscribe_session(r, &mut a, subscribe(&[("q/#", QoS::ExactlyOnce)]));
    r.publish(&msg("q/1", QoS::AtLeastOnce, false, "in flight"));
    let mut batch = Vec::new();
    let first = a.slot.take(&mut batch, 1, 1).first;
    let message = batch.pop().expect("the message was queued");
    assert!(a.session.deliver(message, first).is_some());
    r.disconnect(&a.slot, a.session);
}
