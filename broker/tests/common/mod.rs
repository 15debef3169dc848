//! Helpers for the broker's integration tests: the binary cargo built for
//! this test run on ephemeral loopback ports, and packet builders for
//! `testsupport`'s raw client.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use bytes::Bytes;
use mqtt_codec::topic::TopicName;
use mqtt_codec::{Delivery, Message, Packet, PacketId, Publish, QoS};
use testsupport::{ReferenceBroker, ReferenceOptions};

// Not every test file uses all of these.
#[allow(unused_imports)]
pub use testsupport::{RawClient, WAIT, connect_packet};

/// Starts the broker built for this test run.
pub fn start(extra: &[&str]) -> ReferenceBroker {
    start_with(ReferenceOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ReferenceOptions::default()
    })
}

/// Starts the broker built for this test run with its TLS listener on (a
/// certificate it generates) and `extra` flags.
pub fn start_tls(extra: &[&str]) -> ReferenceBroker {
    start_with(ReferenceOptions {
        tls: true,
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ReferenceOptions::default()
    })
}

/// Starts the broker built for this test run with full options.
pub fn start_with(options: ReferenceOptions) -> ReferenceBroker {
    ReferenceBroker::start(env!("CARGO_BIN_EXE_broker"), options)
}

pub fn pid(v: u16) -> PacketId {
    testsupport::packet_id(v)
}

pub fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

pub fn will(t: &str, payload: &'static str, qos: QoS, retain: bool) -> Message {
    Message {
        topic: topic(t),
        payload: Bytes::from_static(payload.as_bytes()),
        qos,
        retain,
    }
}

pub fn publish(t: &str, qos: QoS, id: Option<u16>, payload: &str, retain: bool) -> Packet {
    let delivery = match id {
        Some(id) => Delivery::new(qos, pid(id)),
        None => Delivery::AtMostOnce,
    };
    let message = Message {
        topic: topic(t),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
    };
    Packet::Publish(Publish::new(delivery, message))
}

/// Connects `client_id` with a clean session and subscribes it to `filters`
/// (packet id 1), asserting that the broker accepts both.
pub async fn subscribed(addr: SocketAddr, client_id: &str, filters: &[(&str, QoS)]) -> RawClient {
    let mut client = RawClient::connected(addr, client_id).await;
    client.subscribe(filters, 1).await;
    client
}

/// Publishes `payload` to `t` at QoS 1 with packet id `id`, not retained, and
/// asserts that the next packet is the PUBACK for that id.
pub async fn publish_acked(client: &mut RawClient, t: &str, id: u16, payload: &str) {
    client
        .send(&publish(t, QoS::AtLeastOnce, Some(id), payload, false))
        .await;
    assert_eq!(
        client.recv().await,
        Packet::PubAck(pid(id)),
        "{}",
        client.name()
    );
}
