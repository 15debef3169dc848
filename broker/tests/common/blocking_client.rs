//! [`BlockingClient`]: an MQTT client on a blocking `std` socket, for the
//! tests that count the broker's heap in this process (see
//! [`super::in_process`]).
//!
//! Waiting, it holds no heap at all (the socket is a descriptor), and it
//! allocates only for the packet at hand, freed before it returns, so
//! what stays allocated across a test's step is the broker's. Every read
//! is bounded by [`WAIT`]. testsupport's `RawClient` is the client for
//! everything else; it keeps a read buffer per connection and needs a
//! runtime, both of which would be counted here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use bytes::{Bytes, BytesMut};
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Delivery, Message, Packet, Publish, QoS, SubAckReturnCode,
    Subscribe, SubscribeFilter, Unsubscribe, decode_slice, parse_fixed_header,
};

use super::{WAIT, connect_packet, pid, topic};

/// One connection, whole packets in and out; panics on whatever a test
/// cannot go on from (a timeout, a refused packet).
pub struct BlockingClient {
    stream: TcpStream,
}

/// `packet` encoded.
pub fn encode(packet: &Packet) -> BytesMut {
    let mut buf = BytesMut::new();
    packet.encode(&mut buf).expect("encodable");
    buf
}

/// A socket to `addr` that has sent nothing yet (no CONNECT), its reads
/// bounded by [`WAIT`].
pub fn open(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

impl BlockingClient {
    /// Connects `client_id` (keep-alive 60 s) and checks the CONNACK
    /// accepts it.
    pub fn connect(addr: SocketAddr, client_id: &str, clean_session: bool) -> Self {
        Self::connect_with(addr, connect_packet(client_id, clean_session)).0
    }

    /// A client over `stream` (from [`open`]) that has not connected yet.
    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream }
    }

    /// Sends `connect` and checks the CONNACK accepts it; returns the
    /// client with the CONNACK.
    pub fn connect_with(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut client = Self { stream: open(addr) };
        let client_id = connect.client_id.clone();
        client.send(&Packet::Connect(connect));
        match client.recv() {
            Packet::ConnAck(ack) => {
                assert_eq!(ack.code, ConnectReturnCode::Accepted, "{client_id}");
                (client, ack)
            }
            other => panic!(
                "{client_id}: expected CONNACK, got {:?}",
                other.packet_type()
            ),
        }
    }

    /// Reads until the broker closes the connection (within [`WAIT`]),
    /// returning the packets that came before.
    pub fn until_closed(&mut self) -> Vec<Packet> {
        let mut before = Vec::new();
        let mut bytes = Vec::new();
        self.stream
            .read_to_end(&mut bytes)
            .expect("the broker closes the connection within WAIT");
        let mut rest = &bytes[..];
        while let Some((packet, used)) = decode_slice(rest).expect("valid packet") {
            before.push(packet);
            rest = &rest[used..];
        }
        before
    }

    /// The socket, for a test that goes on in raw bytes.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// A second handle on the same connection (a duplicated descriptor,
    /// no heap), for a thread that writes while this one reads.
    pub fn try_clone(&self) -> Self {
        Self {
            stream: self.stream.try_clone().expect("clone the socket"),
        }
    }

    /// Closes the writing half of the connection (the broker reads the end
    /// of the stream) and keeps reading.
    pub fn shutdown_write(&self) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shut down writing");
    }

    /// Writes one packet.
    pub fn send(&mut self, packet: &Packet) {
        self.send_bytes(&encode(packet));
    }

    /// Writes bytes as they are (packets encoded ahead, in bulk).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads the next whole packet, within [`WAIT`].
    pub fn recv(&mut self) -> Packet {
        // The fixed header: the type byte and 1 to 4 length bytes.
        let mut head = [0u8; 5];
        let mut len = 0;
        let header = loop {
            self.stream
                .read_exact(&mut head[len..=len])
                .expect("read a packet within WAIT");
            len += 1;
            if let Some(header) = parse_fixed_header(&head[..len]).expect("valid header") {
                break header;
            }
        };
        let mut packet = vec![0u8; header.packet_len()];
        packet[..len].copy_from_slice(&head[..len]);
        self.stream
            .read_exact(&mut packet[len..])
            .expect("read a packet within WAIT");
        let (packet, _) = decode_slice(&packet)
            .expect("valid packet")
            .expect("whole packet");
        packet
    }

    /// Subscribes to `filters` in one SUBSCRIBE with packet id `id` and
    /// checks the SUBACK grants each at the QoS asked for.
    pub fn subscribe(&mut self, filters: &[(&str, QoS)], id: u16) {
        self.send(&subscribe_packet(filters, id));
        self.expect_suback(filters.iter().map(|(_, qos)| *qos), id);
    }

    /// Reads a SUBACK for `id` granting `qos` to each filter in turn.
    pub fn expect_suback(&mut self, qos: impl IntoIterator<Item = QoS>, id: u16) {
        match self.recv() {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, pid(id));
                let want: Vec<SubAckReturnCode> =
                    qos.into_iter().map(SubAckReturnCode::Granted).collect();
                assert_eq!(ack.return_codes, want, "SUBACK {id}");
            }
            other => panic!("expected SUBACK {id}, got {:?}", other.packet_type()),
        }
    }

    /// Sends PINGREQ and reads up to its PINGRESP, returning what came
    /// before it. The broker handles a connection's packets in order, so
    /// everything sent before was handled.
    pub fn ping(&mut self) -> Vec<Packet> {
        self.send(&Packet::PingReq);
        let mut before = Vec::new();
        loop {
            match self.recv() {
                Packet::PingResp => return before,
                other => before.push(other),
            }
        }
    }
}

/// A PUBLISH of `payload` on `t` (packet id `id` at QoS 1 and 2).
pub fn publish_packet(t: &str, qos: QoS, id: u16, payload: Bytes, retain: bool) -> Packet {
    let delivery = match qos {
        QoS::AtMostOnce => Delivery::AtMostOnce,
        qos => Delivery::new(qos, pid(id)),
    };
    let mut message = Message::new(topic(t), payload, qos);
    message.retain = retain;
    Packet::Publish(Publish::new(delivery, message))
}

/// A SUBSCRIBE of `filters` with packet id `id`.
pub fn subscribe_packet(filters: &[(&str, QoS)], id: u16) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        filters: filters
            .iter()
            .map(|(f, qos)| SubscribeFilter {
                filter: TopicFilter::new(*f).expect("valid filter"),
                qos: *qos,
            })
            .collect(),
    })
}

/// An UNSUBSCRIBE of `filters` with packet id `id`.
pub fn unsubscribe_packet(filters: &[&str], id: u16) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(id),
        filters: filters
            .iter()
            .map(|f| TopicFilter::new(*f).expect("valid filter"))
            .collect(),
    })
}
