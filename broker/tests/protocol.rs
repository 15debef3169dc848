//! The broker binary on ephemeral loopback ports, spoken to in raw packets.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use mqtt_codec::{ConnectReturnCode, Packet, QoS, SubAckReturnCode};

#[tokio::test]
async fn qos0_1_2_publish_reach_a_subscriber_at_min_qos() {
    let b = start(&[]);
    let mut sub = RawClient::connected(b.addr(), "sub").await;
    let ack = sub.subscribe(&[("t/#", QoS::AtLeastOnce)], 1).await;
    assert_eq!(
        ack.return_codes,
        vec![SubAckReturnCode::Granted(QoS::AtLeastOnce)]
    );
    let mut publisher = RawClient::connected(b.addr(), "pub").await;

    publisher
        .send(&publish("t/0", QoS::AtMostOnce, None, "zero", false))
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic().as_str(), p.qos(), &p.payload()[..]),
        ("t/0", QoS::AtMostOnce, &b"zero"[..])
    );

    publisher
        .send(&publish("t/1", QoS::AtLeastOnce, Some(7), "one", false))
        .await;
    assert_eq!(publisher.recv().await, Packet::PubAck(pid(7)));
    let p = sub.recv_publish().await;
    assert_eq!(p.qos(), QoS::AtLeastOnce);
    let id = p.packet_id().expect("QoS 1 carries an id");
    sub.send(&Packet::PubAck(id)).await;

    // Published at QoS 2, granted QoS 1: delivered at QoS 1 [MQTT-3.8.4-6].
    publisher
        .send(&publish("t/2", QoS::ExactlyOnce, Some(8), "two", false))
        .await;
    assert_eq!(publisher.recv().await, Packet::PubRec(pid(8)));
    publisher.send(&Packet::PubRel(pid(8))).await;
    assert_eq!(publisher.recv().await, Packet::PubComp(pid(8)));
    let p = sub.recv_publish().await;
    assert_eq!((p.qos(), &p.payload()[..]), (QoS::AtLeastOnce, &b"two"[..]));
}

