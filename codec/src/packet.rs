//! The fourteen MQTT 3.1.1 control packets as typed values.
//!
//! A decoded packet always obeys the rules the decoder checks: topics are valid
//! [`TopicName`]s and [`TopicFilter`]s, packet ids are non-zero, QoS is 0–2.
//! A PUBLISH holds its packet id inside its [`Delivery`], so one at QoS 1 or 2
//! without an id, or at QoS 0 with one, cannot be built by hand either. What
//! typed values can still get wrong (DUP at QoS 0, an over-long field) the
//! encoder refuses with an [`EncodeError`](super::EncodeError).

use std::fmt;
use std::num::NonZeroU16;

use bytes::Bytes;

use crate::topic::{TopicFilter, TopicName};

/// Quality of service of a PUBLISH, a will or a subscription (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// QoS 0: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged by PUBACK, may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: four-step handshake, delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a two-bit value; `None` for 3, which no packet may carry.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The numeric level, 0 to 2.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u8())
    }
}

/// A packet identifier: non-zero by construction [MQTT-2.3.1-1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The id for `value`, or `None` for 0.
    pub const fn new(value: u16) -> Option<Self> {
        match NonZeroU16::new(value) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The numeric id.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The id after this one, wrapping from 65535 to 1 and never yielding 0.
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).unwrap_or(NonZeroU16::MIN))
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kind of a control packet: the high nibble of the first byte (§2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Client request to connect.
    Connect = 1,
    /// Connect acknowledgement.
    ConnAck = 2,
    /// Publish message.
    Publish = 3,
    /// QoS 1 acknowledgement.
    PubAck = 4,
    /// QoS 2 step 1 acknowledgement.
    PubRec = 5,
    /// QoS 2 release.
    PubRel = 6,
    /// QoS 2 completion.
    PubComp = 7,
    /// Subscribe request.
    Subscribe = 8,
    /// Subscribe acknowledgement.
    SubAck = 9,
    /// Unsubscribe request.
    Unsubscribe = 10,
    /// Unsubscribe acknowledgement.
    UnsubAck = 11,
    /// Ping request.
    PingReq = 12,
    /// Ping response.
    PingResp = 13,
    /// Client is disconnecting.
    Disconnect = 14,
}

impl PacketType {
    /// The type for a high nibble; `None` for the reserved values 0 and 15.
    pub fn from_nibble(nibble: u8) -> Option<Self> {
        use PacketType::*;
        Some(match nibble {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            _ => return None,
        })
    }

    /// The fixed-header flags this type must carry (§2.2.2). PUBLISH flags
    /// vary and are checked separately, so its entry is `None`.
    pub fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// The Remaining Length of a type whose body has one fixed size: 2 for
    /// CONNACK and the packet-id acknowledgements, 0 for PINGREQ, PINGRESP and
    /// DISCONNECT (sections 3.2.1, 3.4.1-3.7.1, 3.11.1-3.14.1). `None` for the
    /// types whose body varies.
    pub fn fixed_remaining_length(self) -> Option<usize> {
        use PacketType::*;
        match self {
            ConnAck | PubAck | PubRec | PubRel | PubComp | UnsubAck => Some(2),
            PingReq | PingResp | Disconnect => Some(0),
            Connect | Publish | Subscribe | SubAck | Unsubscribe => None,
        }
    }

    /// The statement id that governs this type's fixed-header flags.
    pub fn flags_statement(self) -> &'static str {
        match self {
            PacketType::PubRel => "MQTT-3.6.1-1",
            PacketType::Subscribe => "MQTT-3.8.1-1",
            PacketType::Unsubscribe => "MQTT-3.10.1-1",
            PacketType::Disconnect => "MQTT-3.14.1-1",
            _ => "MQTT-2.2.2-2",
        }
    }

    /// The name the specification uses, in capitals.
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The protocol versions a CONNECT may ask for that this codec understands.
/// A level with its high bit set (0x83, 0x84) is a bridge's CONNECT:
/// mosquitto's `try_private` marks its bridges so (not in the standard;
/// mosquitto accepts it, and so do we). Any other name or level decodes to
/// [`DecodeError::UnacceptableProtocol`](super::DecodeError::UnacceptableProtocol),
/// which a broker answers with CONNACK 0x01 [MQTT-3.1.2-2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolLevel {
    /// MQTT 3.1: protocol name "MQIsdp", level 3. Accepted as mosquitto does.
    V3_1,
    /// MQTT 3.1.1: protocol name "MQTT", level 4.
    #[default]
    V3_1_1,
    /// MQTT 3.1 from a bridge: "MQIsdp", level 0x83.
    V3_1Bridge,
    /// MQTT 3.1.1 from a bridge: "MQTT", level 0x84.
    V3_1_1Bridge,
}

