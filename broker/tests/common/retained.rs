//! A big retained delivery, shared by the tests that lean on it
//! (`retained_load.rs`, `retained_memory.rs`; issue 14): many retained
//! messages, and a SUBSCRIBE whose filters match every one of them many
//! times over.

use mqtt_codec::{Packet, QoS};

use super::in_process::InProcessBroker;
use super::{RawClient, publish};

/// Retained messages loaded before the big SUBSCRIBE.
pub const RETAINED: usize = 10_000;

/// Filters in the big SUBSCRIBE, each matching every retained message:
/// 20,480,000 copies owed.
pub const FILTERS: usize = 2_048;

/// The topic of retained message `i`: sorted by level, `i` is also its
/// place in the order the broker walks them.
pub fn topic(i: usize) -> String {
    format!("load/{:02}/{:02}", i / 100, i % 100)
}

/// Publishes the retained messages (QoS 0, payload `i`), then waits for a
/// PINGRESP: the broker handles a connection's packets in order, so every
/// message is retained by then.
pub async fn load_retained(broker: &InProcessBroker) {
    let mut loader = RawClient::connected(broker.addr(), "loader").await;
    for i in 0..RETAINED {
        loader
            .send(&publish(
                &topic(i),
                QoS::AtMostOnce,
                None,
                &i.to_string(),
                true,
            ))
            .await;
    }
    loader.send(&Packet::PingReq).await;
    assert_eq!(loader.recv().await, Packet::PingResp);
}

/// `FILTERS` filters, eight different ones over and over, each matching
/// every `load/NN/NN` topic.
pub fn overlapping_filters() -> Vec<(&'static str, QoS)> {
    const EACH_MATCHES_ALL: [&str; 8] = [
        "#",
        "load/#",
        "load/+/#",
        "load/+/+",
        "+/+/+",
        "+/#",
        "+/+/#",
        "load/+/+/#",
    ];
    (0..FILTERS)
        .map(|i| (EACH_MATCHES_ALL[i % 8], QoS::AtLeastOnce))
        .collect()
}

/// Subscribes `big` to the overlapping filters and reads the SUBACK.
pub async fn subscribe_big(big: &mut RawClient) {
    let suback = big.subscribe(&overlapping_filters(), 1).await;
    assert_eq!(suback.return_codes.len(), FILTERS);
}

/// Reads retained messages `range` of the first filter's delivery and
/// checks each: RETAIN=1 [MQTT-3.3.1-8], QoS 0 as stored, topic and
/// payload in the walk's order.
pub async fn expect_retained(big: &mut RawClient, range: std::ops::Range<usize>) {
    for i in range {
        let p = big.recv_publish().await;
        let m = p.message();
        assert!(m.retain, "message {i} has RETAIN=1");
        assert_eq!(m.qos, QoS::AtMostOnce);
        assert_eq!(m.topic.as_str(), topic(i));
        assert_eq!(&m.payload[..], i.to_string().as_bytes());
    }
}
