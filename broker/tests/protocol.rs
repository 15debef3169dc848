//! The broker binary on ephemeral loopback ports, spoken to in raw packets:
//! what is particular to this broker (its flags, `$SYS`, its log, its exit
//! status, what it does where the specification leaves a choice).
//!
//! Protocol behaviour that a conformance scenario checks is not repeated
//! here: `conformance/tests/reference_broker.rs` runs the whole suite
//! against this broker and requires the scenarios that replaced tests of
//! this file to pass (its `REPLACES_BROKER_TESTS`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use mqtt_codec::{Connect, ConnectReturnCode, Packet, QoS};

/// `connect` with a QoS 0, not retained will of `payload` on `topic`.
fn with_will(connect: Connect, topic: &str, payload: &'static str) -> Connect {
    Connect {
        will: Some(will(topic, payload, QoS::AtMostOnce, false)),
        ..connect
    }
}

#[tokio::test]
async fn second_connect_closes_and_fires_the_will() {
    let b = start(&[]);
    let mut watcher = subscribed(b.addr(), "watcher", &[("wills/#", QoS::AtMostOnce)]).await;
    let conn = with_will(connect_packet("twice", true), "wills/twice", "gone");
    let (mut c, _) = RawClient::connect(b.addr(), conn.clone()).await;
    c.send(&Packet::Connect(conn)).await;
    c.expect_closed().await;
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic().as_str(), &p.payload()[..]),
        ("wills/twice", &b"gone"[..])
    );
}

#[tokio::test]
async fn takeover_closes_the_old_connection_and_fires_its_will() {
    let b = start(&[]);
    let mut watcher = subscribed(b.addr(), "w", &[("wills/#", QoS::AtMostOnce)]).await;
    let first = with_will(connect_packet("same", false), "wills/same", "old");
    let (mut old, ack) = RawClient::connect(b.addr(), first).await;
    assert!(!ack.session_present);
    let (_new, ack) = RawClient::connect(b.addr(), connect_packet("same", false)).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    assert!(ack.session_present, "the persistent session carries over");
    assert_eq!(old.try_recv().await, None);
    assert_eq!(watcher.recv_publish().await.topic().as_str(), "wills/same");
}

#[tokio::test]
async fn sys_is_not_publishable_and_wildcards_skip_dollar_topics() {
    let b = start(&["--sys-interval", "1"]);
    let mut all = subscribed(
        b.addr(),
        "all",
        &[("#", QoS::AtMostOnce), ("+/broker/#", QoS::AtMostOnce)],
    )
    .await;
    let mut sys = subscribed(b.addr(), "sys", &[("$SYS/broker/version", QoS::AtMostOnce)]).await;
    let p = sys.recv_publish().await;
    assert!(String::from_utf8_lossy(p.payload()).contains("broker"));

    let mut c = RawClient::connected(b.addr(), "faker").await;
    publish_acked(&mut c, "$SYS/broker/version", 1, "fake").await;
    sys.expect_silence(Duration::from_millis(300)).await;
    all.expect_silence(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() {
    let b = start(&[]);
    let mut good = subscribed(b.addr(), "good", &[("t", QoS::AtMostOnce)]).await;
    let mut bad = RawClient::connected(b.addr(), "bad").await;
    // PUBLISH with QoS 3 [MQTT-3.3.1-4].
    bad.send_bytes(&[0x36, 0x03, 0x00, 0x01, b't']).await;
    assert_eq!(bad.try_recv().await, None);
    assert!(b.wait_for_log("MQTT-3.3.1-4", WAIT), "{}", b.log());
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    publisher
        .send(&publish("t", QoS::AtMostOnce, None, "still here", false))
        .await;
    assert_eq!(&good.recv_publish().await.payload()[..], b"still here");
}

#[tokio::test]
async fn persistent_session_redelivers_in_order_with_dup() {
    let b = start(&[]);
    let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("keeper", false)).await;
    sub.subscribe(&[("q", QoS::AtLeastOnce)], 1).await;
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    for (i, text) in ["a", "b", "c"].iter().enumerate() {
        publish_acked(&mut publisher, "q", i as u16 + 1, text).await;
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(sub.recv_publish().await);
    }
    // Gone without acknowledging anything.
    drop(sub);
    publish_acked(&mut publisher, "q", 9, "d").await;

    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("keeper", false)).await;
    assert!(ack.session_present);
    let mut again = Vec::new();
    for _ in 0..4 {
        again.push(sub.recv_publish().await);
    }
    let payloads: Vec<&[u8]> = again.iter().map(|p| &p.payload()[..]).collect();
    assert_eq!(payloads, vec![&b"a"[..], b"b", b"c", b"d"]);
    for (old, new) in first.iter().zip(&again) {
        assert!(new.dup, "redelivery sets DUP");
        assert_eq!(old.packet_id(), new.packet_id());
    }
    assert!(!again[3].dup, "queued while away: first delivery");
}

#[tokio::test]
async fn inflight_window_queues_past_it() {
    let b = start(&["--max-inflight", "2"]);
    let mut sub = subscribed(b.addr(), "sub", &[("w", QoS::AtLeastOnce)]).await;
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    for i in 1..=4u16 {
        publish_acked(&mut publisher, "w", i, "m").await;
    }
    let a = sub.recv_publish().await;
    let b2 = sub.recv_publish().await;
    sub.expect_silence(Duration::from_millis(300)).await;
    assert_ne!(a.packet_id(), b2.packet_id());
    sub.send(&Packet::PubAck(a.packet_id().expect("id"))).await;
    let c = sub.recv_publish().await;
    assert!(c.packet_id() != b2.packet_id());
    sub.expect_silence(Duration::from_millis(300)).await;
}

/// A subscriber that never reads pauses the publisher writing to it
/// (backpressure, issue 15) only until `--slow-client-timeout`: then it is
/// disconnected, and another subscriber of the same messages gets every one.
#[tokio::test]
async fn stuck_subscriber_does_not_stall_others() {
    let b = start(&["--max-queued", "10", "--slow-client-timeout", "1"]);
    // A subscriber that never reads.
    let _stuck = subscribed(b.addr(), "stuck", &[("load", QoS::AtMostOnce)]).await;
    let mut live = subscribed(b.addr(), "live", &[("load", QoS::AtMostOnce)]).await;
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    let payload = "x".repeat(4096);
    for _ in 0..2000 {
        publisher
            .send(&publish("load", QoS::AtMostOnce, None, &payload, false))
            .await;
        let _ = live.recv_publish().await;
    }
    assert!(
        b.wait_for_log("queue stayed full past --slow-client-timeout", WAIT),
        "{}",
        b.log()
    );
}

#[tokio::test]
async fn graceful_shutdown_exits_zero() {
    let mut b = start(&[]);
    let _c = RawClient::connected(b.addr(), "c").await;
    let status = b.terminate(WAIT).expect("exits in time");
    assert!(status.success(), "exit status {status}");
}
