//! Backpressure instead of loss (issue 15): a full subscriber pauses the
//! publishers writing to it, every acknowledged message arrives, publishers
//! share the room, and a subscriber that stays full past
//! `--slow-client-timeout` is disconnected so the publishers go on.
//!
//! The broker runs in this process ([`InProcessBroker`]) for its counters;
//! the clients are blocking sockets, publishers flooding from threads of
//! their own ([`Flood`]). Every wait is bounded; nothing is timed.

mod common;

use broker::stats::Stats;

use bytes::Bytes;
use common::blocking_client::{BlockingClient, encode, publish_packet};
use common::flood::{Flood, number_of, numbered, wait_for};
use common::in_process::InProcessBroker;
use mqtt_codec::{Delivery, Packet, QoS};

/// How many publishers in the fan-in.
const PUBLISHERS: usize = 8;
/// Messages each publisher sends in the fan-in.
const EACH: usize = 2_000;

/// Eight publishers flood one subscriber at `qos` through a queue of 50
/// messages (so they pause again and again); the subscriber reads all the
/// while. Every message arrives, each publisher's in order, none dropped.
fn fan_in_loses_nothing(qos: QoS) {
    let broker = InProcessBroker::start(&["--max-queued", "50", "--max-inflight", "10"]);
    let stats = std::sync::Arc::clone(broker.router().stats());
    let mut subscriber = BlockingClient::connect(broker.addr(), "fan-sub", true);
    subscriber.subscribe(&[("fan/#", qos)], 1);
    let mut publishers = Vec::new();
    let mut floods = Vec::new();
    for p in 0..PUBLISHERS {
        let client = BlockingClient::connect(broker.addr(), &format!("fan-pub-{p}"), true);
        // Payload: the publisher's index, then the message's number.
        let packets = (1..=EACH)
            .map(|i| {
                let id = u16::try_from(i).expect("ids fit");
                let payload = Bytes::from(format!("{p:08}{i:08}{:48}", ""));
                encode(&publish_packet(
                    &format!("fan/{p}"),
                    qos,
                    id,
                    payload,
                    false,
                ))
            })
            .collect();
        floods.push(Flood::start(client.try_clone(), packets));
        publishers.push(client);
    }
    let mut next = [1usize; PUBLISHERS];
    for _ in 0..PUBLISHERS * EACH {
        loop {
            match subscriber.recv() {
                Packet::Publish(publish) => {
                    let payload = &publish.message().payload;
                    let p = number_of(payload);
                    assert_eq!(number_of(&payload[8..]), next[p], "publisher {p} in order");
                    next[p] += 1;
                    match publish.delivery() {
                        Delivery::AtMostOnce => {}
                        Delivery::AtLeastOnce(id) => subscriber.send(&Packet::PubAck(id)),
                        Delivery::ExactlyOnce(id) => subscriber.send(&Packet::PubRec(id)),
                    }
                    break;
                }
                Packet::PubRel(id) => subscriber.send(&Packet::PubComp(id)),
                other => panic!("expected PUBLISH, got {:?}", other.packet_type()),
            }
        }
    }
    assert_eq!(
        next,
        [EACH + 1; PUBLISHERS],
        "every message of every publisher"
    );
    for flood in floods {
        flood.finish();
    }
    for publisher in &mut publishers {
        publisher.expect_acks(qos, EACH);
    }
    assert_eq!(Stats::get(&stats.publish_dropped), 0, "nothing dropped");
    assert!(
        Stats::get(&stats.publish_paused) > 0,
        "the publishers were paused"
    );
}

#[test]
fn fan_in_through_a_small_queue_loses_nothing_at_qos0() {
    fan_in_loses_nothing(QoS::AtMostOnce);
}

#[test]
fn fan_in_through_a_small_queue_loses_nothing_at_qos1() {
    fan_in_loses_nothing(QoS::AtLeastOnce);
}

#[test]
fn fan_in_through_a_small_queue_loses_nothing_at_qos2() {
    fan_in_loses_nothing(QoS::ExactlyOnce);
}

/// Messages the publisher sends at a stuck subscriber.
const AT_STUCK: usize = 2_000;
const MAX_QUEUED: usize = 100;

