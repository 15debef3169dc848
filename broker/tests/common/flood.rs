//! A publisher that floods the broker from a thread of its own, and the
//! two ends of the QoS flows around it, for the backpressure tests: a
//! subscriber that reads (and acknowledges) numbered messages in order, and
//! a publisher that collects its acknowledgements.
//!
//! Built on [`BlockingClient`], so what the flood holds while it waits is
//! a descriptor and the packets encoded ahead, never heap of its own that
//! a test counting the broker's heap would see grow.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{Packet, QoS};

use super::WAIT;
use super::blocking_client::{BlockingClient, encode, publish_packet};
use super::pid;

/// `count` PUBLISH packets on `t` at `qos`, encoded ahead, with ids 1 to
/// `count` and `size`-byte payloads that start with their number (see
/// [`number_of`]).
pub fn numbered(t: &str, qos: QoS, count: usize, size: usize) -> Vec<BytesMut> {
    (1..=count)
        .map(|i| {
            let id = u16::try_from(i).expect("ids fit");
            let mut payload = format!("{i:08}").into_bytes();
            payload.resize(size.max(8), b'p');
            encode(&publish_packet(t, qos, id, Bytes::from(payload), false))
        })
        .collect()
}

/// The number a [`numbered`] payload starts with.
pub fn number_of(payload: &[u8]) -> usize {
    std::str::from_utf8(payload.get(..8).expect("numbered payload"))
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("numbered payload")
}

/// A thread writing packets to the broker with blocking writes: it stays
/// blocked while the broker does not read them.
pub struct Flood {
    thread: JoinHandle<()>,
}

impl Flood {
    /// Starts writing `packets` on `client` (a [`BlockingClient::try_clone`]
    /// of the publisher).
    pub fn start(mut client: BlockingClient, packets: Vec<BytesMut>) -> Self {
        Self {
            thread: std::thread::spawn(move || {
                for p in &packets {
                    client.send_bytes(p);
                }
            }),
        }
    }

    /// Whether every packet was written.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits (within [`WAIT`]) for every packet to be written.
    pub fn finish(self) {
        wait_for("the flood to be written", || self.thread.is_finished());
        self.thread.join().expect("the flood's thread");
    }
}

/// Waits for `done` to hold, looking every millisecond, for at most
/// [`WAIT`]; panics naming `what` past that.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl BlockingClient {
    /// As a subscriber: reads `count` numbered messages, acknowledging each
    /// at its QoS (PUBACK; PUBREC, then PUBCOMP for its PUBREL), and checks
    /// they come in order, numbered from `first`.
    pub fn receive_numbered(&mut self, first: usize, count: usize) {
        let mut next = first;
        while next < first + count {
            match self.recv() {
                Packet::Publish(p) => {
                    assert_eq!(number_of(&p.message().payload), next, "in order");
                    next += 1;
                    match p.delivery() {
                        mqtt_codec::Delivery::AtMostOnce => {}
                        mqtt_codec::Delivery::AtLeastOnce(id) => self.send(&Packet::PubAck(id)),
                        mqtt_codec::Delivery::ExactlyOnce(id) => self.send(&Packet::PubRec(id)),
                    }
                }
                Packet::PubRel(id) => self.send(&Packet::PubComp(id)),
                other => panic!("expected PUBLISH, got {:?}", other.packet_type()),
            }
        }
    }

    /// As the publisher of `count` [`numbered`] messages at `qos`: reads
    /// every acknowledgement in order (PUBACK; PUBREC answered with PUBREL,
    /// then PUBCOMP), or for QoS 0 checks with a PINGREQ that all were
    /// handled.
    pub fn expect_acks(&mut self, qos: QoS, count: usize) {
        let ids = (1..=count).map(|i| pid(u16::try_from(i).expect("ids fit")));
        match qos {
            QoS::AtMostOnce => assert!(self.ping().is_empty(), "nothing but PINGRESP"),
            QoS::AtLeastOnce => {
                for id in ids {
                    assert!(self.recv() == Packet::PubAck(id), "PUBACK in order");
                }
            }
            QoS::ExactlyOnce => {
                for id in ids.clone() {
                    assert!(self.recv() == Packet::PubRec(id), "PUBREC in order");
                    self.send(&Packet::PubRel(id));
                }
                for id in ids {
                    assert!(self.recv() == Packet::PubComp(id), "PUBCOMP in order");
                }
            }
        }
    }
}
