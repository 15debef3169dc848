//! [`Outgoing`]: the messages the server has sent a client and not yet seen
//! acknowledged, in the order they were sent.
//!
//! Each QoS 1 message waits for PUBACK; each QoS 2 message waits for PUBREC,
//! then (after the server's PUBREL) for PUBCOMP (§4.3). A packet identifier
//! stays reserved until that last acknowledgement [MQTT-2.3.1-2], so ids are
//! never reused while in flight. After a reconnect the whole window is sent
//! again in its original order: PUBLISH with DUP set, or PUBREL for messages
//! already past PUBREC [MQTT-4.4.0-1] [MQTT-3.3.1-1].

use std::collections::VecDeque;

use super::ids::IdSet;
use crate::mutant;
use mqtt_codec::{Delivery, Message, Packet, PacketId, Publish, QoS};

/// Where one outgoing QoS 1 or 2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, waiting for PUBREC.
    AwaitPubRec,
    /// PUBREL sent, waiting for PUBCOMP. The message itself is no longer
    /// needed: the client owns it now [MQTT-4.3.3-2].
    AwaitPubComp,
}

/// The number a message gets when it is queued for a session, counting up
/// through the session's life (and across restarts): the store keys each
/// queued or in-flight message of a persistent session by it, so a commit
/// writes only the messages added and deletes only those gone since the
/// last one (issue 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

/// One message in flight from the server to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Its packet identifier.
    pub packet_id: PacketId,
    /// Its number in the session's queue, which the store keys it by.
    pub seq: Seq,
    /// The message as it was delivered (QoS already downgraded).
    pub message: Message,
    /// Which acknowledgement it waits for.
    pub state: OutState,
}

/// What an acknowledgement from the client meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// It completed or advanced a flow we know.
    Matched,
    /// No message in flight has that id in a state expecting this ack; the
    /// ack is ignored (a late duplicate after a resend, for example).
    Unknown,
}

/// The window of messages in flight to one client.
#[derive(Debug, Clone)]
pub struct Outgoing {
    entries: VecDeque<InFlight>,
    ids: IdSet,
    last_id: u16,
    /// The planted bug `qos2-redeliver-after-restart` keeps the QoS 2
    /// messages the client took here (test builds only).
    #[cfg(feature = "mutants")]
    completed: Vec<Message>,
}

impl Default for Outgoing {
    fn default() -> Self {
        Self::new()
    }
}

