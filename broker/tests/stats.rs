//! `$SYS/broker/...` statistics, the periodic stats line in the log,
//! `--max-connections` and `--max-queued-bytes`, observed on the real
//! binary from outside.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use mqtt_codec::{ConnectReturnCode, Packet, QoS};

/// A TLS client that has completed CONNECT and stays connected while held.
async fn tls_client(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    client_id: &str,
) -> RawClient {
    let roots = credentials::tls::load_roots(ca, "--cafile").unwrap();
    let config =
        credentials::tls::client_config(credentials::tls::ServerVerification::Roots(roots), None)
            .unwrap();
    let mut tls = RawClient::open_tls(addr, Arc::new(config), "localhost")
        .await
        .named(client_id);
    let ack = tls.handshake(connect_packet(client_id, true)).await;
    assert_eq!(ack.code, ConnectReturnCode::Accepted);
    tls
}

/// Collects `$SYS` values as they are published.
struct SysWatcher {
    client: RawClient,
    values: HashMap<String, String>,
}

impl SysWatcher {
    async fn new(b: &testsupport::ReferenceBroker) -> Self {
        let mut client = RawClient::connected(b.addr(), "sys-watcher").await;
        client
            .subscribe(&[("$SYS/broker/#", QoS::AtMostOnce)], 1)
            .await;
        Self {
            client,
            values: HashMap::new(),
        }
    }

    fn get(&self, topic: &str) -> Option<&str> {
        self.values
            .get(&format!("$SYS/broker/{topic}"))
            .map(String::as_str)
    }

    /// Reads `$SYS` publishes until `done` holds for what has been seen,
    /// within the bounded wait; panics with every value seen otherwise.
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {WAIT:?}; values: {:#?}",
                self.values
            );
            let p = self.client.recv_publish().await;
            self.values.insert(
                p.topic().as_str().to_owned(),
                String::from_utf8_lossy(p.payload()).into_owned(),
            );
        }
    }

    fn number(&self, topic: &str) -> Option<u64> {
        self.get(topic)?.parse().ok()
    }
}

#[tokio::test]
async fn sys_topics_count_clients_per_listener_messages_and_retained() {
    let b = start_tls(&["--sys-interval", "1"]);
    let mut sys = SysWatcher::new(&b).await;
    // The first round's count is taken before its own topics are
    // retained; once settled, the only retained messages are the `$SYS`
    // topics themselves.
    sys.until("the $SYS topics, all retained", |s| {
        s.get("version").is_some_and(|v| v.contains("broker"))
            && s.get("uptime").is_some_and(|v| v.ends_with(" seconds"))
            && s.get("subscriptions/count") == Some("1")
            && s.number("retained messages/count") == Some(s.values.len() as u64)
    })
    .await;
    let retained_before = sys.number("retained messages/count").unwrap();

    let tls = tls_client(b.tls_addr().unwrap(), &b.ca_file(), "tls-client").await;
    let mut publisher = RawClient::connected(b.addr(), "plain-publisher").await;
    publisher
        .send(&publish("stats/r", QoS::AtLeastOnce, Some(1), "kept", true))
        .await;
    assert_eq!(publisher.recv().await, Packet::PubAck(pid(1)));
    for _ in 0..5 {
        publisher
            .send(&publish("stats/x", QoS::AtMostOnce, None, "x", false))
            .await;
    }
    sys.until("two plain clients, one TLS client, six publishes", |s| {
        s.get("listeners/plain/connected") == Some("2")
            && s.get("listeners/tls/connected") == Some("1")
            && s.get("clients/connected") == Some("3")
            && s.number("clients/maximum").is_some_and(|n| n >= 3)
            && s.number("publish/messages/received")
                .is_some_and(|n| n >= 6)
            && s.number("bytes/received").is_some_and(|n| n > 0)
            && s.number("retained messages/count") == Some(retained_before + 1)
    })
    .await;

    // The TLS client leaves; clearing the retained message takes it away.
    drop(tls);
    publisher
        .send(&publish("stats/r", QoS::AtLeastOnce, Some(2), "", true))
        .await;
    assert_eq!(publisher.recv().await, Packet::PubAck(pid(2)));
    sys.until("the TLS client gone, the retained message cleared", |s| {
        s.get("listeners/tls/connected") == Some("0")
            && s.get("clients/connected") == Some("2")
            && s.number("retained messages/count") == Some(retained_before)
    })
    .await;

    // The periodic stats line, with the per-listener counts.
    assert!(b.wait_for_log("plain=2 tls=1", WAIT), "{}", b.log());
}

#[tokio::test]
async fn max_connections_closes_new_sockets_past_the_limit() {
    let b = start(&["--max-connections", "2"]);
    let first = RawClient::connected(b.addr(), "first").await;
    let _second = RawClient::connected(b.addr(), "second").await;

    let mut third = RawClient::open(b.addr()).await;
    third
        .send(&Packet::Connect(connect_packet("third", true)))
        .await;
    assert_eq!(third.try_recv().await, None, "closed without a CONNACK");
    assert!(
        b.wait_for_log("connection limit reached", WAIT),
        "{}",
        b.log()
    );

    // Once a client leaves, there is room again. The broker frees the slot
    // when that connection's task has ended, just after the log line; until
    // then a newcomer is still turned away, so retry within the bound.
    drop(first);
    assert!(
        b.wait_for_log("client closed the connection", WAIT),
        "{}",
        b.log()
    );
    let deadline = Instant::now() + WAIT;
    let mut fourth = loop {
        let mut c = RawClient::open(b.addr()).await;
        c.send(&Packet::Connect(connect_packet("fourth", true)))
            .await;
        match c.try_recv().await {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.code, ConnectReturnCode::Accepted);
                break c;
            }
            None => {
                assert!(Instant::now() < deadline, "no room again: {}", b.log());
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Some(other) => panic!("expected CONNACK or a close, got {other:?}"),
        }
    };
    fourth.send(&Packet::PingReq).await;
    assert_eq!(fourth.recv().await, Packet::PingResp);
}

#[tokio::test]
async fn max_queued_bytes_bounds_an_offline_session_and_counts_the_drops() {
    // Each message is 1,007 bytes (topic 7, payload 1,000): queued while
    // less than 2,500 wait, so three are kept and seven dropped.
    let b = start(&[
        "--sys-interval",
        "1",
        "--max-queued",
        "0",
        "--max-queued-bytes",
        "2500",
    ]);
    let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("bytes-sub", false)).await;
    sub.subscribe(&[("bytes/t", QoS::AtLeastOnce)], 1).await;
    sub.send(&Packet::Disconnect).await;
    // The broker parks the session before it closes the socket.
    sub.expect_closed().await;

    let mut publisher = RawClient::connected(b.addr(), "bytes-pub").await;
    let payload = "b".repeat(1000);
    for id in 1..=10 {
        publish_acked(&mut publisher, "bytes/t", id, &payload).await;
    }

    let mut sys = SysWatcher::new(&b).await;
    sys.until("seven messages dropped", |s| {
        s.number("publish/messages/dropped") == Some(7)
    })
    .await;

    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("bytes-sub", false)).await;
    assert!(ack.session_present);
    for _ in 0..3 {
        let p = sub.recv_publish().await;
        assert_eq!(p.payload().len(), 1000);
        sub.send(&Packet::PubAck(p.packet_id().unwrap())).await;
    }
    sub.expect_silence(std::time::Duration::from_millis(300))
        .await;
}