/// A subscriber that never reads, with a clean or persistent session, and
/// a publisher flooding it at QoS 1 under `--slow-client-timeout 1`: the
/// subscriber is disconnected (once), the publisher goes on and gets every
/// PUBACK. Returns the broker and how many messages
/// were dropped.
fn stuck_subscriber(clean: bool) -> (InProcessBroker, u64) {
    let broker = InProcessBroker::start(&[
        "--max-queued",
        &MAX_QUEUED.to_string(),
        "--slow-client-timeout",
        "1",
    ]);
    let stats = std::sync::Arc::clone(broker.router().stats());
    let mut subscriber = BlockingClient::connect(broker.addr(), "stuck-sub", clean);
    subscriber.subscribe(&[("stuck/t", QoS::AtLeastOnce)], 1);
    let mut publisher = BlockingClient::connect(broker.addr(), "stuck-pub", true);
    let flood = Flood::start(
        publisher.try_clone(),
        numbered("stuck/t", QoS::AtLeastOnce, AT_STUCK, 1024),
    );
    wait_for("the stuck subscriber to be disconnected", || {
        Stats::get(&stats.clients_slow) == 1 && stats.connected() == 1
    });
    flood.finish();
    publisher.expect_acks(QoS::AtLeastOnce, AT_STUCK);
    assert_eq!(Stats::get(&stats.clients_slow), 1, "disconnected once");
    let dropped = Stats::get(&stats.publish_dropped);
    drop(subscriber);
    (broker, dropped)
}

#[test]
fn a_subscriber_full_past_the_slow_client_timeout_is_disconnected_and_frees_the_publisher() {
    let (_broker, dropped) = stuck_subscriber(true);
    // What it never took went with its clean session, counted.
    assert!(dropped > 0, "the stuck subscriber's messages are counted");
}

#[test]
fn a_persistent_subscriber_disconnected_for_slowness_keeps_its_queue() {
    let (broker, dropped) = stuck_subscriber(false);
    // It kept its in-flight window and its queue (MAX_QUEUED); the rest,
    // published while it was away with its queue full, was counted.
    let kept = AT_STUCK - usize::try_from(dropped).expect("fits");
    assert!(kept >= MAX_QUEUED, "kept {kept}");
    let mut back = BlockingClient::connect(broker.addr(), "stuck-sub", false);
    back.receive_numbered(1, kept);
}

/// A publisher that writes a burst and DISCONNECT and closes its side of
/// the socket while a subscriber's queue is full: the broker read it all
/// with the end of the stream, paused partway through, and still handles
/// the rest after the pause, so every message is delivered and
/// acknowledged.
#[test]
fn a_publisher_closing_while_paused_has_the_rest_of_what_it_sent_handled() {
    const SENT: usize = 50;
    let broker = InProcessBroker::start(&[
        "--max-queued",
        "10",
        "--max-inflight",
        "2",
        "--slow-client-timeout",
        "0",
    ]);
    let stats = std::sync::Arc::clone(broker.router().stats());
    let mut subscriber = BlockingClient::connect(broker.addr(), "eof-sub", true);
    subscriber.subscribe(&[("eof/t", QoS::AtLeastOnce)], 1);
    let mut publisher = BlockingClient::connect(broker.addr(), "eof-pub", true);
    // One write: the broker reads the burst and the close together.
    let mut burst = Vec::new();
    for p in numbered("eof/t", QoS::AtLeastOnce, SENT, 100) {
        burst.extend_from_slice(&p);
    }
    burst.extend_from_slice(&encode(&Packet::Disconnect));
    publisher.send_bytes(&burst);
    publisher.shutdown_write();
    wait_for("the publisher to pause", || {
        Stats::get(&stats.publish_paused) > 0
    });
    subscriber.receive_numbered(1, SENT);
    publisher.expect_acks(QoS::AtLeastOnce, SENT);
    assert_eq!(Stats::get(&stats.publish_dropped), 0, "nothing dropped");
}

/// A publisher paused on a stuck subscriber still delivers to its own
/// client what it subscribed to, more than a write buffer's worth, with no
/// `--slow-client-timeout` to end the pause: paused, a connection reads
/// nothing, but it still writes.
#[test]
fn a_paused_publisher_still_receives_what_it_subscribed_to() {
    let broker = InProcessBroker::start(&["--max-queued", "10", "--slow-client-timeout", "0"]);
    let stats = std::sync::Arc::clone(broker.router().stats());
    let mut stuck = BlockingClient::connect(broker.addr(), "stuck-sub", true);
    stuck.subscribe(&[("stuck/t", QoS::AtMostOnce)], 1);
    let mut paused = BlockingClient::connect(broker.addr(), "paused-pub", true);
    paused.subscribe(&[("own/t", QoS::AtMostOnce)], 1);
    let flood = Flood::start(
        paused.try_clone(),
        numbered("stuck/t", QoS::AtMostOnce, 2_000, 10_000),
    );
    wait_for("the publisher to pause", || {
        Stats::get(&stats.publish_paused) > 0
    });
    // 1 MB for the paused publisher's own client, from another client.
    let other = BlockingClient::connect(broker.addr(), "other-pub", true);
    let to_paused = Flood::start(
        other.try_clone(),
        numbered("own/t", QoS::AtMostOnce, 100, 10_000),
    );
    paused.receive_numbered(1, 100);
    to_paused.finish();
    // The stuck subscriber goes: the pause ends, the flood is read.
    drop(stuck);
    flood.finish();
}
