//! What `toolkit proxy` does wrong, as values: connection-wide shaping
//! (latency, jitter, byte-by-byte writes, a bandwidth cap, reordering, a cut
//! after so many packets or bytes) and rules that fire on matched packets
//! (drop, duplicate, delay, cut, pause the broker side). Parsing them from
//! flags and from a fault file lives in `spec`; applying them in `pump`.

use std::fmt;
use std::num::NonZeroU64;
use std::time::Duration;

use mqtt_codec::PacketType;
use mqtt_codec::topic::{TopicFilter, TopicName, matches};

/// Which way a packet travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the broker.
    ToBroker,
    /// From the broker to the client.
    ToClient,
}

impl Direction {
    /// The name flags, fault files and the fault log use.
    pub fn name(self) -> &'static str {
        match self {
            Direction::ToBroker => "to-broker",
            Direction::ToClient => "to-client",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which packets a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketMatch {
    /// Every packet, and bytes that could not be framed as one.
    Any,
    /// Packets of one type.
    Type(PacketType),
}

impl PacketMatch {
    /// Whether a packet of type `packet` (`None`: not a packet) matches.
    pub fn matches(self, packet: Option<PacketType>) -> bool {
        match self {
            PacketMatch::Any => true,
            PacketMatch::Type(t) => packet == Some(t),
        }
    }
}

impl fmt::Display for PacketMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketMatch::Any => f.write_str("any packet"),
            PacketMatch::Type(t) => f.write_str(&t.to_string().to_ascii_lowercase()),
        }
    }
}

/// Which of the matching packets a rule fires on, counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// Every one.
    All,
    /// The n-th, 2n-th, 3n-th, ...
    Every(NonZeroU64),
    /// The n-th only.
    Nth(NonZeroU64),
}

impl Occurrence {
    /// Whether the `count`-th matching packet (from 1) is hit.
    pub fn fires(self, count: u64) -> bool {
        match self {
            Occurrence::All => true,
            Occurrence::Every(n) => count.is_multiple_of(n.get()),
            Occurrence::Nth(n) => count == n.get(),
        }
    }
}

/// Where a rule's count of matching packets is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Each connection counts from 1 (the default).
    #[default]
    Connection,
    /// One count across all connections, so "the 5th PUBACK" happens once
    /// per proxy run, whichever connection carries it. A global
    /// `pause-broker` pauses every connection, new ones too.
    Global,
}

/// What a rule does to the packet it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The packet is not forwarded.
    Drop,
    /// The packet is forwarded twice.
    Duplicate,
    /// The connection is closed on both sides before the packet is
    /// forwarded (everything before it goes through first).
    Cut,
    /// The packet, and so everything after it in its direction, is held
    /// this much longer.
    Delay(Duration),
    /// The broker side stops: nothing is read from or written to the broker
    /// for this long (the client's packets wait in the proxy).
    PauseBroker(Duration),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Drop => f.write_str("drop"),
            Action::Duplicate => f.write_str("duplicate"),
            Action::Cut => f.write_str("cut"),
            Action::Delay(d) => write!(f, "delay {}", humantime::format_duration(*d)),
            Action::PauseBroker(d) => {
                write!(f, "pause broker side {}", humantime::format_duration(*d))
            }
        }
    }
}

/// One scripted fault: on the matching packets its occurrence picks, do its
/// action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: both directions.
    pub direction: Option<Direction>,
    /// Which packets count.
    pub packet: PacketMatch,
    /// Only PUBLISH packets whose topic name matches this filter count.
    pub topic: Option<TopicFilter>,
    /// Which of them it fires on.
    pub occurrence: Occurrence,
    /// Per connection or across all.
    pub scope: Scope,
    /// What it does.
    pub action: Action,
}

impl Rule {
    /// Whether a packet of type `packet` going `direction`, with `topic`
    /// when it is a PUBLISH, counts for it.
    pub fn matches(
        &self,
        direction: Direction,
        packet: Option<PacketType>,
        topic: Option<&TopicName>,
    ) -> bool {
        self.direction.is_none_or(|d| d == direction)
            && self.packet.matches(packet)
            && self
                .topic
                .as_ref()
                .is_none_or(|f| topic.is_some_and(|t| matches(f, t)))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.packet)?;
        if let Some(t) = &self.topic {
            write!(f, " on topics matching {}", t.as_str())?;
        }
        match self.occurrence {
            Occurrence::All => {}
            Occurrence::Every(n) => write!(f, ", every {n}")?,
            Occurrence::Nth(n) => write!(f, ", only match {n}")?,
        }
        if let Some(d) = self.direction {
            write!(f, ", {d}")?;
        }
        if self.scope == Scope::Global {
            f.write_str(", counted across connections")?;
        }
        Ok(())
    }
}

/// Reordering: each run of `window` packets going `direction` is sent last
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reorder {
    /// Packets per run, at least 2.
    pub window: usize,
    /// `None`: both directions (each reordered on its own; a request and
    /// its forwarded copy are then reversed twice, which restores order, so
    /// give one direction to see deliveries out of order).
    pub direction: Option<Direction>,
}

impl fmt::Display for Reorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reorder each {} packets last first", self.window)?;
        if let Some(d) = self.direction {
            write!(f, ", {d}")?;
        }
        Ok(())
    }
}

