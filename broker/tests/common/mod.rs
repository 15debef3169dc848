//! Helpers for the broker's integration tests: the real binary on
//! ephemeral loopback ports, and a raw MQTT client speaking codec packets.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Message, Packet, PacketId, Publish, QoS, SubAck,
    SubAckReturnCode, Subscribe, SubscribeFilter, decode_packet,
};
use testsupport::{ReferenceBroker, ReferenceOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Starts the broker built for this test run.
pub fn start(extra: &[&str]) -> ReferenceBroker {
    start_with(ReferenceOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ReferenceOptions::default()
    })
}

/// Starts the broker with full options (the binary is filled in).
pub fn start_with(mut options: ReferenceOptions) -> ReferenceBroker {
    options.binary = Some(PathBuf::from(env!("CARGO_BIN_EXE_broker")));
    ReferenceBroker::start(options)
}

pub fn pid(v: u16) -> PacketId {
    PacketId::new(v).unwrap()
}

pub fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

pub fn connect_packet(client_id: &str, clean: bool) -> Connect {
    Connect {
        client_id: client_id.into(),
        clean_session: clean,
        keep_alive: 60,
        ..Connect::default()
    }
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

/// A client that sends and receives whole packets and nothing else.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Opens a connection and completes CONNECT/CONNACK, asserting the code.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut c = Self::open(addr).await;
        c.send(&Packet::Connect(connect)).await;
        match c.recv().await {
            Packet::ConnAck(ack) => (c, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with a clean session and asserts acceptance.
    pub async fn connected(addr: SocketAddr, client_id: &str) -> Self {
        let (c, ack) = Self::connect(addr, connect_packet(client_id, true)).await;
        assert_eq!(ack.code, ConnectReturnCode::Accepted);
        c
    }

    pub async fn send(&mut self, p: &Packet) {
        self.send_bytes(&p.to_bytes().unwrap()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet, or `None` if the broker closed the connection.
    pub async fn try_recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(p) =
                    decode_packet(&mut self.buf, usize::MAX).expect("broker sent a valid packet")
                {
                    return Some(p);
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("a packet or a close within the wait")
    }

    pub async fn recv(&mut self) -> Packet {
        self.try_recv().await.expect("a packet, not a close")
    }

    /// Asserts that nothing arrives within `d` (the connection stays open).
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(p) = tokio::time::timeout(d, self.try_recv()).await {
            panic!("expected nothing, got {p:?}");
        }
    }

    /// Asserts the broker closes the connection (after any packets it sends).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.try_recv().await {
                None => return,
                Some(Packet::Publish(_)) => continue,
                Some(other) => panic!("expected close, got {other:?}"),
            }
        }
    }

    pub async fn subscribe(&mut self, filters: &[(&str, QoS)], id: u16) -> SubAck {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(id),
            filters: filters
                .iter()
                .map(|(f, q)| SubscribeFilter {
                    filter: TopicFilter::new(f).unwrap(),
                    qos: *q,
                })
                .collect(),
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(s) => {
                assert_eq!(s.packet_id, pid(id));
                assert!(
                    s.return_codes
                        .iter()
                        .all(|c| *c != SubAckReturnCode::Failure)
                );
                s
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Receives a PUBLISH, asserting that it is one.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}