/// As people name the versions: "MQTT 3.1.1", "MQTT 3.1 (bridge)".
impl std::fmt::Display for ProtocolLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolLevel::V3_1 => "MQTT 3.1",
            ProtocolLevel::V3_1_1 => "MQTT 3.1.1",
            ProtocolLevel::V3_1Bridge => "MQTT 3.1 (bridge)",
            ProtocolLevel::V3_1_1Bridge => "MQTT 3.1.1 (bridge)",
        })
    }
}

/// The high bit of the protocol level byte: the CONNECT comes from a bridge.
const BRIDGE_BIT: u8 = 0x80;

impl ProtocolLevel {
    /// The protocol name written in CONNECT.
    pub fn name(self) -> &'static str {
        match self.base() {
            Self::V3_1 => "MQIsdp",
            _ => "MQTT",
        }
    }

    /// The protocol level byte written in CONNECT (with the bridge bit for
    /// a bridge).
    pub fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
            Self::V3_1Bridge => BRIDGE_BIT | 3,
            Self::V3_1_1Bridge => BRIDGE_BIT | 4,
        }
    }

    /// The level for a protocol name and level byte, if this codec speaks it.
    pub fn from_name_and_level(name: &[u8], level: u8) -> Option<Self> {
        match (name, level) {
            (b"MQTT", 4) => Some(Self::V3_1_1),
            (b"MQIsdp", 3) => Some(Self::V3_1),
            (b"MQTT", 0x84) => Some(Self::V3_1_1Bridge),
            (b"MQIsdp", 0x83) => Some(Self::V3_1Bridge),
            _ => None,
        }
    }

    /// Whether the CONNECT marks its client as a bridge (level 0x83/0x84).
    pub fn is_bridge(self) -> bool {
        matches!(self, Self::V3_1Bridge | Self::V3_1_1Bridge)
    }

    /// The protocol without the bridge mark.
    pub fn base(self) -> Self {
        match self {
            Self::V3_1 | Self::V3_1Bridge => Self::V3_1,
            Self::V3_1_1 | Self::V3_1_1Bridge => Self::V3_1_1,
        }
    }

    /// The same protocol with the bridge mark (`bridge` set) or without.
    pub fn bridged(self, bridge: bool) -> Self {
        match (self.base(), bridge) {
            (Self::V3_1, true) => Self::V3_1Bridge,
            (Self::V3_1, false) => Self::V3_1,
            (_, true) => Self::V3_1_1Bridge,
            (_, false) => Self::V3_1_1,
        }
    }
}

/// An application message: a topic, a payload, the QoS it travels at and
/// the RETAIN flag. A PUBLISH carries one ([`Publish::message`]), a CONNECT's
/// will is one [MQTT-3.1.2-8], and the broker routes and stores them.
/// Cloning costs two reference counts and no allocation, so one message can
/// reach many subscribers without copying its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it is published; never holds wildcards [MQTT-3.3.2-2].
    pub topic: TopicName,
    /// Any bytes, possibly none.
    pub payload: Bytes,
    /// The QoS it travels at (on delivery: the minimum of the published QoS
    /// and the subscription's granted QoS [MQTT-3.8.4-6]).
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
}

impl Message {
    /// A message on `topic` at `qos`, RETAIN clear.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS) -> Self {
        Self {
            topic,
            payload: payload.into(),
            qos,
            retain: false,
        }
    }

    /// A copy at `qos` and with `retain`, for one subscriber.
    pub fn for_delivery(&self, qos: QoS, retain: bool) -> Self {
        Self {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos,
            retain,
        }
    }

    /// The same message with a payload that owns its bytes.
    ///
    /// A decoded payload is a slice of the buffer its packet was read into,
    /// and keeps that whole buffer alive (one read, up to tens of KB, other
    /// packets included) for as long as the slice lives. Whatever is kept
    /// beyond the read (queued for a subscriber, retained, a will) takes
    /// this copy of just its own bytes; the topic is already its own
    /// allocation. One allocation and one copy of the payload.
    pub fn with_own_payload(&self) -> Self {
        Self {
            topic: self.topic.clone(),
            payload: Bytes::copy_from_slice(&self.payload),
            qos: self.qos,
            retain: self.retain,
        }
    }

    /// The size of topic and payload, for byte counters and memory limits.
    pub fn size(&self) -> usize {
        self.topic.as_str().len() + self.payload.len()
    }
}