/// When a connection is cut regardless of what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutAfter {
    /// After this many packets, both directions together.
    Packets(NonZeroU64),
    /// After this many bytes, both directions together (the last packet may
    /// go out in part).
    Bytes(NonZeroU64),
}

impl fmt::Display for CutAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutAfter::Packets(n) => write!(f, "cut after {n} packets"),
            CutAfter::Bytes(n) => write!(f, "cut after {n} bytes"),
        }
    }
}

/// Everything the proxy does wrong; the default does nothing wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added to every packet's way through, both directions.
    pub delay: Duration,
    /// Each packet's delay varies by up to this much either way (never
    /// below zero; order is kept).
    pub jitter: Duration,
    /// Every write carries one byte.
    pub split_bytes: bool,
    /// Each direction is held to this many bytes per second.
    pub throttle: Option<NonZeroU64>,
    /// Runs of packets sent last first; a run cut short by a pause in
    /// traffic goes out reversed as it stands.
    pub reorder: Option<Reorder>,
    /// Cut each connection after so many packets or bytes.
    pub cut_after: Option<CutAfter>,
    /// Rules on matched packets, each applied in order.
    pub rules: Vec<Rule>,
}

impl Faults {
    /// Adds `other` on top: its rules after ours, its shaping where it sets
    /// any (flags on top of a fault file).
    pub fn overlay(&mut self, other: Faults) {
        if !other.delay.is_zero() {
            self.delay = other.delay;
        }
        if !other.jitter.is_zero() {
            self.jitter = other.jitter;
        }
        self.split_bytes |= other.split_bytes;
        self.throttle = other.throttle.or(self.throttle);
        self.reorder = other.reorder.or(self.reorder);
        self.cut_after = other.cut_after.or(self.cut_after);
        self.rules.extend(other.rules);
    }

    /// One line per fault in force, for the proxy's start-up banner.
    pub fn describe(&self) -> Vec<String> {
        let mut out = self.describe_shaping();
        out.extend(self.rules.iter().map(Rule::to_string));
        out
    }

    /// One line per connection-wide fault (everything but the rules).
    pub fn describe_shaping(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            out.push(format!(
                "delay {} jitter {}",
                humantime::format_duration(self.delay),
                humantime::format_duration(self.jitter)
            ));
        }
        if self.split_bytes {
            out.push("split writes into single bytes".to_owned());
        }
        if let Some(rate) = self.throttle {
            out.push(format!("throttle to {rate} bytes/s each way"));
        }
        if let Some(r) = self.reorder {
            out.push(r.to_string());
        }
        if let Some(cut) = self.cut_after {
            out.push(cut.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).expect("test value is not zero")
    }

    #[test]
    fn every_fires_on_multiples_and_nth_once() {
        let every = Occurrence::Every(n(10));
        let hits: Vec<u64> = (1..=35).filter(|&c| every.fires(c)).collect();
        assert_eq!(hits, [10, 20, 30]);
        let nth = Occurrence::Nth(n(3));
        let hits: Vec<u64> = (1..=10).filter(|&c| nth.fires(c)).collect();
        assert_eq!(hits, [3]);
    }

    #[test]
    fn a_rule_matches_its_direction_and_type_only() {
        let rule = Rule {
            direction: Some(Direction::ToClient),
            packet: PacketMatch::Type(PacketType::PubAck),
            topic: None,
            occurrence: Occurrence::All,
            scope: Scope::Connection,
            action: Action::Drop,
        };
        let puback = Some(PacketType::PubAck);
        assert!(rule.matches(Direction::ToClient, puback, None));
        assert!(!rule.matches(Direction::ToBroker, puback, None));
        assert!(!rule.matches(Direction::ToClient, Some(PacketType::Publish), None));
        assert!(!rule.matches(Direction::ToClient, None, None));
        assert_eq!(rule.to_string(), "drop puback, to-client");
    }

    #[test]
    fn a_topic_rule_matches_publishes_on_matching_topics_only() {
        let rule = Rule {
            direction: None,
            packet: PacketMatch::Type(PacketType::Publish),
            topic: Some(TopicFilter::new("a/+/c").expect("valid filter")),
            occurrence: Occurrence::All,
            scope: Scope::Global,
            action: Action::PauseBroker(Duration::from_secs(1)),
        };
        let name = |t: &str| TopicName::new(t).expect("valid topic");
        let publish = Some(PacketType::Publish);
        assert!(rule.matches(Direction::ToBroker, publish, Some(&name("a/b/c"))));
        assert!(!rule.matches(Direction::ToBroker, publish, Some(&name("a/b/d"))));
        assert!(!rule.matches(Direction::ToBroker, publish, None));
        assert_eq!(
            rule.to_string(),
            "pause broker side 1s publish on topics matching a/+/c, counted across connections"
        );
    }

    #[test]
    fn flags_overlay_a_file() {
        let mut file = Faults {
            delay: Duration::from_millis(5),
            reorder: Some(Reorder {
                window: 3,
                direction: None,
            }),
            ..Faults::default()
        };
        file.overlay(Faults {
            delay: Duration::from_millis(20),
            split_bytes: true,
            ..Faults::default()
        });
        assert_eq!(file.delay, Duration::from_millis(20));
        assert_eq!(file.reorder.map(|r| r.window), Some(3));
        assert!(file.split_bytes);
    }
}
