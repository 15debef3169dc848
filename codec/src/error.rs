//! [`DecodeError`]: every way bytes can fail to be an MQTT 3.1.1 packet.
//!
//! Each message names the rule that was broken and, where the specification
//! has one, the normative statement id, so a log line or a conformance report
//! says exactly why a connection was closed.

use super::packet::PacketType;
use crate::topic::TopicError;

/// Why a byte sequence is not a valid MQTT 3.1.1 packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type nibble is 0 or 15, both reserved (§2.2.1).
    #[error("packet type {nibble} is reserved (section 2.2.1)")]
    ReservedPacketType {
        /// The offending high nibble of the first byte.
        nibble: u8,
    },
    /// Fixed-header flags differ from the table in §2.2.2.
    #[error("{packet} fixed-header flags are {flags:#06b}, must be {expected:#06b} [{statement}]")]
    InvalidFlags {
        /// The packet whose flags are wrong.
        packet: PacketType,
        /// The flags received.
        flags: u8,
        /// The flags the type requires.
        expected: u8,
        /// The statement id that requires them.
        statement: &'static str,
    },
    /// A PUBLISH has both QoS bits set.
    #[error("PUBLISH has QoS 3 [MQTT-3.3.1-4]")]
    PublishQoS3,
    /// A QoS 0 PUBLISH has its DUP flag set. The sender broke a MUST, and
    /// mosquitto treats such a packet as malformed too.
    #[error("PUBLISH has DUP set at QoS 0 [MQTT-3.3.1-2]")]
    PublishDupAtQoS0,
    /// A Remaining Length runs past four bytes.
    #[error("remaining length uses more than four bytes (section 2.2.3)")]
    RemainingLengthTooLong,
    /// A Remaining Length is encoded with more bytes than its value needs.
    #[error(
        "remaining length {value} is encoded in {bytes} bytes, more than needed (section 2.2.3)"
    )]
    RemainingLengthNotMinimal {
        /// The value encoded.
        value: usize,
        /// How many bytes were used.
        bytes: usize,
    },
    /// A packet whose body has one fixed size (CONNACK, the acknowledgements,
    /// PINGREQ, PINGRESP, DISCONNECT) announces another. Refused from the
    /// fixed header, so a PINGREQ cannot announce megabytes and make us wait
    /// for them (section 3.x.1 gives each type's Remaining Length).
    #[error("{packet} remaining length is {length}, must be {expected} (section 2.2.3)")]
    UnexpectedRemainingLength {
        /// The packet type.
        packet: PacketType,
        /// The Remaining Length received.
        length: usize,
        /// The only length the type can have.
        expected: usize,
    },
    /// The packet is larger than the receiver accepts; refused before its body
    /// is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size announced by the fixed header.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body ended before a field it must hold. When a flag or the
    /// packet's shape requires the field, the statement that does is cited
    /// (for example a missing client identifier breaks [MQTT-3.1.3-3]).
    #[error("{packet} ends before its {field}{}", cite(truncated_statement(*packet, field)))]
    Truncated {
        /// The packet being decoded.
        packet: PacketType,
        /// The field that is missing or cut short.
        field: &'static str,
    },
    /// The body holds bytes after its last field.
    #[error(
        "{packet} has {extra} unexpected byte{} after its last field{}",
        if *extra == 1 { "" } else { "s" },
        cite(*statement)
    )]
    TrailingBytes {
        /// The packet being decoded.
        packet: PacketType,
        /// How many bytes are left over.
        extra: usize,
        /// Statement id, when a flag said the field is absent.
        statement: Option<&'static str>,
    },
    /// A string is not well-formed UTF-8 (which includes encoded surrogates).
    #[error("{packet} {field} is not well-formed UTF-8 [MQTT-1.5.3-1]")]
    InvalidUtf8 {
        /// The packet being decoded.
        packet: PacketType,
        /// The field holding the string.
        field: &'static str,
    },
    /// A string contains U+0000.
    #[error("{packet} {field} contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter {
        /// The packet being decoded.
        packet: PacketType,
        /// The field holding the string.
        field: &'static str,
    },
    /// A CONNECT asks for a protocol name or level this codec does not speak.
    /// For a known name with an unsupported level a broker must answer
    /// CONNACK 0x01 and close [MQTT-3.1.2-2]; for an unknown name it may
    /// close at once [MQTT-3.1.2-1] (mosquitto does), or answer 0x01 as well.
    #[error(
        "CONNECT asks for protocol {name:?} level {level}, only \"MQTT\" level 4 and \"MQIsdp\" level 3 are supported [{}]",
        protocol_statement(name)
    )]
    UnacceptableProtocol {
        /// The protocol name, lossily decoded for display.
        name: String,
        /// The protocol level byte.
        level: u8,
    },
    /// The reserved bit 0 of the CONNECT flags is set.
    #[error("CONNECT reserved flag is set [MQTT-3.1.2-3]")]
    ConnectReservedFlag,
    /// Will QoS is 3.
    #[error("CONNECT will QoS is 3 [MQTT-3.1.2-14]")]
    WillQoS3,
    /// Will QoS is non-zero while the Will flag is clear.
    #[error("CONNECT will QoS is {qos} but the will flag is clear [MQTT-3.1.2-13]")]
    WillQoSWithoutWill {
        /// The will QoS bits.
        qos: u8,
    },
    /// Will Retain is set while the Will flag is clear.
    #[error("CONNECT will retain is set but the will flag is clear [MQTT-3.1.2-15]")]
    WillRetainWithoutWill,
    /// The Password flag is set without the User Name flag.
    #[error("CONNECT has the password flag without the user name flag [MQTT-3.1.2-22]")]
    PasswordWithoutUsername,
    /// A packet identifier is zero. SUBSCRIBE, UNSUBSCRIBE and QoS > 0
    /// PUBLISH need a non-zero one [MQTT-2.3.1-1]; an acknowledgement echoes
    /// one [MQTT-2.3.1-6] [MQTT-2.3.1-7], so 0 is never valid there either.
    #[error("{packet} has packet identifier 0 [{}]", packet_id_statement(*packet))]
    PacketIdZero {
        /// The packet carrying it.
        packet: PacketType,
    },
    /// A SUBSCRIBE has no topic filters.
    #[error("SUBSCRIBE has no topic filters [MQTT-3.8.3-3]")]
    EmptySubscribe,
    /// An UNSUBSCRIBE has no topic filters.
    #[error("UNSUBSCRIBE has no topic filters [MQTT-3.10.3-2]")]
    EmptyUnsubscribe,
    /// A requested-QoS byte of SUBSCRIBE has reserved bits set or asks for QoS 3.
    #[error(
        "SUBSCRIBE requested QoS byte is {byte:#04x}: reserved bits must be 0 and QoS at most 2 [MQTT-3.8.3-4]"
    )]
    InvalidRequestedQoS {
        /// The offending byte.
        byte: u8,
    },
    /// A topic name is invalid (wildcards, empty, U+0000). The statement is
    /// the one the [`TopicError`] names.
    #[error("{packet} {} {topic:?} is invalid: {source}", topic_field(*packet))]
    InvalidTopicName {
        /// The packet carrying it (PUBLISH or the will of a CONNECT).
        packet: PacketType,
        /// The topic as received.
        topic: String,
        /// The rule it broke.
        source: TopicError,
    },
    /// A topic filter is invalid (misplaced wildcards, empty, U+0000).
    #[error("{packet} topic filter {filter:?} is invalid: {source}")]
    InvalidTopicFilter {
        /// The packet carrying it.
        packet: PacketType,
        /// The filter as received.
        filter: String,
        /// The rule it broke.
        source: TopicError,
    },
    /// CONNACK acknowledge flags have reserved bits set.
    #[error(
        "CONNACK acknowledge flags are {flags:#04x}, bits 7-1 are reserved and must be 0 (section 3.2.2.1)"
    )]
    ConnAckReservedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// CONNACK return code is one of the reserved values.
    #[error("CONNACK return code {code:#04x} is reserved (section 3.2.2.3)")]
    InvalidConnectReturnCode {
        /// The code received.
        code: u8,
    },
    /// SUBACK return code is one of the reserved values.
    #[error("SUBACK return code {code:#04x} is reserved [MQTT-3.9.3-2]")]
    InvalidSubAckReturnCode {
        /// The code received.
        code: u8,
    },
}

