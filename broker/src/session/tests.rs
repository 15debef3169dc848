//! Scripted packets and a fake clock against [`Session`]; no sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::router::test_support::subscribe;
use mqtt_codec::topic::TopicName;
use mqtt_codec::{ConnAck, Connect, ConnectReturnCode};

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("valid topic")
}

fn message(qos: QoS, payload: &'static str) -> Message {
    Message {
        topic: topic("a/b"),
        payload: Bytes::from_static(payload.as_bytes()),
        qos,
        retain: false,
    }
}

fn publish(qos: QoS, packet_id: Option<u16>, payload: &'static str) -> Packet {
    let delivery = match packet_id {
        Some(packet_id) => Delivery::new(qos, id(packet_id)),
        None => Delivery::AtMostOnce,
    };
    Packet::Publish(Publish::new(delivery, message(qos, payload)))
}

fn session() -> Session {
    let mut s = Session::new("c1", false, 3);
    s.attach(false, 10, Instant::now());
    s
}

#[test]
fn qos1_publish_is_routed_and_acknowledged() {
    let mut s = session();
    let action = s
        .handle(publish(QoS::AtLeastOnce, Some(5), "x"), Instant::now())
        .expect("valid");
    assert_eq!(
        action,
        Action::Route {
            message: message(QoS::AtLeastOnce, "x"),
            ack: Some(Packet::PubAck(id(5))),
        }
    );
}

#[test]
fn qos2_publish_repeated_before_pubrel_is_not_routed_twice() {
    let mut s = session();
    let now = Instant::now();
    let first = s
        .handle(publish(QoS::ExactlyOnce, Some(9), "once"), now)
        .expect("valid");
    assert!(matches!(first, Action::Route { ack: Some(Packet::PubRec(p)), .. } if p == id(9)));
    // The client did not see our PUBREC and sends the PUBLISH again with DUP.
    let again = s
        .handle(publish(QoS::ExactlyOnce, Some(9), "once"), now)
        .expect("valid");
    assert_eq!(again, Action::Reply(Packet::PubRec(id(9))));
    assert_eq!(
        s.handle(Packet::PubRel(id(9)), now),
        Ok(Action::Reply(Packet::PubComp(id(9))))
    );
    // After PUBCOMP the id starts a new message [MQTT-4.3.3-2].
    let fresh = s
        .handle(publish(QoS::ExactlyOnce, Some(9), "twice"), now)
        .expect("valid");
    assert!(matches!(fresh, Action::Route { .. }));
}

#[test]
fn pubrel_for_an_unknown_id_is_still_completed() {
    let mut s = session();
    assert_eq!(
        s.handle(Packet::PubRel(id(42)), Instant::now()),
        Ok(Action::Reply(Packet::PubComp(id(42))))
    );
}

#[test]
fn outgoing_qos2_flow_runs_publish_pubrec_pubrel_pubcomp() {
    let mut s = session();
    let now = Instant::now();
    let p = s
        .deliver(message(QoS::ExactlyOnce, "m"), Seq(0))
        .expect("id free");
    let pid = p.packet_id().expect("QoS 2 carries an id");
    assert!(!p.dup);
    assert_eq!(
        s.handle(Packet::PubRec(pid), now),
        Ok(Action::Reply(Packet::PubRel(pid)))
    );
    // A repeated PUBREC gets PUBREL again.
    assert_eq!(
        s.handle(Packet::PubRec(pid), now),
        Ok(Action::Reply(Packet::PubRel(pid)))
    );
    assert_eq!(s.outgoing().len(), 1);
    assert_eq!(s.handle(Packet::PubComp(pid), now), Ok(Action::None));
    assert!(s.outgoing().is_empty());
}

#[test]
fn window_closes_at_max_inflight_and_reopens_on_ack() {
    let mut s = session();
    let ids: Vec<PacketId> = (0..3)
        .map(|_| {
            assert!(s.window_open());
            s.deliver(message(QoS::AtLeastOnce, "m"), Seq(0))
                .and_then(|p| p.packet_id())
                .expect("id")
        })
        .collect();
    assert!(!s.window_open());
    // QoS 0 is not held back by the window.
    let q0 = s
        .deliver(message(QoS::AtMostOnce, "q0"), Seq(0))
        .expect("qos 0");
    assert_eq!(q0.packet_id(), None);
    s.handle(Packet::PubAck(ids[1]), Instant::now())
        .expect("valid");
    assert!(s.window_open());
}

