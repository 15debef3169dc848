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
    /// The packet is larger than the receiver accepts; refused before its body
    /// is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size announced by the fixed header.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body ended before a field it must hold.
    #[error("{packet} ends before its {field}")]
    Truncated {
        /// The packet being decoded.
        packet: PacketType,
        /// The field that is missing or cut short.
        field: &'static str,
    },
    /// The body holds bytes after its last field.
    #[error("{packet} has {extra} unexpected bytes after its last field{}", statement.map(|s| format!(" [{s}]")).unwrap_or_default())]
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
    /// A broker answers CONNACK 0x01 and closes [MQTT-3.1.2-2].
    #[error(
        "CONNECT asks for protocol {name:?} level {level}, only \"MQTT\" level 4 and \"MQIsdp\" level 3 are supported [MQTT-3.1.2-2]"
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
    /// A packet identifier is zero.
    #[error("{packet} has packet identifier 0 [MQTT-2.3.1-1]")]
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
    /// A topic name is invalid (wildcards, empty, U+0000).
    #[error("{packet} topic name {topic:?} is invalid: {source}")]
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
            TrailingBytes { statement, .. } => return *statement,
            InvalidUtf8 { .. } => "MQTT-1.5.3-1",
            NullCharacter { .. } => "MQTT-1.5.3-2",
            UnacceptableProtocol { .. } => "MQTT-3.1.2-2",
            ConnectReservedFlag => "MQTT-3.1.2-3",
            WillQoS3 => "MQTT-3.1.2-14",
            WillQoSWithoutWill { .. } => "MQTT-3.1.2-13",
            WillRetainWithoutWill => "MQTT-3.1.2-15",
            PasswordWithoutUsername => "MQTT-3.1.2-22",
            PacketIdZero { .. } => "MQTT-2.3.1-1",
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
            | PacketTooLarge { .. }
            | Truncated { .. }
            | ConnAckReservedFlags { .. }
            | InvalidConnectReturnCode { .. } => return None,
        })
    }

    /// Whether a broker should answer this error with CONNACK 0x01
    /// (unacceptable protocol version) before closing, rather than just close.
    pub fn is_unacceptable_protocol(&self) -> bool {
        matches!(self, DecodeError::UnacceptableProtocol { .. })
    }
}