impl DecodeError {
    /// The normative statement id this error breaks, where there is one.
    pub fn statement(&self) -> Option<&'static str> {
        use DecodeError::*;
        Some(match self {
            InvalidFlags { statement, .. } => statement,
            PublishQoS3 => "MQTT-3.3.1-4",
            PublishDupAtQoS0 => "MQTT-3.3.1-2",
            Truncated { packet, field } => return truncated_statement(*packet, field),
            TrailingBytes { statement, .. } => return *statement,
            InvalidUtf8 { .. } => "MQTT-1.5.3-1",
            NullCharacter { .. } => "MQTT-1.5.3-2",
            UnacceptableProtocol { name, .. } => protocol_statement(name),
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillQoS3 => "MQTT-3.1.2-14",
            WillQoSWithoutWill { .. } => "MQTT-3.1.2-13",
            WillRetainWithoutWill => "MQTT-3.1.2-15",
            PasswordWithoutUsername => "MQTT-3.1.2-22",
            PacketIdZero { packet } => packet_id_statement(*packet),
            EmptySubscribe => "MQTT-3.8.3-3",
            EmptyUnsubscribe => "MQTT-3.10.3-2",
            InvalidRequestedQoS { .. } => "MQTT-3.8.3-4",
            InvalidTopicName { source, .. } | InvalidTopicFilter { source, .. } => {
                return source.statement();
            }
            InvalidSubAckReturnCode { .. } => "MQTT-3.9.3-2",
            ReservedPacketType { .. }
            | RemainingLengthTooLong
            | RemainingLengthNotMinimal { .. }
            | UnexpectedRemainingLength { .. }
            | PacketTooLarge { .. }
            | ConnAckReservedFlags { .. }
            | InvalidConnectReturnCode { .. } => return None,
        })
    }

    /// Whether a broker may answer this error with CONNACK 0x01
    /// (unacceptable protocol version) before closing, rather than just close.
    /// True for every [`DecodeError::UnacceptableProtocol`]: required for a
    /// known name at another level [MQTT-3.1.2-2], allowed for an unknown
    /// name [MQTT-3.1.2-1].
    pub fn is_unacceptable_protocol(&self) -> bool {
        matches!(self, DecodeError::UnacceptableProtocol { .. })
    }
}

