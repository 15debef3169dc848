//! The ways a topic name or topic filter can break the rules of §4.7.

/// Why a string is not a valid topic name or topic filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Names and filters must be at least one character long.
    #[error("topic is empty [MQTT-4.7.3-1]")]
    Empty,
    /// Names and filters are limited by the 16-bit length prefix.
    #[error("topic is {len} bytes long, more than 65535 [MQTT-4.7.3-3]")]
    TooLong {
        /// Length of the offending string in bytes.
        len: usize,
    },
    /// U+0000 may not appear anywhere in a topic.
    #[error("topic contains U+0000 at byte {offset} [MQTT-4.7.3-2]")]
    NullCharacter {
        /// Byte offset of the first U+0000.
        offset: usize,
    },
    /// A topic name (as opposed to a filter) contains `+` or `#`.
    #[error("topic name contains the wildcard {wildcard:?} at byte {offset} [MQTT-3.3.2-2]")]
    WildcardInName {
        /// The wildcard character found.
        wildcard: char,
        /// Byte offset of the first wildcard.
        offset: usize,
    },
    /// `#` is not alone in its level or is not the last level.
    #[error(
        "'#' at byte {offset} must be the whole filter or follow '/' as the last character [MQTT-4.7.1-2]"
    )]
    MisplacedMultiLevel {
        /// Byte offset of the misplaced `#`.
        offset: usize,
    },
    /// `+` shares its level with other characters.
    #[error("'+' at byte {offset} must fill a whole topic level [MQTT-4.7.1-3]")]
    MisplacedSingleLevel {
        /// Byte offset of the misplaced `+`.
        offset: usize,
    },
}

impl TopicError {
    /// The normative statement id this error breaks.
    pub fn statement(&self) -> Option<&'static str> {
        Some(match self {
            TopicError::Empty => "MQTT-4.7.3-1",
            TopicError::TooLong { .. } => "MQTT-4.7.3-3",
            TopicError::NullCharacter { .. } => "MQTT-4.7.3-2",
            TopicError::WildcardInName { .. } => "MQTT-3.3.2-2",
            TopicError::MisplacedMultiLevel { .. } => "MQTT-4.7.1-2",
            TopicError::MisplacedSingleLevel { .. } => "MQTT-4.7.1-3",
        })
    }
}