#[test]
fn packet_ids_are_not_reused_while_in_flight() {
    let mut s = Session::new("c", false, 0);
    // One message stays unacknowledged while 70,000 others come and go, so
    // the id counter wraps past it.
    let stuck = s
        .deliver(message(QoS::AtLeastOnce, "stuck"), Seq(0))
        .and_then(|p| p.packet_id())
        .expect("id");
    for _ in 0..70_000 {
        let pid = s
            .deliver(message(QoS::AtLeastOnce, "m"), Seq(0))
            .and_then(|p| p.packet_id())
            .expect("id");
        assert_ne!(pid, stuck, "id of an unacknowledged message reused");
        s.handle(Packet::PubAck(pid), Instant::now())
            .expect("valid");
    }
    assert_eq!(s.outgoing().len(), 1);
}

#[test]
fn resume_resends_in_order_with_dup_and_pubrel() {
    let mut s = session();
    let a = s
        .deliver(message(QoS::AtLeastOnce, "a"), Seq(0))
        .expect("id");
    let b = s
        .deliver(message(QoS::ExactlyOnce, "b"), Seq(0))
        .expect("id");
    let c = s
        .deliver(message(QoS::ExactlyOnce, "c"), Seq(0))
        .expect("id");
    let b_id = b.packet_id().expect("id");
    s.handle(Packet::PubRec(b_id), Instant::now())
        .expect("valid");
    let resent: Vec<Packet> = s.resume().collect();
    let dup = |p: Publish| Packet::Publish(p.with_dup(true));
    assert_eq!(resent, vec![dup(a), Packet::PubRel(b_id), dup(c)]);
}

#[test]
fn acks_for_unknown_ids_change_nothing() {
    let mut s = session();
    let p = s
        .deliver(message(QoS::AtLeastOnce, "a"), Seq(0))
        .expect("id");
    let pid = p.packet_id().expect("id");
    // PUBCOMP and PUBREC do not complete a QoS 1 flow.
    assert_eq!(
        s.handle(Packet::PubComp(pid), Instant::now()),
        Ok(Action::None)
    );
    assert_eq!(
        s.handle(Packet::PubRec(pid), Instant::now()),
        Ok(Action::None)
    );
    assert_eq!(s.outgoing().len(), 1);
    assert_eq!(
        s.handle(Packet::PubAck(id(999)), Instant::now()),
        Ok(Action::None)
    );
    assert_eq!(s.outgoing().len(), 1);
}

#[test]
fn second_connect_is_a_violation() {
    let mut s = session();
    assert_eq!(
        s.handle(Packet::Connect(Connect::default()), Instant::now()),
        Err(SessionError::SecondConnect)
    );
}

#[test]
fn server_only_packets_from_a_client_are_violations() {
    let mut s = session();
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        code: ConnectReturnCode::Accepted,
    });
    assert_eq!(
        s.handle(connack, Instant::now()),
        Err(SessionError::ServerOnlyPacket {
            packet: PacketType::ConnAck
        })
    );
    assert_eq!(
        s.handle(Packet::PingResp, Instant::now()),
        Err(SessionError::ServerOnlyPacket {
            packet: PacketType::PingResp
        })
    );
}

#[test]
fn ping_disconnect_and_subscribe_map_to_actions() {
    let mut s = session();
    let now = Instant::now();
    assert_eq!(
        s.handle(Packet::PingReq, now),
        Ok(Action::Reply(Packet::PingResp))
    );
    let sub = subscribe(&[("a/#", QoS::AtLeastOnce)]);
    assert_eq!(
        s.handle(Packet::Subscribe(sub.clone()), now),
        Ok(Action::Subscribe(sub))
    );
    assert_eq!(s.handle(Packet::Disconnect, now), Ok(Action::Disconnect));
}

