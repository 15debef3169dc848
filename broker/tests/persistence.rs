//! State kept across a real restart of the broker with `--data-dir`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mqtt_codec::{Packet, QoS};
use testsupport::ReferenceOptions;

#[tokio::test]
async fn sessions_queued_messages_and_retained_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = start_with(with_data_dir(dir.path()));
        let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("durable", false)).await;
        sub.subscribe(&[("d/#", QoS::ExactlyOnce)], 1).await;
        sub.send(&Packet::Disconnect).await;
        assert_eq!(sub.try_recv().await, None);

        let mut publisher = RawClient::connected(b.addr(), "p").await;
        publish_acked(&mut publisher, "d/1", 1, "while away").await;
        publisher
            .send(&publish("r", QoS::AtMostOnce, None, "retained", true))
            .await;
        publisher.send(&Packet::PingReq).await;
        assert_eq!(publisher.recv().await, Packet::PingResp);
        let status = b.terminate(WAIT).expect("exits");
        assert!(status.success(), "{status}\n{}", b.log());
        assert!(b.log().contains("state saved"), "{}", b.log());
    }
    let b = start_with(with_data_dir(dir.path()));
    assert!(b.log().contains("sessions=1"), "{}", b.log());
    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("durable", false)).await;
    assert!(ack.session_present, "the session came back from disk");
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic().as_str(), &p.payload()[..], p.qos()),
        ("d/1", &b"while away"[..], QoS::AtLeastOnce)
    );
    sub.send(&Packet::PubAck(p.packet_id().unwrap())).await;

    let mut other = subscribed(b.addr(), "o", &[("r", QoS::AtMostOnce)]).await;
    let r = other.recv_publish().await;
    assert!(r.retain());
    assert_eq!(&r.payload()[..], b"retained");
}

/// Waits (boundedly) until the broker has logged `n` more autosaves than
/// `before`: a save that began after whatever the test did last. Needs
/// `--autosave-interval` and a log filter showing `broker::server` debug.
fn wait_for_autosaves(b: &testsupport::ReferenceBroker, before: usize, n: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    let count = || b.log().matches("state autosaved").count();
    // The log is written by another process: polled, with a bound.
    while count() < before + n {
        assert!(
            std::time::Instant::now() < deadline,
            "no autosave within {WAIT:?}:\n{}",
            b.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn autosaving(dir: &std::path::Path) -> ReferenceOptions {
    ReferenceOptions {
        extra_args: vec!["--autosave-interval".into(), "1".into()],
        log_filter: Some("info,broker::server=debug,broker::store=debug".into()),
        ..with_data_dir(dir)
    }
}

/// Issue 14: a clean-session-0 client that subscribed and stayed connected
/// lost its session when the broker was killed, however long after; the
/// autosave now writes the sessions of connected clients too.
#[tokio::test]
async fn issue_14_connected_session_survives_a_kill_after_an_autosave() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = start_with(autosaving(dir.path()));
        let (mut live, ack) = RawClient::connect(b.addr(), connect_packet("live", false)).await;
        assert!(!ack.session_present);
        live.subscribe(&[("k/#", QoS::AtLeastOnce)], 1).await;
        let before = b.log().matches("state autosaved").count();
        // Two more saves: the second began after the SUBACK.
        wait_for_autosaves(&b, before, 2);
        // Dropping the broker sends SIGKILL: no shutdown save.
        drop(b);
        drop(live);
    }
    let b = start_with(with_data_dir(dir.path()));
    assert!(b.log().contains("sessions=1"), "{}", b.log());
    let (mut live, ack) = RawClient::connect(b.addr(), connect_packet("live", false)).await;
    assert!(
        ack.session_present,
        "the connected session came back after the kill"
    );
    let mut publisher = RawClient::connected(b.addr(), "p").await;
    publish_acked(&mut publisher, "k/1", 1, "after the kill").await;
    let p = live.recv_publish().await;
    assert_eq!(
        (p.topic().as_str(), &p.payload()[..]),
        ("k/1", &b"after the kill"[..])
    );
}

/// Issue 14: QoS 2 messages a persistent subscriber completed must not come
/// back after a graceful restart, whether they reached it while it was
/// connected or were queued while it was away (and saved so by an
/// autosave) and delivered when it returned.
#[tokio::test]
async fn issue_14_completed_qos2_messages_are_not_redelivered_after_a_restart() {
    completed_qos2_not_redelivered(false).await;
}

/// Issue 14: the same across a kill after an autosave. Before the fix the
/// record of a connected session was left as the last save before it
/// connected wrote it, queue and all, so every message queued then came
/// back after a kill, however long after it was completed.
#[tokio::test]
async fn issue_14_completed_qos2_messages_are_not_redelivered_after_a_kill() {
    completed_qos2_not_redelivered(true).await;
}

/// Queues QoS 2 messages for an offline subscriber, lets an autosave write
/// them, has the subscriber take and complete them and more sent while it
/// is connected, then stops the broker (`kill`: SIGKILL after two more
/// autosaves; else SIGTERM), starts it again and checks nothing comes back.
async fn completed_qos2_not_redelivered(kill: bool) {
    const QUEUED: u16 = 200;
    const LIVE: u16 = 200;
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = start_with(autosaving(dir.path()));
        let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("eo", false)).await;
        sub.subscribe(&[("eo/#", QoS::ExactlyOnce)], 1).await;
        sub.send(&Packet::Disconnect).await;
        assert_eq!(sub.try_recv().await, None);
        let mut publisher = RawClient::connected(b.addr(), "p").await;
        for i in 1..=QUEUED {
            publish_qos2(&mut publisher, "eo/q", i, &format!("queued {i}")).await;
        }
        // An autosave writes the session with its queue.
        let before = b.log().matches("state autosaved").count();
        wait_for_autosaves(&b, before, 2);
        let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("eo", false)).await;
        assert!(ack.session_present);
        complete_qos2(&mut sub, QUEUED, "queued").await;
        for i in 1..=LIVE {
            publish_qos2(&mut publisher, "eo/l", i, &format!("live {i}")).await;
        }
        complete_qos2(&mut sub, LIVE, "live").await;
        // The broker reads a connection's packets in order: its PINGRESP
        // says the last PUBCOMP is in. Stopping it before that would leave
        // the flow at PUBREL, which it may send again after the restart.
        sub.send(&Packet::PingReq).await;
        assert_eq!(sub.recv().await, Packet::PingResp);
        if kill {
            let before = b.log().matches("state autosaved").count();
            wait_for_autosaves(&b, before, 2);
            // Dropping the broker sends SIGKILL: no shutdown save.
            drop(b);
        } else {
            let status = b.terminate(WAIT).expect("exits");
            assert!(status.success(), "{status}\n{}", b.log());
        }
    }
    let b = start_with(with_data_dir(dir.path()));
    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("eo", false)).await;
    assert!(ack.session_present, "{}", b.log());
    sub.expect_silence(std::time::Duration::from_millis(500))
        .await;
}

