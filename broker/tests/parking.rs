//! Parked clients (issue 15): an idle plain-TCP connection gives up its
//! task and its socket registration (`listener/park.rs`), and everything a
//! connected client may meet still reaches it: messages at each QoS and
//! their acknowledgements, PINGREQ, its keep-alive running out, a takeover,
//! its own close, the broker's shutdown.
//!
//! The broker runs in this process so that the tests can wait for its
//! count of parked clients (`$SYS/broker/clients/parked`) instead of
//! sleeping; the clients are blocking sockets with bounded reads. (TLS and
//! WebSocket clients, which never park, are checked in `listeners.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::blocking_client::BlockingClient;
use common::in_process::InProcessBroker;
use common::{connect_packet, pid, publish, will};
use mqtt_codec::{Delivery, Packet, QoS};

/// Takes the next packet as a PUBLISH, acknowledging it as its QoS asks
/// (PUBACK; PUBREC, then PUBCOMP for the PUBREL), and returns its payload.
fn receive(client: &mut BlockingClient) -> String {
    let Packet::Publish(p) = client.recv() else {
        panic!("expected PUBLISH");
    };
    match p.delivery() {
        Delivery::AtMostOnce => {}
        Delivery::AtLeastOnce(id) => client.send(&Packet::PubAck(id)),
        Delivery::ExactlyOnce(id) => {
            client.send(&Packet::PubRec(id));
            assert_eq!(client.recv(), Packet::PubRel(id));
            client.send(&Packet::PubComp(id));
        }
    }
    String::from_utf8_lossy(&p.message().payload).into_owned()
}

/// A subscriber and a publisher, both parked before each message: the
/// PUBLISH wakes the publisher through its socket and the subscriber
/// through its router slot, and every acknowledgement of the QoS 1 and 2
/// flows goes through (nothing is resent afterwards).
#[test]
fn a_parked_subscriber_receives_each_qos_and_the_acks_flow() {
    let b = InProcessBroker::start(&[]);
    let mut subscriber = BlockingClient::connect(b.addr(), "subscriber", true);
    subscriber.subscribe(&[("p/#", QoS::ExactlyOnce)], 1);
    let mut publisher = BlockingClient::connect(b.addr(), "publisher", true);
    for (id, qos) in [
        (1, QoS::AtMostOnce),
        (2, QoS::AtLeastOnce),
        (3, QoS::ExactlyOnce),
    ] {
        b.wait_parked(2);
        let payload = format!("message {id}");
        let packet_id = (qos != QoS::AtMostOnce).then_some(id);
        publisher.send(&publish("p/t", qos, packet_id, &payload, false));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => assert_eq!(publisher.recv(), Packet::PubAck(pid(id))),
            QoS::ExactlyOnce => {
                assert_eq!(publisher.recv(), Packet::PubRec(pid(id)));
                publisher.send(&Packet::PubRel(pid(id)));
                assert_eq!(publisher.recv(), Packet::PubComp(pid(id)));
            }
        }
        assert_eq!(receive(&mut subscriber), payload, "{qos:?}");
    }
    // Parked again with every flow complete: a ping finds nothing owed.
    b.wait_parked(2);
    assert_eq!(subscriber.ping(), Vec::new(), "nothing resent");
    assert_eq!(publisher.ping(), Vec::new(), "nothing resent");
}

/// A parked client's PINGREQ is answered, and it parks again.
#[test]
fn a_parked_client_gets_pingresp() {
    let b = InProcessBroker::start(&[]);
    let mut client = BlockingClient::connect(b.addr(), "pinger", true);
    for _ in 0..2 {
        b.wait_parked(1);
        assert_eq!(client.ping(), Vec::new());
    }
}

/// A parked client that stays silent past 1.5 times its keep-alive is
/// disconnected [MQTT-3.1.2-24], not before, and its will is published
/// [MQTT-3.1.2-8]: the lot's timer wakes it.
#[test]
fn a_parked_client_whose_keep_alive_expires_is_disconnected_with_its_will() {
    let b = InProcessBroker::start(&[]);
    let mut watcher = BlockingClient::connect(b.addr(), "watcher", true);
    watcher.subscribe(&[("will/#", QoS::AtMostOnce)], 1);
    let connect = mqtt_codec::Connect {
        keep_alive: 3,
        will: Some(will("will/silent", "gone", QoS::AtMostOnce, false)),
        ..connect_packet("silent", true)
    };
    let heard = Instant::now();
    let (mut silent, _) = BlockingClient::connect_with(b.addr(), connect);
    b.wait_parked(2);
    assert_eq!(receive(&mut watcher), "gone");
    assert!(
        heard.elapsed() >= Duration::from_millis(4_500),
        "disconnected before 1.5 times its keep-alive"
    );
    assert_eq!(silent.until_closed(), Vec::new());
    b.wait_parked(1);
    assert_eq!(b.router().session_count(), 1, "only the watcher's session");
}