#[test]
fn every_packet_pushes_the_keep_alive_deadline() {
    let t0 = Instant::now();
    let mut s = Session::new("c", true, 10);
    s.attach(true, 4, t0);
    assert_eq!(s.keep_alive_deadline(), Some(t0 + Duration::from_secs(6)));
    let t1 = t0 + Duration::from_secs(5);
    s.handle(Packet::PingReq, t1).expect("valid");
    assert!(!s.keep_alive_expired(t0 + Duration::from_secs(7)));
    assert!(s.keep_alive_expired(t1 + Duration::from_secs(6)));
}

/// The planted bugs of the keep-alive timer do what `mutant::ALL` says,
/// so the conformance suite's tests of them test what they claim.
#[cfg(feature = "mutants")]
#[test]
fn planted_keep_alive_bugs_move_or_keep_the_deadline() {
    let t0 = Instant::now();
    let deadline = |mutant: Option<&str>| {
        crate::mutant::set_for_this_thread(mutant);
        let mut s = Session::new("c", true, 10);
        s.attach(true, 10, t0);
        crate::mutant::set_for_this_thread(None);
        s.keep_alive_deadline()
    };
    let at_ms = |ms| Some(t0 + Duration::from_millis(ms));
    assert_eq!(deadline(None), at_ms(15_000));
    assert_eq!(deadline(Some("keepalive-factor=1.7")), at_ms(17_000));
    assert_eq!(deadline(Some("keepalive-factor")), at_ms(17_500));

    let heard_after = |mutant: Option<&str>, packet: Packet| {
        let mut s = Session::new("c", true, 10);
        s.attach(true, 10, t0);
        crate::mutant::set_for_this_thread(mutant);
        let _ = s.handle(packet, t0 + Duration::from_secs(5));
        crate::mutant::set_for_this_thread(None);
        s.keep_alive_deadline()
    };
    let skips_pingreq = Some("keepalive-reset-skips=12");
    assert_eq!(heard_after(skips_pingreq, Packet::PingReq), at_ms(15_000));
    assert_eq!(
        heard_after(skips_pingreq, Packet::PubAck(id(1))),
        at_ms(20_000)
    );
    // No value: the acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP) are skipped.
    let skips = Some("keepalive-reset-skips");
    assert_eq!(heard_after(skips, Packet::PubAck(id(1))), at_ms(15_000));
    assert_eq!(heard_after(skips, Packet::PingReq), at_ms(20_000));
}

#[test]
fn suback_carries_what_the_router_granted_and_the_session_records_it() {
    let mut s = session();
    let request = subscribe(&[("a/#", QoS::AtLeastOnce), ("b", QoS::ExactlyOnce)]);
    let codes = vec![
        SubAckReturnCode::Granted(QoS::AtLeastOnce),
        SubAckReturnCode::Failure,
    ];
    let suback = s.granted(request, codes.clone());
    // One code per filter, in order, under the request's packet id
    // [MQTT-3.8.4-5].
    assert_eq!(
        suback,
        SubAck {
            packet_id: id(1),
            return_codes: codes,
        }
    );
    let filter = TopicFilter::new("a/#").expect("valid filter");
    assert_eq!(s.subscriptions().get(&filter), Some(&QoS::AtLeastOnce));
    assert_eq!(
        s.subscriptions().len(),
        1,
        "a refused filter is not recorded"
    );
    // Subscribing again replaces the QoS [MQTT-3.8.4-3].
    s.granted(
        subscribe(&[("a/#", QoS::AtMostOnce)]),
        vec![SubAckReturnCode::Granted(QoS::AtMostOnce)],
    );
    assert_eq!(s.subscriptions().get(&filter), Some(&QoS::AtMostOnce));
}

#[test]
fn unsubscribe_hands_back_only_the_filters_held_and_answers_unsuback() {
    let mut s = session();
    s.granted(
        subscribe(&[("a", QoS::AtMostOnce)]),
        vec![SubAckReturnCode::Granted(QoS::AtMostOnce)],
    );
    let (held, reply) = s.unsubscribe(Unsubscribe {
        packet_id: id(4),
        filters: vec![
            TopicFilter::new("a").expect("valid filter"),
            TopicFilter::new("never").expect("valid filter"),
        ],
    });
    assert_eq!(held, vec![TopicFilter::new("a").expect("valid filter")]);
    // UNSUBACK even for filters the client never had [MQTT-3.10.4-5].
    assert_eq!(reply, Packet::UnsubAck(id(4)));
    assert!(s.subscriptions().is_empty());
}
