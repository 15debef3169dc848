//! One bridge `topic` line: which messages cross, which way, at which QoS,
//! and how their topic names change on the way.
//!
//! mosquitto.conf's form is `topic PATTERN [[[out|in|both] QOS] LOCAL_PREFIX
//! REMOTE_PREFIX]`. The filter subscribed locally is `LOCAL_PREFIX` +
//! `PATTERN`, the one subscribed on the remote `REMOTE_PREFIX` + `PATTERN`;
//! a message crossing has one prefix swapped for the other. `""` stands for
//! an empty pattern or prefix: with an empty pattern the prefixes are whole
//! topics (one topic renamed), as in mosquitto.

use mqtt_codec::QoS;
use mqtt_codec::topic::{TopicFilter, TopicName};

/// Which way messages cross for one `topic` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local messages go to the remote broker (mosquitto's default).
    Out,
    /// The remote broker's messages come here.
    In,
    /// Both ways; a message never goes back over the bridge it came by.
    Both,
}

impl Direction {
    /// Whether local messages go out by this line.
    pub fn out(self) -> bool {
        matches!(self, Self::Out | Self::Both)
    }

    /// Whether remote messages come in by this line.
    pub fn inward(self) -> bool {
        matches!(self, Self::In | Self::Both)
    }
}

/// Why a `topic` line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicLineError {
    /// Nothing after `topic`.
    #[error(
        "no pattern given: write `topic PATTERN [[[out|in|both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`"
    )]
    Empty,
    /// The direction word is none of the three.
    #[error("direction \"{0}\" is not out, in or both")]
    Direction(String),
    /// The QoS is not 0, 1 or 2.
    #[error("QoS \"{0}\" is not 0, 1 or 2")]
    QoS(String),
    /// One prefix without the other.
    #[error("a local prefix needs a remote prefix after it (write \"\" for none)")]
    OnePrefix,
    /// Words after the remote prefix.
    #[error("unexpected \"{0}\" after the remote prefix")]
    Trailing(String),
    /// A prefix holding a wildcard.
    #[error("prefix \"{0}\" may not hold the wildcards + or #")]
    WildPrefix(String),
    /// `""` as the pattern with no prefix to stand for the topic.
    #[error("an empty pattern (\"\") needs a local or remote prefix naming the topic")]
    NothingToBridge,
    /// Prefix and pattern together are no valid topic filter.
    #[error("\"{filter}\" is not a valid topic filter: {reason}")]
    Filter {
        /// The filter made of prefix and pattern.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One `topic` line of a bridge, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    /// Which way messages cross.
    pub direction: Direction,
    /// The QoS of the subscription on the side messages come from.
    pub qos: QoS,
    /// Prepended to the pattern on this broker.
    pub local_prefix: String,
    /// Prepended to the pattern on the remote broker.
    pub remote_prefix: String,
    /// `local_prefix` + pattern: subscribed here for `out`.
    pub local_filter: TopicFilter,
    /// `remote_prefix` + pattern: subscribed on the remote for `in`.
    pub remote_filter: TopicFilter,
}

/// A mosquitto.conf word, `""` standing for the empty string.
fn word(w: &str) -> &str {
    if w == "\"\"" { "" } else { w }
}

impl BridgeTopic {
    /// Parses the value of a `topic` line (what follows the directive).
    pub fn parse(value: &str) -> Result<Self, TopicLineError> {
        let mut words = value.split_whitespace();
        let pattern = word(words.next().ok_or(TopicLineError::Empty)?);
        let direction = match words.next() {
            None | Some("out") => Direction::Out,
            Some("in") => Direction::In,
            Some("both") => Direction::Both,
            Some(other) => return Err(TopicLineError::Direction(other.to_owned())),
        };
        let qos = match words.next() {
            None => QoS::AtMostOnce,
            Some(q) => q
                .parse::<u8>()
                .ok()
                .and_then(QoS::from_bits)
                .ok_or_else(|| TopicLineError::QoS(q.to_owned()))?,
        };
        let (local_prefix, remote_prefix) = match (words.next(), words.next()) {
            (None, _) => ("", ""),
            (Some(_), None) => return Err(TopicLineError::OnePrefix),
            (Some(l), Some(r)) => (word(l), word(r)),
        };
        if let Some(extra) = words.next() {
            return Err(TopicLineError::Trailing(extra.to_owned()));
        }
        for prefix in [local_prefix, remote_prefix] {
            if prefix.contains(['+', '#']) {
                return Err(TopicLineError::WildPrefix(prefix.to_owned()));
            }
        }
        if pattern.is_empty() && local_prefix.is_empty() && remote_prefix.is_empty() {
            return Err(TopicLineError::NothingToBridge);
        }
        let filter = |prefix: &str| {
            let text = format!("{prefix}{pattern}");
            TopicFilter::new(&text).map_err(|e| TopicLineError::Filter {
                filter: text,
                reason: e.to_string(),
            })
        };
        Ok(Self {
            direction,
            qos,
            local_filter: filter(local_prefix)?,
            remote_filter: filter(remote_prefix)?,
            local_prefix: local_prefix.to_owned(),
            remote_prefix: remote_prefix.to_owned(),
        })
    }

