//! One client's protocol state, as a state machine that never awaits.
//!
//! A [`Session`] is what MQTT calls the session state (§4.1): the client's
//! subscriptions, the QoS 1 and 2 messages in flight to it ([`Outgoing`]),
//! and the QoS 2 packet ids it has sent us and not yet released. It also
//! tracks the keep-alive deadline of the connection currently attached.
//!
//! The listener feeds it each decoded packet with [`Session::handle`] and the
//! current time, and performs the returned [`Action`]: write a reply, route a
//! message, ask the router to subscribe. Outgoing messages are handed to
//! [`Session::deliver`], which reserves packet ids within the in-flight
//! window. No sockets, no clock of its own: tests drive it by calling it.
//!
//! Before all that, [`connect`] holds the CONNECT rules: what the first
//! packet must be, the client id, the credentials, the will, and the CONNACK
//! that starts the connection on its session.
//!
//! The router never writes into a session: for SUBSCRIBE it returns what it
//! granted, and [`Session::granted`] records it and builds the SUBACK; for
//! UNSUBSCRIBE the session says which filters it held
//! ([`Session::unsubscribe`]) and the router drops those.
//!
//! A persistent session outlives its connection: the router keeps it while
//! the client is away and hands it to the next connection with the same
//! client id, which resumes the in-flight flows with [`Session::resume`].

mod client_id;
pub mod connect;
mod ids;
mod keepalive;
mod outgoing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub use client_id::resolve as resolve_client_id;
pub use ids::IdSet;
pub use keepalive::KeepAlive;
pub use outgoing::{AckOutcome, InFlight, OutState, Outgoing, Seq};

use crate::mutant;
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{
    Delivery, Message, Packet, PacketId, PacketType, Publish, QoS, SubAck, SubAckReturnCode,
    Subscribe, Unsubscribe,
};

/// The largest in-flight window: one id must stay free so that
/// [`Outgoing::send`] always finds one.
pub const MAX_WINDOW: usize = 65_534;

/// A protocol violation by the client; the connection is closed
/// [MQTT-4.8.0-1] and its will published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// A CONNECT arrived on a connection that already sent one.
    #[error("second CONNECT on an established connection [MQTT-3.1.0-2]")]
    SecondConnect,
    /// A packet only a server may send arrived from the client.
    #[error("client sent {packet}, which only a server may send [MQTT-4.8.0-1]")]
    ServerOnlyPacket {
        /// The packet type received.
        packet: PacketType,
    },
}

/// What the connection must do after [`Session::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to write or route (an acknowledgement that freed a slot in
    /// the window; the caller may now deliver more).
    None,
    /// Write this packet back to the client.
    Reply(Packet),
    /// Hand this message to the router, then write `ack` if there is one
    /// (PUBACK for QoS 1 [MQTT-4.3.2-2], PUBREC for QoS 2 [MQTT-4.3.3-2]).
    Route {
        /// The message to publish.
        message: Message,
        /// The acknowledgement to write once it is routed.
        ack: Option<Packet>,
    },
    /// Ask the router to add these subscriptions, then write the SUBACK.
    Subscribe(Subscribe),
    /// Ask the router to remove these subscriptions, then write UNSUBACK.
    Unsubscribe(Unsubscribe),
    /// The client sent DISCONNECT: close without publishing the will
    /// [MQTT-3.14.4-3].
    Disconnect,
}

/// The session state of one client.
///
/// Every connected client holds one for its whole life, so it is kept
/// small: the QoS 1 and 2 state is allocated with the first such flow.
#[derive(Debug, Clone)]
pub struct Session {
    client_id: Arc<str>,
    subscriptions: HashMap<TopicFilter, QoS>,
    flows: Option<Box<Flows>>,
    keep_alive: KeepAlive,
    /// At most [`MAX_WINDOW`].
    window: u16,
    clean: bool,
}

/// The QoS 1 and 2 flows of a session: what the store must keep of a
/// connected persistent session besides its subscriptions and queue.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    outgoing: Outgoing,
    /// QoS 2 ids received and answered with PUBREC, not yet released by
    /// PUBREL: a PUBLISH repeating one is not routed again [MQTT-4.3.3-2].
    awaiting_rel: IdSet,
}

/// What a session without QoS 1 or 2 flows answers with.
static NO_FLOWS: Flows = Flows {
    outgoing: Outgoing::new(),
    awaiting_rel: IdSet::new(),
};

impl Session {
    /// A fresh session. `max_inflight` caps the QoS 1 and 2 messages sent and
    /// not yet acknowledged (0 means the protocol's limit, [`MAX_WINDOW`]).
    pub fn new(client_id: impl Into<Arc<str>>, clean: bool, max_inflight: usize) -> Self {
        let window = if max_inflight == 0 {
            MAX_WINDOW
        } else {
            max_inflight.min(MAX_WINDOW)
        };
        let window = u16::try_from(window).unwrap_or(u16::MAX - 1);
        Self {
            client_id: client_id.into(),
            clean,
            window,
            subscriptions: HashMap::new(),
            flows: None,
            keep_alive: KeepAlive::new(0, Instant::now()),
        }
    }