/// How one PUBLISH is delivered: its QoS, with the packet identifier that
/// QoS 1 and 2 need and QoS 0 must not have [MQTT-2.3.1-1] [MQTT-2.3.1-5].
/// A PUBLISH at QoS 1 without an id cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// QoS 0: no id, no acknowledgement.
    AtMostOnce,
    /// QoS 1: acknowledged by a PUBACK carrying this id.
    AtLeastOnce(PacketId),
    /// QoS 2: the four-step exchange under this id.
    ExactlyOnce(PacketId),
}

impl Delivery {
    /// The delivery at `qos` under `packet_id` (which QoS 0 leaves out).
    pub fn new(qos: QoS, packet_id: PacketId) -> Self {
        match qos {
            QoS::AtMostOnce => Self::AtMostOnce,
            QoS::AtLeastOnce => Self::AtLeastOnce(packet_id),
            QoS::ExactlyOnce => Self::ExactlyOnce(packet_id),
        }
    }

    /// The QoS.
    pub fn qos(self) -> QoS {
        match self {
            Self::AtMostOnce => QoS::AtMostOnce,
            Self::AtLeastOnce(_) => QoS::AtLeastOnce,
            Self::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier; `None` at QoS 0.
    pub fn packet_id(self) -> Option<PacketId> {
        match self {
            Self::AtMostOnce => None,
            Self::AtLeastOnce(id) | Self::ExactlyOnce(id) => Some(id),
        }
    }
}

/// CONNECT (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    /// Protocol name and level.
    pub protocol: ProtocolLevel,
    /// Clean Session flag: discard any earlier session and keep none after.
    pub clean_session: bool,
    /// Keep-alive interval in seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// Client identifier; may be empty, in which case the server assigns one
    /// or refuses with 0x02 [MQTT-3.1.3-6] [MQTT-3.1.3-8].
    pub client_id: String,
    /// The will message, if the Will flag is set: its topic, payload, QoS
    /// and RETAIN flag [MQTT-3.1.2-8].
    pub will: Option<Message>,
    /// User name, if the User Name flag is set.
    pub username: Option<String>,
    /// Password, if the Password flag is set (binary data, not a string).
    pub password: Option<Bytes>,
}

/// CONNACK return codes (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0x00: connection accepted.
    Accepted = 0,
    /// 0x01: the server does not support the protocol level asked for.
    UnacceptableProtocolVersion = 1,
    /// 0x02: the client id is well-formed UTF-8 but not allowed.
    IdentifierRejected = 2,
    /// 0x03: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 0x04: the user name or password is malformed or wrong.
    BadUserNameOrPassword = 4,
    /// 0x05: the client is not authorised to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a byte; `None` for the reserved values 6–255.
    pub fn from_u8(code: u8) -> Option<Self> {
        use ConnectReturnCode::*;
        Some(match code {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }

    /// The code as a byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// What the code means, in words, for people reading a report.
    pub fn describe(self) -> &'static str {
        use ConnectReturnCode::*;
        match self {
            Accepted => "connection accepted",
            UnacceptableProtocolVersion => "unacceptable protocol version",
            IdentifierRejected => "identifier rejected",
            ServerUnavailable => "server unavailable",
            BadUserNameOrPassword => "bad user name or password",
            NotAuthorized => "not authorized",
        }
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02x} ({})", self.as_u8(), self.describe())
    }
}

/// CONNACK (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present flag. The decoder keeps whatever the sender set, even
    /// with a refusal code, so that a harness can check [MQTT-3.2.2-4].
    pub session_present: bool,
    /// The return code.
    pub code: ConnectReturnCode,
}

/// PUBLISH (§3.3): a [`Message`] and how it is delivered.
///
/// The QoS lives in the [`Delivery`], which holds the packet id exactly when
/// the QoS needs one; the message's own `qos` is kept equal to it by every
/// constructor, which is why the fields are private.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag: this may be a re-delivery [MQTT-3.3.1-1].
    pub dup: bool,
    delivery: Delivery,
    message: Message,
}