    /// The remote name of a local `topic` this line sends out, or `None`
    /// when the line does not send it.
    pub fn to_remote(&self, topic: &TopicName) -> Option<TopicName> {
        if !self.direction.out() || !self.local_filter.matches(topic) {
            return None;
        }
        swap(topic, &self.local_prefix, &self.remote_prefix)
    }

    /// The local name of a remote `topic` this line brings in, or `None`
    /// when the line does not bring it.
    pub fn to_local(&self, topic: &TopicName) -> Option<TopicName> {
        if !self.direction.inward() || !self.remote_filter.matches(topic) {
            return None;
        }
        swap(topic, &self.remote_prefix, &self.local_prefix)
    }
}

/// `topic` with `from` at its front replaced by `to`.
fn swap(topic: &TopicName, from: &str, to: &str) -> Option<TopicName> {
    let rest = topic.as_str().strip_prefix(from)?;
    TopicName::new(format!("{to}{rest}")).ok()
}

/// The first line of `topics` that sends local `topic` out, and its remote
/// name.
pub fn to_remote(topics: &[BridgeTopic], topic: &TopicName) -> Option<TopicName> {
    topics.iter().find_map(|t| t.to_remote(topic))
}

/// The first line of `topics` that brings remote `topic` in, and its local
/// name.
pub fn to_local(topics: &[BridgeTopic], topic: &TopicName) -> Option<TopicName> {
    topics.iter().find_map(|t| t.to_local(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).expect("a valid name")
    }

    #[test]
    fn a_bare_pattern_goes_out_at_qos_0_unchanged() {
        let t = BridgeTopic::parse("sensors/#").expect("valid");
        assert_eq!((t.direction, t.qos), (Direction::Out, QoS::AtMostOnce));
        assert_eq!(
            t.to_remote(&name("sensors/a"))
                .as_ref()
                .map(TopicName::as_str),
            Some("sensors/a")
        );
        assert_eq!(t.to_local(&name("sensors/a")), None);
    }

    #[test]
    fn prefixes_are_swapped_both_ways() {
        let t = BridgeTopic::parse("# both 2 local/ remote/").expect("valid");
        assert_eq!(t.local_filter.as_str(), "local/#");
        assert_eq!(t.remote_filter.as_str(), "remote/#");
        assert_eq!(
            t.to_remote(&name("local/x/y"))
                .as_ref()
                .map(TopicName::as_str),
            Some("remote/x/y")
        );
        assert_eq!(
            t.to_local(&name("remote/z"))
                .as_ref()
                .map(TopicName::as_str),
            Some("local/z")
        );
        assert_eq!(t.to_remote(&name("other/x")), None);
    }

    #[test]
    fn empty_words_are_written_as_two_quotes() {
        let t = BridgeTopic::parse("a/# in 1 \"\" far/").expect("valid");
        assert_eq!(
            t.to_local(&name("far/a/b")).as_ref().map(TopicName::as_str),
            Some("a/b")
        );
        // An empty pattern renames one topic.
        let one = BridgeTopic::parse("\"\" out 1 here/t there/u").expect("valid");
        assert_eq!(
            one.to_remote(&name("here/t"))
                .as_ref()
                .map(TopicName::as_str),
            Some("there/u")
        );
        assert_eq!(one.to_remote(&name("here/t/x")), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let err = |v: &str| BridgeTopic::parse(v).expect_err(v).to_string();
        assert!(err("").contains("no pattern"));
        assert!(err("a sideways").contains("\"sideways\" is not out, in or both"));
        assert!(err("a out 3").contains("QoS \"3\""));
        assert!(err("a out 1 l/").contains("needs a remote prefix"));
        assert!(err("a out 1 l/+ r/").contains("wildcards"));
        assert!(err("\"\" both 0 \"\" \"\"").contains("empty pattern"));
        assert!(err("a/#/b").contains("not a valid topic filter"));
        assert!(err("a out 1 l/ r/ more").contains("unexpected \"more\""));
    }
}
