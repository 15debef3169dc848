//! Topic names, topic filters, matching (§4.7) and the subscription index.
//!
//! Plain data and functions: no sockets, no clocks. The codec uses [`TopicName`]
//! and [`TopicFilter`] so that a decoded packet can only hold topics that obey
//! the rules of §4.7. [`matches`](fn@matches) is the definition of §4.7
//! matching for one filter and one topic; the router uses the
//! [`SubscriptionIndex`], which finds the same answers among many filters
//! without scanning them, to find subscribers.

mod error;
mod filter;
mod index;
mod matching;
mod name;

pub use error::TopicError;
pub use filter::TopicFilter;
pub use index::SubscriptionIndex;
pub use matching::matches;
pub use name::TopicName;

/// The largest number of bytes a topic name or filter may take: the length
/// prefix of an MQTT UTF-8 string is 16 bits [MQTT-4.7.3-3].
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Checks the rules shared by names and filters: at least one character
/// [MQTT-4.7.3-1], at most [`MAX_TOPIC_LEN`] bytes [MQTT-4.7.3-3] and no
/// U+0000 [MQTT-4.7.3-2].
fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: s.len() });
    }
    if let Some(offset) = s.find('\0') {
        return Err(TopicError::NullCharacter { offset });
    }
    Ok(())
}