#[tokio::test]
async fn qos2_delivery_to_subscriber_runs_the_four_steps_exactly_once() {
    let b = start(&[]);
    let mut sub = RawClient::connected(b.addr(), "sub2").await;
    sub.subscribe(&[("x", QoS::ExactlyOnce)], 1).await;
    let mut publisher = RawClient::connected(b.addr(), "pub2").await;
    publisher
        .send(&publish("x", QoS::ExactlyOnce, Some(3), "once", false))
        .await;
    assert_eq!(publisher.recv().await, Packet::PubRec(pid(3)));
    // A retransmission before PUBREL is acknowledged, not delivered again.
    let mut dup = publish("x", QoS::ExactlyOnce, Some(3), "once", false);
    if let Packet::Publish(p) = &mut dup {
        p.dup = true;
    }
    publisher.send(&dup).await;
    assert_eq!(publisher.recv().await, Packet::PubRec(pid(3)));
    publisher.send(&Packet::PubRel(pid(3))).await;
    assert_eq!(publisher.recv().await, Packet::PubComp(pid(3)));

    let p = sub.recv_publish().await;
    assert_eq!(p.qos(), QoS::ExactlyOnce);
    let id = p.packet_id().expect("id");
    sub.send(&Packet::PubRec(id)).await;
    assert_eq!(sub.recv().await, Packet::PubRel(id));
    sub.send(&Packet::PubComp(id)).await;
    sub.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_connack_0x01() {
    let b = start(&[]);
    let mut c = RawClient::open(b.addr()).await;
    // CONNECT "MQTT" level 5, clean session, keep-alive 60, client id "c".
    c.send_bytes(&[
        0x10, 0x0d, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 1, b'c',
    ])
    .await;
    match c.recv().await {
        Packet::ConnAck(ack) => {
            assert_eq!(ack.code, ConnectReturnCode::UnacceptableProtocolVersion);
            assert!(!ack.session_present);
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert_eq!(c.try_recv().await, None);
}

#[tokio::test]
async fn empty_client_id_rules() {
    let b = start(&[]);
    let (_c, ack) = RawClient::connect(b.addr(), connect_packet("", true)).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    let (mut c, ack) = RawClient::connect(b.addr(), connect_packet("", false)).await;
    assert_eq!(ack.code, ConnectReturnCode::IdentifierRejected);
    assert_eq!(c.try_recv().await, None);
}

#[tokio::test]
async fn second_connect_closes_and_fires_the_will() {
    let b = start(&[]);
    let mut watcher = RawClient::connected(b.addr(), "watcher").await;
    watcher.subscribe(&[("wills/#", QoS::AtMostOnce)], 1).await;
    let mut conn = connect_packet("twice", true);
    conn.will = Some(will("wills/twice", "gone", QoS::AtMostOnce, false));
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
async fn will_is_not_sent_after_disconnect_but_is_after_socket_close() {
    let b = start(&[]);
    let mut watcher = RawClient::connected(b.addr(), "w").await;
    watcher.subscribe(&[("wills/#", QoS::AtMostOnce)], 1).await;

    let mut polite = connect_packet("polite", true);
    polite.will = Some(will("wills/polite", "x", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect(b.addr(), polite).await;
    c.send(&Packet::Disconnect).await;
    assert_eq!(c.try_recv().await, None);

    let mut rude = connect_packet("rude", true);
    rude.will = Some(will("wills/rude", "y", QoS::AtLeastOnce, false));
    let (c, _) = RawClient::connect(b.addr(), rude).await;
    drop(c);
    let p = watcher.recv_publish().await;
    assert_eq!(
        p.topic().as_str(),
        "wills/rude",
        "the polite will must not fire"
    );
}

#[tokio::test]
async fn keep_alive_expiry_closes_and_fires_the_will() {
    let b = start(&[]);
    let mut watcher = RawClient::connected(b.addr(), "w").await;
    watcher.subscribe(&[("wills/#", QoS::AtMostOnce)], 1).await;
    let mut conn = connect_packet("sleepy", true);
    conn.keep_alive = 1;
    conn.will = Some(will("wills/sleepy", "timeout", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect(b.addr(), conn).await;
    // Silent for 1.5 s: the broker gives up [MQTT-3.1.2-24].
    assert_eq!(c.try_recv().await, None);
    let p = watcher.recv_publish().await;
    assert_eq!(p.topic().as_str(), "wills/sleepy");
}

#[tokio::test]
async fn takeover_closes_the_old_connection_and_fires_its_will() {
    let b = start(&[]);
    let mut watcher = RawClient::connected(b.addr(), "w").await;
    watcher.subscribe(&[("wills/#", QoS::AtMostOnce)], 1).await;
    let mut first = connect_packet("same", false);
    first.will = Some(will("wills/same", "old", QoS::AtMostOnce, false));
    let (mut old, ack) = RawClient::connect(b.addr(), first).await;
    assert!(!ack.session_present);
    let (_new, ack) = RawClient::connect(b.addr(), connect_packet("same", false)).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    assert!(ack.session_present, "the persistent session carries over");
    assert_eq!(old.try_recv().await, None);
    assert_eq!(watcher.recv_publish().await.topic().as_str(), "wills/same");
}

#[tokio::test]
async fn retained_messages_stored_replaced_cleared() {
    let b = start(&[]);
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    publisher
        .send(&publish("r/a", QoS::AtMostOnce, None, "first", true))
        .await;
    publisher
        .send(&publish("r/a", QoS::AtMostOnce, None, "second", true))
        .await;
    publisher
        .send(&publish("r/b", QoS::AtMostOnce, None, "b", true))
        .await;
    publisher
        .send(&publish("r/b", QoS::AtMostOnce, None, "", true))
        .await;
    // A round trip guarantees the broker handled the publishes.
    publisher.send(&Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);

    let mut sub = RawClient::connected(b.addr(), "s").await;
    sub.subscribe(&[("r/+", QoS::AtLeastOnce)], 1).await;
    let p = sub.recv_publish().await;
    assert!(
        p.retain(),
        "sent because of a new subscription: RETAIN=1 [MQTT-3.3.1-8]"
    );
    assert_eq!(
        (p.topic().as_str(), &p.payload()[..]),
        ("r/a", &b"second"[..])
    );
    sub.expect_silence(Duration::from_millis(300)).await;

    publisher
        .send(&publish("r/a", QoS::AtMostOnce, None, "live", true))
        .await;
    let p = sub.recv_publish().await;
    assert!(!p.retain(), "live forward: RETAIN=0 [MQTT-3.3.1-9]");
}

#[tokio::test]
async fn sys_is_not_publishable_and_wildcards_skip_dollar_topics() {
    let b = start(&["--sys-interval", "1"]);
    let mut all = RawClient::connected(b.addr(), "all").await;
    all.subscribe(
        &[("#", QoS::AtMostOnce), ("+/broker/#", QoS::AtMostOnce)],
        1,
    )
    .await;
    let mut sys = RawClient::connected(b.addr(), "sys").await;
    sys.subscribe(&[("$SYS/broker/version", QoS::AtMostOnce)], 1)
        .await;
    let p = sys.recv_publish().await;
    assert!(String::from_utf8_lossy(p.payload()).contains("broker"));

    let mut c = RawClient::connected(b.addr(), "faker").await;
    c.send(&publish(
        "$SYS/broker/version",
        QoS::AtLeastOnce,
        Some(1),
        "fake",
        false,
    ))
    .await;
    assert_eq!(c.recv().await, Packet::PubAck(pid(1)));
    sys.expect_silence(Duration::from_millis(300)).await;
    all.expect_silence(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn malformed_packet_closes_only_that_connection() {
    let b = start(&[]);
    let mut good = RawClient::connected(b.addr(), "good").await;
    good.subscribe(&[("t", QoS::AtMostOnce)], 1).await;
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
        publisher
            .send(&publish(
                "q",
                QoS::AtLeastOnce,
                Some(i as u16 + 1),
                text,
                false,
            ))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(sub.recv_publish().await);
    }
    // Gone without acknowledging anything.
    drop(sub);
    publisher
        .send(&publish("q", QoS::AtLeastOnce, Some(9), "d", false))
        .await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));

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
    let mut sub = RawClient::connected(b.addr(), "sub").await;
    sub.subscribe(&[("w", QoS::AtLeastOnce)], 1).await;
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    for i in 1..=4u16 {
        publisher
            .send(&publish("w", QoS::AtLeastOnce, Some(i), "m", false))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
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

#[tokio::test]
async fn stuck_subscriber_does_not_stall_others() {
    let b = start(&["--max-queued", "10"]);
    // A subscriber that never reads.
    let mut stuck = RawClient::connected(b.addr(), "stuck").await;
    stuck.subscribe(&[("load", QoS::AtMostOnce)], 1).await;
    let mut live = RawClient::connected(b.addr(), "live").await;
    live.subscribe(&[("load", QoS::AtMostOnce)], 1).await;
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    let payload = "x".repeat(4096);
    for _ in 0..2000 {
        publisher
            .send(&publish("load", QoS::AtMostOnce, None, &payload, false))
            .await;
        let _ = live.recv_publish().await;
    }
    assert!(b.wait_for_log("dropped", WAIT) || b.log().contains("dropped"));
}

#[tokio::test]
async fn graceful_shutdown_exits_zero() {
    let mut b = start(&[]);
    let _c = RawClient::connected(b.addr(), "c").await;
    let status = b.terminate(WAIT).expect("exits in time");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn packets_sent_in_the_same_write_as_connect_are_handled() {
    let b = start(&[]);
    let mut c = RawClient::open(b.addr()).await;
    let mut bytes = Packet::Connect(connect_packet("eager", true))
        .to_bytes()
        .unwrap()
        .to_vec();
    bytes.extend_from_slice(&Packet::PingReq.to_bytes().unwrap());
    c.send_bytes(&bytes).await;
    assert!(matches!(c.recv().await, Packet::ConnAck(_)));
    assert_eq!(c.recv().await, Packet::PingResp);
}