impl Outgoing {
    /// An empty window.
    pub const fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            ids: IdSet::new(),
            last_id: 0,
            #[cfg(feature = "mutants")]
            completed: Vec::new(),
        }
    }

    /// How many messages are in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The messages in flight, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &InFlight> {
        self.entries.iter()
    }

    /// The next free packet id after the last one handed out, skipping ids
    /// still in flight; `None` when all 65,535 are taken.
    fn next_id(&mut self) -> Option<PacketId> {
        if mutant::active("packet-id-not-advanced") {
            return PacketId::new(1);
        }
        for _ in 0..u16::MAX {
            self.last_id = if self.last_id == u16::MAX {
                1
            } else {
                self.last_id + 1
            };
            let id = PacketId::new(self.last_id)?;
            if !self.ids.contains(id) {
                return Some(id);
            }
        }
        None
    }

    /// Starts sending `message` (QoS 1 or 2): reserves a packet id and
    /// records the message as waiting for its first acknowledgement. Returns
    /// the PUBLISH to write, or `None` at QoS 0 (nothing to track) — the
    /// caller then writes the message without an id. `seq` is the
    /// message's number in the queue it came from.
    ///
    /// `None` is also returned if every id is in use, which a window capped
    /// below 65,535 (see [`Session`](super::Session)) never allows.
    pub fn send(&mut self, message: Message, seq: Seq) -> Option<(PacketId, Message)> {
        let state = match message.qos {
            QoS::AtMostOnce => return None,
            QoS::AtLeastOnce => OutState::AwaitPubAck,
            QoS::ExactlyOnce => OutState::AwaitPubRec,
        };
        let packet_id = self.next_id()?;
        self.ids.insert(packet_id);
        self.entries.push_back(InFlight {
            packet_id,
            seq,
            message: message.clone(),
            state,
        });
        Some((packet_id, message))
    }

    /// Restores an entry read back from the store (its id stays reserved).
    pub fn restore(&mut self, entry: InFlight) {
        if self.ids.insert(entry.packet_id) {
            self.last_id = entry.packet_id.get();
            self.entries.push_back(entry);
        }
    }

    fn position(&self, packet_id: PacketId, state: OutState) -> Option<usize> {
        if !self.ids.contains(packet_id) {
            return None;
        }
        // Acknowledgements mostly arrive in order, so the match is usually
        // at the front.
        self.entries
            .iter()
            .position(|e| e.packet_id == packet_id && e.state == state)
    }

    fn complete(&mut self, index: usize) {
        if let Some(entry) = self.entries.remove(index) {
            self.ids.remove(entry.packet_id);
        }
    }

    /// PUBACK for a QoS 1 message: the flow is complete and the id free.
    pub fn puback(&mut self, packet_id: PacketId) -> AckOutcome {
        match self.position(packet_id, OutState::AwaitPubAck) {
            Some(i) => {
                self.complete(i);
                AckOutcome::Matched
            }
            None => AckOutcome::Unknown,
        }
    }

    /// PUBREC for a QoS 2 message: the message is now the client's; the
    /// server answers PUBREL and waits for PUBCOMP [MQTT-4.3.3-1]. A PUBREC
    /// repeated for a message already waiting for PUBCOMP is answered with
    /// PUBREL again.
    pub fn pubrec(&mut self, packet_id: PacketId) -> AckOutcome {
        if let Some(i) = self.position(packet_id, OutState::AwaitPubRec) {
            if let Some(entry) = self.entries.get_mut(i) {
                #[cfg(feature = "mutants")]
                if crate::mutant::active("qos2-redeliver-after-restart") {
                    self.completed.push(entry.message.clone());
                }
                entry.state = OutState::AwaitPubComp;
                // The payload is no longer needed; drop our reference so a
                // stuck PUBCOMP does not pin the buffer.
                entry.message.payload = bytes::Bytes::new();
            }
            return AckOutcome::Matched;
        }
        if self.position(packet_id, OutState::AwaitPubComp).is_some() {
            return AckOutcome::Matched;
        }
        AckOutcome::Unknown
    }

    /// PUBCOMP: the QoS 2 flow is complete and the id free.
    pub fn pubcomp(&mut self, packet_id: PacketId) -> AckOutcome {
        match self.position(packet_id, OutState::AwaitPubComp) {
            Some(i) => {
                self.complete(i);
                AckOutcome::Matched
            }
            None => AckOutcome::Unknown,
        }
    }

    /// The packets that resume every flow after a reconnect, oldest first:
    /// PUBLISH with DUP set for unacknowledged messages [MQTT-3.3.1-1], PUBREL
    /// for messages waiting for PUBCOMP [MQTT-4.4.0-1].
    pub fn resend(&self) -> impl Iterator<Item = Packet> + '_ {
        self.entries
            .iter()
            .filter(|e| !(e.state == OutState::AwaitPubComp && mutant::active("pubrel-not-resent")))
            .map(|e| match e.state {
                OutState::AwaitPubComp => Packet::PubRel(e.packet_id),
                OutState::AwaitPubAck | OutState::AwaitPubRec => {
                    let delivery = Delivery::new(e.message.qos, e.packet_id);
                    let dup = !mutant::active("dup-not-set-on-resend");
                    Packet::Publish(Publish::new(delivery, e.message.clone()).with_dup(dup))
                }
            })
    }

    /// The QoS 2 messages the planted bug `qos2-redeliver-after-restart`
    /// kept after the client took them (always none without it).
    #[cfg(feature = "mutants")]
    pub fn completed(&self) -> &[Message] {
        &self.completed
    }

    /// Forgets everything (a clean session starting over).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.ids = IdSet::new();
    }
}