    /// The client identifier.
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// Whether the session ends with its connection (Clean Session = 1).
    pub fn is_clean(&self) -> bool {
        self.clean
    }

    /// Starts a new connection on this session: sets the Clean Session flag
    /// it asked for and its keep-alive, heard at `now`.
    pub fn attach(&mut self, clean: bool, keep_alive: u16, now: Instant) {
        self.clean = clean;
        self.keep_alive = KeepAlive::new(keep_alive, now);
    }

    /// When the attached client will have been silent too long.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        self.keep_alive.deadline()
    }

    /// Whether the attached client has been silent too long at `now`
    /// [MQTT-3.1.2-24].
    pub fn keep_alive_expired(&self, now: Instant) -> bool {
        self.keep_alive.expired(now)
    }

    /// Counts the client as heard at `now` without a packet: its connection
    /// was paused for backpressure and did not read what it sent.
    pub fn heard(&mut self, now: Instant) {
        self.keep_alive.heard(now);
    }

    /// Handles one packet from the client, received at `now`.
    pub fn handle(&mut self, packet: Packet, now: Instant) -> Result<Action, SessionError> {
        let reset_skipped = (mutant::active("keepalive-reset-only-by-pingreq")
            && packet != Packet::PingReq)
            || (mutant::active("keepalive-reset-skips")
                && match mutant::value("keepalive-reset-skips") {
                    Some(skipped) => skipped == f64::from(packet.packet_type() as u8),
                    // No value: none of the acknowledgements resets it.
                    None => matches!(
                        packet,
                        Packet::PubAck(_)
                            | Packet::PubRec(_)
                            | Packet::PubRel(_)
                            | Packet::PubComp(_)
                    ),
                });
        if !reset_skipped {
            self.keep_alive.heard(now);
        }
        Ok(match packet {
            Packet::Publish(p) => self.incoming_publish(p),
            Packet::PubAck(id) => {
                if let Some(f) = &mut self.flows {
                    f.outgoing.puback(id);
                }
                Action::None
            }
            Packet::PubRec(id) => match self.flows.as_mut().map(|f| f.outgoing.pubrec(id)) {
                Some(AckOutcome::Matched) if mutant::active("pubrel-not-sent") => Action::None,
                Some(AckOutcome::Matched) => Action::Reply(Packet::PubRel(id)),
                Some(AckOutcome::Unknown) | None => Action::None,
            },
            Packet::PubComp(id) => {
                if let Some(f) = &mut self.flows {
                    f.outgoing.pubcomp(id);
                }
                Action::None
            }
            Packet::PubRel(id) => {
                // Answer PUBCOMP even for an id we do not hold: the client
                // may be resending after we already completed [MQTT-4.3.3-2].
                if let Some(f) = &mut self.flows
                    && !mutant::active("qos2-id-kept-after-pubrel")
                {
                    f.awaiting_rel.remove(id);
                }
                if mutant::active("pubcomp-not-sent") {
                    return Ok(Action::None);
                }
                Action::Reply(Packet::PubComp(id))
            }
            Packet::Subscribe(s) => Action::Subscribe(s),
            Packet::Unsubscribe(u) => Action::Unsubscribe(u),
            Packet::PingReq if mutant::active("pingreq-unanswered") => Action::None,
            Packet::PingReq => Action::Reply(Packet::PingResp),
            Packet::Disconnect => Action::Disconnect,
            Packet::Connect(_) if mutant::active("second-connect-ignored") => Action::None,
            Packet::Connect(_) => return Err(SessionError::SecondConnect),
            other @ (Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp) => {
                return Err(SessionError::ServerOnlyPacket {
                    packet: other.packet_type(),
                });
            }
        })
    }

    fn incoming_publish(&mut self, p: Publish) -> Action {
        match p.delivery() {
            Delivery::AtLeastOnce(id) => Action::Route {
                message: p.into_message(),
                ack: (!mutant::active("puback-missing")).then_some(Packet::PubAck(id)),
            },
            Delivery::ExactlyOnce(id) => {
                if self.flows_mut().awaiting_rel.insert(id)
                    || mutant::active("qos2-duplicate-routed")
                {
                    Action::Route {
                        message: p.into_message(),
                        ack: Some(Packet::PubRec(id)),
                    }
                } else {
                    // Same id before PUBREL: acknowledge again, deliver
                    // nothing [MQTT-4.3.3-2].
                    Action::Reply(Packet::PubRec(id))
                }
            }
            Delivery::AtMostOnce => Action::Route {
                message: p.into_message(),
                ack: None,
            },
        }
    }

    /// Whether a QoS 1 or 2 message may be sent now without exceeding the
    /// in-flight window. QoS 0 messages are never held back by the window.
    pub fn window_open(&self) -> bool {
        self.outgoing().len() < usize::from(self.window)
    }

    /// How many more QoS 1 and 2 messages the window takes now.
    pub fn window_room(&self) -> usize {
        usize::from(self.window).saturating_sub(self.outgoing().len())
    }

    /// Turns a message for this client into the PUBLISH to write, reserving
    /// a packet id for QoS 1 and 2. Returns `None` only when no packet id is
    /// free, which cannot happen while callers respect [`window_open`]
    /// (the window is capped below the 65,535 ids).
    ///
    /// `seq` is the message's number in the client's queue (see [`Seq`]).
    ///
    /// [`window_open`]: Session::window_open
    pub fn deliver(&mut self, message: Message, seq: Seq) -> Option<Publish> {
        if message.qos == QoS::AtMostOnce {
            return Some(Publish::new(Delivery::AtMostOnce, message));
        }
        self.flows_mut()
            .outgoing
            .send(message, seq)
            .map(|(id, message)| {
                Publish::new(Delivery::new(message.qos, id), message)
                    .with_dup(mutant::active("dup-set-on-first-delivery"))
            })
    }

    /// The packets that resume the in-flight flows on a new connection,
    /// oldest first (PUBLISH with DUP, or PUBREL) [MQTT-4.4.0-1].
    pub fn resume(&self) -> impl Iterator<Item = Packet> + '_ {
        self.outgoing().resend()
    }

    /// The in-flight window.
    pub fn outgoing(&self) -> &Outgoing {
        &self.flows.as_deref().unwrap_or(&NO_FLOWS).outgoing
    }

    /// Mutable access to the in-flight window, for restoring from the store.
    pub fn outgoing_mut(&mut self) -> &mut Outgoing {
        &mut self.flows_mut().outgoing
    }

    fn flows_mut(&mut self) -> &mut Flows {
        self.flows.get_or_insert_with(Box::default)
    }

    /// The QoS 2 ids waiting for PUBREL.
    pub fn awaiting_rel(&self) -> &IdSet {
        &self.flows.as_deref().unwrap_or(&NO_FLOWS).awaiting_rel
    }

    /// A copy of the QoS 1 and 2 flows (in-flight window, awaiting-PUBREL
    /// ids), for the store to write while the session stays connected.
    pub fn flows_copy(&self) -> Option<Box<Flows>> {
        self.flows.clone()
    }

    /// Puts back flows copied with [`Session::flows_copy`] (store).
    pub fn set_flows(&mut self, flows: Option<Box<Flows>>) {
        self.flows = flows;
    }

    /// Forgets every QoS 2 id received and not yet released: for a bridge
    /// whose remote came back without its session, so the ids it starts
    /// again from 1 are new messages, not repeats. Returns whether any
    /// were held (the flows changed).
    pub fn forget_awaiting_rel(&mut self) -> bool {
        match self.flows.as_deref_mut() {
            Some(f) if !f.awaiting_rel.is_empty() => {
                f.awaiting_rel = IdSet::new();
                true
            }
            _ => false,
        }
    }

    /// Marks a QoS 2 id as received and not yet released (store restore).
    pub fn restore_awaiting_rel(&mut self, id: PacketId) {
        self.flows_mut().awaiting_rel.insert(id);
    }

    /// The subscriptions, filter to granted QoS.
    pub fn subscriptions(&self) -> &HashMap<TopicFilter, QoS> {
        &self.subscriptions
    }

    /// Records a granted subscription, replacing one with the same filter
    /// [MQTT-3.8.4-3]. Returns the QoS it replaced.
    pub fn subscribed(&mut self, filter: TopicFilter, qos: QoS) -> Option<QoS> {
        self.subscriptions.insert(filter, qos)
    }

    /// Forgets a subscription; returns whether there was one.
    pub fn unsubscribed(&mut self, filter: &TopicFilter) -> bool {
        let removed = self.subscriptions.remove(filter).is_some();
        crate::sparse::shrink_if_sparse(&mut self.subscriptions);
        removed
    }

    /// Records what the router granted for `request` (one return code per
    /// filter, in order) and builds the SUBACK carrying those codes
    /// [MQTT-3.8.4-5]. A granted filter replaces a subscription with the same
    /// filter [MQTT-3.8.4-3]; a refused one (0x80) is not recorded.
    pub fn granted(&mut self, request: Subscribe, return_codes: Vec<SubAckReturnCode>) -> SubAck {
        for (f, code) in request.filters.into_iter().zip(&return_codes) {
            if let SubAckReturnCode::Granted(qos) = code {
                self.subscribed(f.filter, *qos);
            }
        }
        SubAck {
            packet_id: request.packet_id,
            return_codes,
        }
    }

    /// Forgets an UNSUBSCRIBE's filters. Returns the ones this session held,
    /// for the router to drop from its index (unknown ones are ignored
    /// [MQTT-3.10.4-1]), and the UNSUBACK to write [MQTT-3.10.4-4].
    pub fn unsubscribe(&mut self, request: Unsubscribe) -> (Vec<TopicFilter>, Packet) {
        let held = request
            .filters
            .into_iter()
            .filter(|f| self.unsubscribed(f))
            .collect();
        (held, Packet::UnsubAck(request.packet_id))
    }
}

#[cfg(test)]
mod tests;
