//! The fourteen MQTT 3.1.1 control packets as typed values.
//!
//! A decoded packet always obeys the rules the decoder checks: topics are valid
//! [`TopicName`]s and [`TopicFilter`]s, packet ids are non-zero, QoS is 0–2.
//! Building one by hand can still produce an inconsistent PUBLISH (QoS > 0 with
//! no packet id); the encoder refuses that with an [`EncodeError`](super::EncodeError).

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
/// Any other name or level decodes to
/// [`DecodeError::UnacceptableProtocol`](super::DecodeError::UnacceptableProtocol),
/// which a broker answers with CONNACK 0x01 [MQTT-3.1.2-2].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolLevel {
    /// MQTT 3.1: protocol name "MQIsdp", level 3. Accepted as mosquitto does.
    V3_1,
    /// MQTT 3.1.1: protocol name "MQTT", level 4.
    #[default]
    V3_1_1,
}

impl ProtocolLevel {
    /// The protocol name written in CONNECT.
    pub fn name(self) -> &'static str {
        match self {
            Self::V3_1 => "MQIsdp",
            Self::V3_1_1 => "MQTT",
        }
    }

    /// The protocol level byte written in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Self::V3_1 => 3,
            Self::V3_1_1 => 4,
        }
    }
}

/// A Last Will: published by the server when the connection ends without a
/// DISCONNECT [MQTT-3.1.2-8].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Where the will is published.
    pub topic: TopicName,
    /// The will's payload (may be empty).
    pub message: Bytes,
    /// QoS the will is published with.
    pub qos: QoS,
    /// Whether the will is published as a retained message.
    pub retain: bool,
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
    /// Last Will, if the Will flag is set.
    pub will: Option<LastWill>,
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

/// PUBLISH (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag: this may be a re-delivery [MQTT-3.3.1-1].
    pub dup: bool,
    /// Quality of service.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// The topic name, never holding wildcards [MQTT-3.3.2-2].
    pub topic: TopicName,
    /// Packet identifier: present exactly when `qos` is above 0 [MQTT-2.3.1-5].
    pub packet_id: Option<PacketId>,
    /// Application message; any bytes, possibly none.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message with DUP and RETAIN clear.
    pub fn at_most_once(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            payload: payload.into(),
        }
    }

    /// A QoS 1 or 2 message (or QoS 0 when `qos` is 0, in which case the id is
    /// dropped) with DUP and RETAIN clear.
    pub fn new(topic: TopicName, qos: QoS, packet_id: PacketId, payload: impl Into<Bytes>) -> Self {
        Self {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then_some(packet_id),
            payload: payload.into(),
        }
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
