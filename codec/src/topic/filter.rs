//! [`TopicFilter`]: the topic filter of a SUBSCRIBE or UNSUBSCRIBE.

use std::sync::Arc;

use super::{TopicError, check_common};

/// A valid topic filter: the common rules of names, plus `#` only alone as the
/// last level [MQTT-4.7.1-2] and `+` only as a whole level [MQTT-4.7.1-3].
/// Empty levels are legal (`a//b`, `/+`).
///
/// Equality is literal, character by character, which is how UNSUBSCRIBE finds
/// the subscription to remove [MQTT-3.10.4-1].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(Arc<str>);

impl TopicFilter {
    /// Validates `s` as a topic filter.
    pub fn new(s: impl AsRef<str>) -> Result<Self, TopicError> {
        let s = s.as_ref();
        check_common(s)?;
        let mut offset = 0;
        let mut levels = s.split('/').peekable();
        while let Some(level) = levels.next() {
            let is_last = levels.peek().is_none();
            if let Some(i) = level.find('#')
                && (level.len() != 1 || !is_last)
            {
                return Err(TopicError::MisplacedMultiLevel { offset: offset + i });
            }
            if let Some(i) = level.find('+')
                && level.len() != 1
            {
                return Err(TopicError::MisplacedSingleLevel { offset: offset + i });
            }
            offset += level.len() + 1;
        }
        Ok(Self(Arc::from(s)))
    }

    /// The filter as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The levels of the filter, split on `/`; empty levels are kept.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// Whether the filter holds `+` or `#` anywhere.
    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['+', '#'])
    }

    /// Whether the first character is a wildcard, which keeps the filter from
    /// matching topics that start with `$` [MQTT-4.7.2-1].
    pub fn starts_with_wildcard(&self) -> bool {
        self.0.starts_with(['+', '#'])
    }
}

validated_text!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_filters_from_section_4_7() {
        for ok in [
            "#",
            "+",
            "+/+",
            "/+",
            "sport/#",
            "sport/tennis/#",
            "+/tennis/#",
            "sport/+/player1",
            "a//b",
            "//",
            "$SYS/#",
            "+/",
            "/#",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn misplaced_wildcards_are_rejected() {
        use TopicError::{Empty, MisplacedMultiLevel, MisplacedSingleLevel};
        for (bad, error) in [
            ("sport/tennis#", MisplacedMultiLevel { offset: 12 }),
            ("sport/tennis/#/ranking", MisplacedMultiLevel { offset: 13 }),
            ("sport+", MisplacedSingleLevel { offset: 5 }),
            ("a/b+c/d", MisplacedSingleLevel { offset: 3 }),
            ("##", MisplacedMultiLevel { offset: 0 }),
            ("", Empty),
        ] {
            assert_eq!(TopicFilter::new(bad), Err(error), "{bad:?}");
        }
    }
}