/// " [id]" for a statement id, nothing without one.
fn cite(statement: Option<&'static str>) -> String {
    statement.map(|s| format!(" [{s}]")).unwrap_or_default()
}

/// Which field of `packet` holds a topic name: the will's in a CONNECT.
fn topic_field(packet: PacketType) -> &'static str {
    if packet == PacketType::Connect {
        "will topic"
    } else {
        "topic name"
    }
}

/// The statement a missing field breaks, where one requires the field.
fn truncated_statement(packet: PacketType, field: &str) -> Option<&'static str> {
    Some(match (packet, field) {
        (PacketType::Connect, "client identifier") => "MQTT-3.1.3-3",
        (PacketType::Connect, "will topic" | "will message") => "MQTT-3.1.2-9",
        (PacketType::Connect, "user name") => "MQTT-3.1.2-19",
        (PacketType::Connect, "password") => "MQTT-3.1.2-21",
        (PacketType::Publish, "topic name") => "MQTT-3.3.2-1",
        (
            PacketType::Publish | PacketType::Subscribe | PacketType::Unsubscribe,
            "packet identifier",
        ) => "MQTT-2.3.1-1",
        (PacketType::Subscribe, "topic filter") => "MQTT-3.8.3-1",
        (PacketType::Unsubscribe, "topic filter") => "MQTT-3.10.3-1",
        (PacketType::SubAck, "return codes") => "MQTT-3.8.4-5",
        _ => return None,
    })
}

/// [MQTT-3.1.2-1] for an unknown protocol name, [MQTT-3.1.2-2] for a known
/// name at an unsupported level.
fn protocol_statement(name: &str) -> &'static str {
    if name == "MQTT" || name == "MQIsdp" {
        "MQTT-3.1.2-2"
    } else {
        "MQTT-3.1.2-1"
    }
}

/// The statement a zero packet id breaks, by the packet carrying it.
fn packet_id_statement(packet: PacketType) -> &'static str {
    match packet {
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            "MQTT-2.3.1-6"
        }
        PacketType::SubAck | PacketType::UnsubAck => "MQTT-2.3.1-7",
        _ => "MQTT-2.3.1-1",
    }
}