/// Publishes `payload` to `t` at QoS 2 with packet id `id` and runs the
/// sender's side of the exchange to PUBCOMP.
async fn publish_qos2(client: &mut RawClient, t: &str, id: u16, payload: &str) {
    client
        .send(&publish(t, QoS::ExactlyOnce, Some(id), payload, false))
        .await;
    assert_eq!(client.recv().await, Packet::PubRec(pid(id)));
    client.send(&Packet::PubRel(pid(id))).await;
    assert_eq!(client.recv().await, Packet::PubComp(pid(id)));
}

/// Receives `n` QoS 2 PUBLISH packets whose payloads are `prefix 1`,
/// `prefix 2`... in order, and completes each (PUBREC, then PUBCOMP for its
/// PUBREL; the broker may send more PUBLISH packets in between).
async fn complete_qos2(sub: &mut RawClient, n: u16, prefix: &str) {
    let (mut received, mut completed) = (0, 0);
    while completed < n {
        match sub.recv().await {
            Packet::Publish(p) => {
                received += 1;
                assert_eq!(
                    (&p.payload()[..], p.qos(), p.dup),
                    (
                        format!("{prefix} {received}").as_bytes(),
                        QoS::ExactlyOnce,
                        false
                    )
                );
                sub.send(&Packet::PubRec(p.packet_id().unwrap())).await;
            }
            Packet::PubRel(id) => {
                sub.send(&Packet::PubComp(id)).await;
                completed += 1;
            }
            other => panic!("expected PUBLISH or PUBREL, got {other:?}"),
        }
    }
    assert_eq!(received, n);
}

/// Issue 14: the retained messages a SUBSCRIBE owes are sent a chunk at a
/// time as the client's queue drains; what was not yet queued lived only
/// in memory, so a persistent subscriber stopped in the middle by a
/// restart never got the rest. Its session record now keeps what is owed.
#[tokio::test]
async fn issue_14_retained_messages_owed_survive_a_restart() {
    owed_retained_survive(false).await;
}

/// The same across a kill with `--durability batched`: the SUBACK waits
/// until the session, and what it is owed, is on disk.
#[tokio::test]
async fn issue_14_retained_messages_owed_survive_a_kill() {
    owed_retained_survive(true).await;
}

async fn owed_retained_survive(kill: bool) {
    const RETAINED: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let options = || ReferenceOptions {
        extra_args: vec!["--durability".into(), "batched".into()],
        ..with_data_dir(dir.path())
    };
    {
        let mut b = start_with(options());
        let mut publisher = RawClient::connected(b.addr(), "p").await;
        // At QoS 1, so the subscriber's in-flight window holds them back.
        for i in 0..RETAINED {
            let id = (i + 1) as u16;
            let t = format!("o/{i:04}");
            publisher
                .send(&publish(&t, QoS::AtLeastOnce, Some(id), "r", true))
                .await;
            assert_eq!(publisher.recv().await, Packet::PubAck(pid(id)));
        }
        let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("owed", false)).await;
        sub.subscribe(&[("o/#", QoS::AtLeastOnce)], 1).await;
        // The in-flight window (20) fills; nothing is acknowledged, so
        // most of the 1,000 are still owed, not queued.
        for _ in 0..20 {
            assert!(sub.recv_publish().await.retain());
        }
        if kill {
            // Dropping the broker sends SIGKILL: no shutdown save.
            drop(b);
        } else {
            let status = b.terminate(WAIT).expect("exits");
            assert!(status.success(), "{status}\n{}", b.log());
        }
    }
    let b = start_with(options());
    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("owed", false)).await;
    assert!(ack.session_present, "{}", b.log());
    let mut topics = std::collections::BTreeSet::new();
    while topics.len() < RETAINED {
        let p = sub.recv_publish().await;
        if let Some(id) = p.packet_id() {
            sub.send(&Packet::PubAck(id)).await;
        }
        topics.insert(p.topic().as_str().to_owned());
    }
    assert_eq!(topics.len(), RETAINED);
    assert_eq!(topics.first().map(String::as_str), Some("o/0000"));
}