impl Publish {
    /// `message` delivered as `delivery` (whose QoS it takes), DUP clear.
    pub fn new(delivery: Delivery, mut message: Message) -> Self {
        message.qos = delivery.qos();
        Self {
            dup: false,
            delivery,
            message,
        }
    }

    /// A QoS 0 message with DUP and RETAIN clear.
    pub fn at_most_once(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self::new(
            Delivery::AtMostOnce,
            Message::new(topic, payload, QoS::AtMostOnce),
        )
    }

    /// `payload` on `topic` at `qos` under `packet_id` (which QoS 0 leaves
    /// out), DUP and RETAIN clear.
    pub fn at_qos(
        topic: TopicName,
        qos: QoS,
        packet_id: PacketId,
        payload: impl Into<Bytes>,
    ) -> Self {
        Self::new(
            Delivery::new(qos, packet_id),
            Message::new(topic, payload, qos),
        )
    }

    /// The same with the DUP flag set to `dup`.
    pub fn with_dup(mut self, dup: bool) -> Self {
        self.dup = dup;
        self
    }

    /// The same with the RETAIN flag set to `retain`.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.message.retain = retain;
        self
    }

    /// How it is delivered.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// Its QoS.
    pub fn qos(&self) -> QoS {
        self.delivery.qos()
    }

    /// Its packet identifier; `None` at QoS 0.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.delivery.packet_id()
    }

    /// The application message it carries (its `qos` is this PUBLISH's).
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The application message, taken out.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The topic name.
    pub fn topic(&self) -> &TopicName {
        &self.message.topic
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The RETAIN flag.
    pub fn retain(&self) -> bool {
        self.message.retain
    }
}

/// One topic filter of a SUBSCRIBE with its requested QoS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: TopicFilter,
    /// The maximum QoS the client asks for.
    pub qos: QoS,
}

/// SUBSCRIBE (§3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier echoed by the SUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.8.3-3].
    pub filters: Vec<SubscribeFilter>,
}

/// One SUBACK return code (§3.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubAckReturnCode {
    /// The subscription was accepted with this maximum QoS.
    Granted(QoS),
    /// 0x80: the subscription was refused.
    Failure,
}

impl SubAckReturnCode {
    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Granted(qos) => qos.as_u8(),
            Self::Failure => 0x80,
        }
    }

    /// The code for a byte; `None` for reserved values [MQTT-3.9.3-2].
    pub fn from_u8(code: u8) -> Option<Self> {
        match code {
            0x80 => Some(Self::Failure),
            other => QoS::from_bits(other).map(Self::Granted),
        }
    }
}

/// SUBACK (§3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The SUBSCRIBE's packet identifier [MQTT-3.8.4-2].
    pub packet_id: PacketId,
    /// One code per requested filter, in order [MQTT-3.9.3-1].
    pub return_codes: Vec<SubAckReturnCode>,
}

/// UNSUBSCRIBE (§3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier echoed by the UNSUBACK.
    pub packet_id: PacketId,
    /// At least one filter [MQTT-3.10.3-2].
    pub filters: Vec<TopicFilter>,
}

/// Any MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Connect),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK with its packet id.
    PubAck(PacketId),
    /// PUBREC with its packet id.
    PubRec(PacketId),
    /// PUBREL with its packet id.
    PubRel(PacketId),
    /// PUBCOMP with its packet id.
    PubComp(PacketId),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK with its packet id.
    UnsubAck(PacketId),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect,
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }
}

impl From<Connect> for Packet {
    fn from(p: Connect) -> Self {
        Packet::Connect(p)
    }
}
impl From<ConnAck> for Packet {
    fn from(p: ConnAck) -> Self {
        Packet::ConnAck(p)
    }
}
impl From<Publish> for Packet {
    fn from(p: Publish) -> Self {
        Packet::Publish(p)
    }
}
impl From<Subscribe> for Packet {
    fn from(p: Subscribe) -> Self {
        Packet::Subscribe(p)
    }
}
impl From<SubAck> for Packet {
    fn from(p: SubAck) -> Self {
        Packet::SubAck(p)
    }
}
impl From<Unsubscribe> for Packet {
    fn from(p: Unsubscribe) -> Self {
        Packet::Unsubscribe(p)
    }
}
