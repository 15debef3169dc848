//! Topic names, topic filters and matching (§4.7).
//!
//! Plain data and functions: no sockets, no clocks. The codec uses [`TopicName`]
//! and [`TopicFilter`] so that a decoded packet can only hold topics that obey
//! the rules of §4.7. [`matches`](fn@matches) is the definition of §4.7
//! matching for one filter and one topic; the broker's subscription index
//! finds the same answers among many filters without scanning them, and its
//! tests check it against this function.

/// The text-like trait impls shared by [`TopicName`] and [`TopicFilter`]:
/// both are validated `Arc<str>` newtypes built by a `new` that returns
/// `Result<Self, TopicError>`. Hashing and ordering are those of the text, so
/// maps keyed by either can be searched with a plain `&str`.
macro_rules! validated_text {
    ($ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = TopicError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }
    };
}

mod error;
mod filter;
mod matching;
mod name;

pub use error::TopicError;
pub use filter::TopicFilter;
pub use matching::{matches, matches_text};
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
