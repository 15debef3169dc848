//! `--persistent-client-expiration` with the real binary: a persistent
//! session whose client stays away too long is dropped — subscriptions,
//! queued messages and its record in the store — and a returning client
//! starts afresh. Waits are on the broker's log line, never fixed sleeps.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mqtt_codec::{Packet, QoS};
use testsupport::ReferenceOptions;

const EXPIRED: &str = "persistent session expired";
const SAVED: &str = "state saved after session expiry";

/// A persistent session for `id` subscribed to `exp/#`, left with one QoS 1
/// message queued.
async fn park_with_a_queued_message(addr: std::net::SocketAddr, id: &str) {
    let (mut sub, ack) = RawClient::connect(addr, connect_packet(id, false)).await;
    assert!(!ack.session_present);
    sub.subscribe(&[("exp/#", QoS::AtLeastOnce)], 1).await;
    sub.send(&Packet::Disconnect).await;
    assert_eq!(
        sub.try_recv().await,
        None,
        "the broker closes after DISCONNECT"
    );

    let mut publisher = RawClient::connected(addr, &format!("{id}-pub")).await;
    publish_acked(&mut publisher, "exp/1", 1, "queued").await;
}

/// Reconnects `id` with Clean Session 0 and checks it finds nothing: no
/// session, and none of the queued messages (a PINGREQ round trip after
/// the CONNACK bounds the wait; queued messages would come before it).
async fn returns_to_nothing(addr: std::net::SocketAddr, id: &str) {
    let (mut back, ack) = RawClient::connect(addr, connect_packet(id, false)).await;
    assert!(
        !ack.session_present,
        "the expired session must not be resumed"
    );
    back.send(&Packet::PingReq).await;
    assert_eq!(
        back.recv().await,
        Packet::PingResp,
        "nothing queued may be delivered"
    );
    back.expect_silence(std::time::Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn offline_persistent_session_expires_and_the_client_starts_afresh() {
    let b = start(&["--persistent-client-expiration", "1s"]);
    park_with_a_queued_message(b.addr(), "expiring").await;
    assert!(
        b.wait_for_log(EXPIRED, WAIT),
        "no expiry within {WAIT:?}:\n{}",
        b.log()
    );
    let log = b.log();
    let line = log.lines().find(|l| l.contains(EXPIRED)).unwrap();
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("client_id=expiring"), "{line}");
    assert!(line.contains("queued_dropped=1"), "{line}");
    returns_to_nothing(b.addr(), "expiring").await;
}

#[tokio::test]
async fn expired_session_leaves_the_store_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let with = |extra: &[&str]| ReferenceOptions {
        data_dir: Some(dir.path().to_owned()),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ReferenceOptions::default()
    };
    // First run, no expiry: the session and its queue reach the disk.
    {
        let mut b = start_with(with(&[]));
        park_with_a_queued_message(b.addr(), "stored").await;
        let status = b.terminate(WAIT).expect("exits");
        assert!(status.success(), "{status}\n{}", b.log());
    }
    // Second run with a limit: the session is restored, expires, and the
    // store is saved right away. The broker is then killed (SIGKILL: no
    // save at shutdown, and the autosave interval is an hour).
    {
        let b = start_with(with(&[
            "--persistent-client-expiration",
            "1s",
            "--autosave-interval",
            "3600",
        ]));
        assert!(b.log().contains("sessions=1"), "{}", b.log());
        assert!(
            b.wait_for_log(EXPIRED, WAIT),
            "no expiry within {WAIT:?}:\n{}",
            b.log()
        );
        assert!(b.log().contains("client_id=stored"), "{}", b.log());
        assert!(
            b.wait_for_log(SAVED, WAIT),
            "the store was not saved after the expiry:\n{}",
            b.log()
        );
    }
    // Third run without the flag: nothing comes back from the disk.
    let b = start_with(with(&[]));
    assert!(b.log().contains("sessions=0"), "{}", b.log());
    returns_to_nothing(b.addr(), "stored").await;
}
