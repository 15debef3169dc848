//! Helpers for the broker's integration tests: the binary cargo built for
//! this test run on ephemeral loopback ports, and packet builders for
//! `testsupport`'s raw client.

#![allow(dead_code, clippy::unwrap_used)]

pub mod blocking_client;
pub mod flood;
pub mod in_process;
pub mod mosquitto_clients;
pub mod pki;
pub mod process;
pub mod retained;
pub mod ws_client;

use std::net::SocketAddr;

use bytes::Bytes;
use mqtt_codec::topic::TopicName;
use mqtt_codec::{Delivery, Message, Packet, PacketId, Publish, QoS};
use testsupport::{ReferenceBroker, ReferenceOptions};

// Not every test file uses all of these.
#[allow(unused_imports)]
pub use testsupport::{RawClient, WAIT, connect_packet};

/// The workspace's root, where `interop/` holds the client scripts.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

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

/// Options persisting to `dir` (`--data-dir`).
pub fn with_data_dir(dir: &std::path::Path) -> ReferenceOptions {
    ReferenceOptions {
        data_dir: Some(dir.to_owned()),
        ..ReferenceOptions::default()
    }
}

/// Runs the broker with `options` expecting it to refuse to start, and
/// returns its output; fails the test if it is still running after
/// [`WAIT`] (it is then killed).
pub fn run_until_exit(options: &ReferenceOptions) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(options.flags())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let child = std::sync::Arc::new(std::sync::Mutex::new(child));
    let waiter = std::sync::Arc::clone(&child);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_end(&mut err);
        }
        if let Some(mut s) = stdout {
            let _ = s.read_to_end(&mut out);
        }
        let status = waiter.lock().unwrap().wait();
        let _ = tx.send((status, out, err));
    });
    match rx.recv_timeout(WAIT) {
        Ok((status, stdout, stderr)) => std::process::Output {
            status: status.unwrap(),
            stdout,
            stderr,
        },
        Err(_) => {
            let _ = child.lock().map(|mut c| c.kill());
            panic!("broker {pid} still running after {WAIT:?}");
        }
    }
}
