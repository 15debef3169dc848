//! [`TopicName`]: the topic of a PUBLISH, never containing wildcards.

use std::sync::Arc;

use super::{TopicError, check_common};

/// A valid topic name: non-empty, at most 65535 bytes, no U+0000, no `+` or `#`
/// [MQTT-4.7.1-1] [MQTT-4.7.3-1] [MQTT-4.7.3-2].
///
/// Cloning is cheap (a reference count), so the router can hand one message's
/// topic to many subscribers without copying it. The text is kept exactly as
/// received: no normalisation of case or Unicode form [MQTT-4.7.3-4], and a
/// U+FEFF stays where it was [MQTT-1.5.3-3].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: impl AsRef<str>) -> Result<Self, TopicError> {
        let s = s.as_ref();
        check_common(s)?;
        if let Some((offset, wildcard)) = s.char_indices().find(|(_, c)| matches!(c, '+' | '#')) {
            return Err(TopicError::WildcardInName { wildcard, offset });
        }
        Ok(Self(Arc::from(s)))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the topic starts with `$`: such topics (for example `$SYS/...`)
    /// are not matched by filters that start with a wildcard [MQTT-4.7.2-1].
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The levels of the topic, split on `/`; empty levels are kept.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

validated_text!(TopicName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_empty_levels_and_dollar_topics() {
        for ok in [
            "/",
            "//",
            "a//b",
            "/finance",
            "$SYS/broker",
            "sport/tennis/player1",
            " ",
        ] {
            assert!(TopicName::new(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn rejects_wildcards_empty_and_nul() {
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(
            TopicName::new("a/+/b"),
            Err(TopicError::WildcardInName {
                wildcard: '+',
                offset: 2
            })
        );
        assert_eq!(
            TopicName::new("a/#"),
            Err(TopicError::WildcardInName {
                wildcard: '#',
                offset: 2
            })
        );
        assert_eq!(
            TopicName::new("a\0b"),
            Err(TopicError::NullCharacter { offset: 1 })
        );
    }

    #[test]
    fn length_limit_is_65535_bytes() {
        assert!(TopicName::new("a".repeat(65_535)).is_ok());
        assert_eq!(
            TopicName::new("a".repeat(65_536)),
            Err(TopicError::TooLong { len: 65_536 })
        );
    }

    #[test]
    fn byte_order_mark_is_kept() {
        let t = TopicName::new("a/\u{feff}b").expect("valid");
        assert_eq!(t.as_str().as_bytes(), b"a/\xef\xbb\xbfb");
    }
}