/// A new connection with a parked client's id takes its session over
/// [MQTT-3.1.4-2]: the parked one is woken and closed, the new one finds
/// the session present [MQTT-3.2.2-2], with the message the old one had
/// not acknowledged resent and new messages delivered.
#[test]
fn a_parked_client_taken_over_hands_its_session_on() {
    let b = InProcessBroker::start(&[]);
    let mut old = BlockingClient::connect(b.addr(), "taken", false);
    old.subscribe(&[("t/#", QoS::AtLeastOnce)], 1);
    let mut publisher = BlockingClient::connect(b.addr(), "publisher", true);
    b.wait_parked(2);
    publisher.send(&publish("t/x", QoS::AtLeastOnce, Some(1), "first", false));
    assert_eq!(publisher.recv(), Packet::PubAck(pid(1)));
    // The old connection was woken and sent it; it never acknowledges.
    let Packet::Publish(first) = old.recv() else {
        panic!("expected PUBLISH");
    };
    assert_eq!(&first.message().payload[..], b"first");
    b.wait_parked(2);

    let (mut new, ack) = BlockingClient::connect_with(b.addr(), connect_packet("taken", false));
    assert!(
        ack.session_present,
        "the parked client's session is taken over"
    );
    assert_eq!(old.until_closed(), Vec::new());
    assert_eq!(
        receive(&mut new),
        "first",
        "the unacknowledged message resent"
    );
    publisher.send(&publish("t/x", QoS::AtLeastOnce, Some(2), "second", false));
    assert_eq!(publisher.recv(), Packet::PubAck(pid(2)));
    assert_eq!(receive(&mut new), "second");
}

/// A parked client that closes its socket without DISCONNECT is woken by
/// the close: its will is published, its clean session and its place in
/// the lot are gone.
#[test]
fn a_parked_client_closing_its_socket_is_cleaned_up() {
    let b = InProcessBroker::start(&[]);
    let mut watcher = BlockingClient::connect(b.addr(), "watcher", true);
    watcher.subscribe(&[("will/#", QoS::AtMostOnce)], 1);
    let connect = mqtt_codec::Connect {
        will: Some(will("will/closer", "closed", QoS::AtMostOnce, false)),
        ..connect_packet("closer", true)
    };
    let (closer, _) = BlockingClient::connect_with(b.addr(), connect);
    b.wait_parked(2);
    assert_eq!(b.router().session_count(), 2);
    drop(closer);
    assert_eq!(receive(&mut watcher), "closed");
    b.wait_parked(1);
    assert_eq!(b.router().session_count(), 1, "only the watcher's session");
    let stats = b.router().stats();
    assert_eq!(stats.connected(), 1, "only the watcher connected");
}

/// At shutdown the parked clients are woken and end as connected ones do:
/// the broker stops (no task left waiting on the lot), closing their
/// sockets, and their persistent sessions are saved with their
/// subscriptions: a restart on the same data finds them.
#[test]
fn shutdown_with_parked_clients_saves_their_sessions() {
    let data = tempfile::tempdir().expect("temporary directory");
    let dir = data.path().to_str().expect("a UTF-8 path");
    let b = InProcessBroker::start(&["--data-dir", dir]);
    let mut kept = BlockingClient::connect(b.addr(), "kept", false);
    kept.subscribe(&[("k/#", QoS::AtLeastOnce)], 1);
    let mut other = BlockingClient::connect(b.addr(), "other", false);
    b.wait_parked(2);
    b.stop();
    assert_eq!(kept.until_closed(), Vec::new());
    assert_eq!(other.until_closed(), Vec::new());

    let b = InProcessBroker::start(&["--data-dir", dir]);
    let (mut kept, ack) = BlockingClient::connect_with(b.addr(), connect_packet("kept", false));
    assert!(ack.session_present, "the parked client's session was saved");
    let (_, ack) = BlockingClient::connect_with(b.addr(), connect_packet("other", false));
    assert!(ack.session_present, "the parked client's session was saved");
    let mut publisher = BlockingClient::connect(b.addr(), "publisher", true);
    publisher.send(&publish("k/x", QoS::AtLeastOnce, Some(1), "after", false));
    assert_eq!(publisher.recv(), Packet::PubAck(pid(1)));
    assert_eq!(receive(&mut kept), "after", "its subscription was saved");
}

/// A socket that has sent nothing yet waits in the parking lot without a
/// task, and is served once its CONNECT comes: the accept loop takes
/// sockets in order, so once a later client has its CONNACK, the silent
/// one was accepted before it.
#[test]
fn a_socket_silent_after_its_accept_is_served_when_its_connect_comes() {
    let b = InProcessBroker::start(&[]);
    let silent = common::blocking_client::open(b.addr());
    let mut later = BlockingClient::connect(b.addr(), "later", true);
    assert_eq!(later.ping(), Vec::new());
    let mut silent = BlockingClient::from_stream(silent);
    silent.send(&Packet::Connect(connect_packet("silent", true)));
    let Packet::ConnAck(ack) = silent.recv() else {
        panic!("expected CONNACK");
    };
    assert_eq!(ack.code, mqtt_codec::ConnectReturnCode::Accepted);
    assert_eq!(silent.ping(), Vec::new());
}

/// Sockets that never send anything do not hold the shutdown: no router
/// slot tells them, so the lot ends them itself. (Held, the broker would
/// wait out its grace for connections and say so in its log.)
#[test]
fn silent_sockets_do_not_hold_the_shutdown() {
    let log = common::in_process::log();
    let b = InProcessBroker::start(&["--connect-timeout", "600"]);
    let silent: Vec<_> = (0..3)
        .map(|_| common::blocking_client::open(b.addr()))
        .collect();
    let mut client = BlockingClient::connect(b.addr(), "client", true);
    assert_eq!(client.ping(), Vec::new());
    b.stop();
    assert_eq!(client.until_closed(), Vec::new());
    for socket in silent {
        assert_eq!(
            BlockingClient::from_stream(socket).until_closed(),
            Vec::new()
        );
    }
    let text = log.text();
    assert!(!text.contains("did not close in time"), "{text}");
}
