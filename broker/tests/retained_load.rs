//! Retained messages are no denial-of-service lever (issue 14): while a
//! SUBSCRIBE owes one client 20 million retained copies, other clients are
//! answered.
//!
//! The broker runs in this process on one thread (see [`InProcessBroker`]),
//! so a SUBSCRIBE that held it would hold every client. Events, not
//! timings: the other client's answers come while the big subscriber still
//! has retained messages on their way, which it receives, in order,
//! afterwards.

use common::in_process::InProcessBroker;
use common::retained::{expect_retained, load_retained, subscribe_big};
use common::{RawClient, publish};
use mqtt_codec::{Packet, QoS};

mod common;

#[tokio::test]
async fn other_clients_are_answered_while_a_huge_retained_delivery_is_pending() {
    let broker = InProcessBroker::start(&[]);
    load_retained(&broker).await;
    let mut big = RawClient::connected(broker.addr(), "big").await;
    subscribe_big(&mut big).await;
    expect_retained(&mut big, 0..1).await;
    // `big` reads no more for now: 20 million copies are owed to it.
    let mut other = RawClient::connected(broker.addr(), "other").await;
    other.send(&Packet::PingReq).await;
    assert_eq!(other.recv().await, Packet::PingResp);
    // A retained publish (the retained store's write lock; a `$` topic,
    // which none of big's filters matches [MQTT-4.7.2-1]) and a
    // SUBSCRIBE with its own retained delivery go through as well.
    other
        .send(&publish(
            "$other/news",
            QoS::AtLeastOnce,
            Some(7),
            "fresh",
            true,
        ))
        .await;
    assert_eq!(other.recv().await, Packet::PubAck(common::pid(7)));
    other.subscribe(&[("$other/#", QoS::AtLeastOnce)], 2).await;
    let news = other.recv_publish().await;
    assert_eq!(news.message().topic.as_str(), "$other/news");
    assert!(news.message().retain);
    // The big delivery was pending all along: it goes on where it was.
    expect_retained(&mut big, 1..2_000).await;
}
