//! Faults as users write them: the flags of `toolkit proxy` (`--drop
//! puback:every=10`, `--cut-after packets=50`, `--throttle 10kB/s`) and the
//! TOML fault file (`--faults FILE`). Every error is one line naming the
//! flag or the file and line, what is wrong and what would be right.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mqtt_codec::PacketType;
use mqtt_codec::topic::TopicFilter;
use serde::Deserialize;
use toml::Spanned;

use super::faults::{
    Action, CutAfter, Direction, Faults, Occurrence, PacketMatch, Reorder, Rule, Scope,
};
use crate::script::line_of;

/// Why a fault given by a user cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FaultSpecError {
    /// A fault flag's value is wrong.
    #[error("{flag} '{value}': {reason}")]
    Flag {
        /// The flag, as typed (`--drop`).
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// A fault file holds something wrong.
    #[error("{}:{line}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong and how to write it.
        reason: String,
    },
    /// A fault file cannot be read.
    #[error("cannot read fault file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The packet type names flags and files take, in wire order.
const PACKET_NAMES: &str = "connect, connack, publish, puback, pubrec, pubrel, pubcomp, \
                            subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, \
                            disconnect or any";

/// A packet type by its lowercase name, or `any`.
pub fn packet_match(name: &str) -> Result<PacketMatch, String> {
    if name.eq_ignore_ascii_case("any") {
        return Ok(PacketMatch::Any);
    }
    (1..=14)
        .filter_map(PacketType::from_nibble)
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .map(PacketMatch::Type)
        .ok_or_else(|| format!("unknown packet type '{name}' (use {PACKET_NAMES})"))
}

/// A duration such as `20ms`, `1.5s` or `2m`.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("'{text}' is not a duration (write it as 20ms, 1.5s or 2m)"))
}

/// A rate such as `10kB/s`: B, kB (1000), KiB (1024), MB or MiB per second.
pub fn rate(text: &str) -> Result<NonZeroU64, String> {
    let bad = || format!("'{text}' is not a rate (write it as 500B/s, 10kB/s, 64KiB/s or 1MB/s)");
    let per_second = text.trim().strip_suffix("/s").ok_or_else(bad)?;
    let split = per_second
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(bad)?;
    let (number, unit) = per_second.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit {
        "B" => 1,
        "kB" | "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        _ => return Err(bad()),
    };
    number
        .checked_mul(scale)
        .and_then(NonZeroU64::new)
        .ok_or_else(|| format!("'{text}' must be above zero and below 2^64 bytes per second"))
}

/// `packets=N` or `bytes=N`, N at least 1.
pub fn cut_after(text: &str) -> Result<CutAfter, String> {
    let bad = || format!("'{text}' is not a cut (write packets=N or bytes=N, N at least 1)");
    let (what, n) = text.trim().split_once('=').ok_or_else(bad)?;
    let n = n.parse::<NonZeroU64>().map_err(|_| bad())?;
    match what {
        "packets" => Ok(CutAfter::Packets(n)),
        "bytes" => Ok(CutAfter::Bytes(n)),
        _ => Err(bad()),
    }
}

/// Which connection-wide fault a packet-matching flag sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFlag {
    /// `--drop`.
    Drop,
    /// `--duplicate`.
    Duplicate,
    /// `--cut-at`.
    CutAt,
    /// `--pause-broker` (needs `for=DURATION`).
    PauseBroker,
}

impl RuleFlag {
    /// The flag as typed.
    pub fn flag(self) -> &'static str {
        match self {
            RuleFlag::Drop => "--drop",
            RuleFlag::Duplicate => "--duplicate",
            RuleFlag::CutAt => "--cut-at",
            RuleFlag::PauseBroker => "--pause-broker",
        }
    }
}

/// A packet-matching flag's value, `TYPE[:OPTION,...]` with options
/// `every=N`, `nth=N`, `to-broker`, `to-client`, `global` and, for
/// `--pause-broker` only (and there required), `for=DURATION`.
pub fn rule_flag(kind: RuleFlag, value: &str) -> Result<Rule, FaultSpecError> {
    rule_from_flag(kind, value).map_err(|reason| FaultSpecError::Flag {
        flag: kind.flag(),
        value: value.to_owned(),
        reason,
    })
}

fn rule_from_flag(kind: RuleFlag, value: &str) -> Result<Rule, String> {
    let (packet, options) = value.split_once(':').unwrap_or((value, ""));
    let mut fields = RuleFields {
        packet: Some(packet.to_owned()),
        ..RuleFields::default()
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("every", n)) => fields.every = Some(count(n)?),
            Some(("nth", n)) => fields.nth = Some(count(n)?),
            Some(("topic", t)) => fields.topic = Some(t.to_owned()),
            Some(("for", d)) if kind == RuleFlag::PauseBroker => {
                fields.pause_for = Some(d.to_owned());
            }
            None if option == "to-broker" || option == "to-client" => {
                fields.direction = Some(option.to_owned());
            }
            None if option == "global" => fields.scope = Some("global".to_owned()),
            _ => {
                let more = if kind == RuleFlag::PauseBroker {
                    ", for=DURATION"
                } else {
                    ""
                };
                return Err(format!(
                    "unknown option '{option}' (use every=N, nth=N, topic=FILTER, to-broker, \
                     to-client, global{more})"
                ));
            }
        }
    }
    fields.action = match kind {
        RuleFlag::Drop => "drop",
        RuleFlag::Duplicate => "duplicate",
        RuleFlag::CutAt => "cut",
        RuleFlag::PauseBroker => "pause-broker",
    }
    .to_owned();
    fields.rule()
}

fn count(n: &str) -> Result<u64, String> {
    n.parse()
        .map_err(|_| format!("'{n}' is not a count (a whole number, at least 1)"))
}

/// A rule's fields as written, flag or file alike, before they are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    action: String,
    packet: Option<String>,
    topic: Option<String>,
    direction: Option<String>,
    every: Option<u64>,
    nth: Option<u64>,
    scope: Option<String>,
    delay: Option<String>,
    #[serde(rename = "for")]
    pause_for: Option<String>,
}

impl RuleFields {
    fn rule(&self) -> Result<Rule, String> {
        let packet = match &self.packet {
            Some(p) => packet_match(p)?,
            None => PacketMatch::Any,
        };
        let topic = match &self.topic {
            None => None,
            Some(t) => {
                if !matches!(packet, PacketMatch::Type(PacketType::Publish)) {
                    return Err(format!(
                        "topic '{t}' needs packet publish (only a PUBLISH has a topic name)"
                    ));
                }
                Some(TopicFilter::new(t).map_err(|e| format!("topic '{t}': {e}"))?)
            }
        };
        let direction = match self.direction.as_deref() {
            None | Some("both") => None,
            Some("to-broker") => Some(Direction::ToBroker),
            Some("to-client") => Some(Direction::ToClient),
            Some(other) => {
                return Err(format!(
                    "unknown direction '{other}' (use to-broker, to-client or both)"
                ));
            }
        };
        let nonzero = |n: u64, name: &str| {
            NonZeroU64::new(n).ok_or_else(|| format!("{name} must be at least 1"))
        };
        let occurrence = match (self.every, self.nth) {
            (Some(_), Some(_)) => return Err("give every or nth, not both".to_owned()),
            (Some(n), None) => Occurrence::Every(nonzero(n, "every")?),
            (None, Some(n)) => Occurrence::Nth(nonzero(n, "nth")?),
            (None, None) => Occurrence::All,
        };
        let scope = match self.scope.as_deref() {
            None | Some("connection") => Scope::Connection,
            Some("global") => Scope::Global,
            Some(other) => {
                return Err(format!(
                    "unknown scope '{other}' (use connection or global)"
                ));
            }
        };
        let only = |field: &str, set: bool, action: &str| {
            if set {
                Err(format!("{field} applies to action = \"{action}\" only"))
            } else {
                Ok(())
            }
        };
        let action = match self.action.as_str() {
            "delay" => {
                only("for", self.pause_for.is_some(), "pause-broker")?;
                let d = self
                    .delay
                    .as_deref()
                    .ok_or("action delay needs delay = DURATION")?;
                Action::Delay(duration(d)?)
            }
            "pause-broker" => {
                only("delay", self.delay.is_some(), "delay")?;
                let d = self
                    .pause_for
                    .as_deref()
                    .ok_or("pause-broker needs for=DURATION (how long the broker side stops)")?;
                Action::PauseBroker(duration(d)?)
            }
            other => {
                only("delay", self.delay.is_some(), "delay")?;
                only("for", self.pause_for.is_some(), "pause-broker")?;
                match other {
                    "drop" => Action::Drop,
                    "duplicate" => Action::Duplicate,
                    "cut" => Action::Cut,
                    _ => {
                        return Err(format!(
                            "unknown action '{other}' (use drop, duplicate, cut, delay or \
                             pause-broker)"
                        ));
                    }
                }
            }
        };
        Ok(Rule {
            direction,
            packet,
            topic,
            occurrence,
            scope,
            action,
        })
    }
}

/// A fault file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFields {
    delay: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    #[serde(default)]
    split_bytes: bool,
    throttle: Option<Spanned<String>>,
    reorder: Option<Spanned<ReorderField>>,
    cut_after: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RuleFields>>,
}

/// Reads the fault file at `path`.
pub fn read_file(path: &Path) -> Result<Faults, FaultSpecError> {
    let source = std::fs::read_to_string(path).map_err(|source| FaultSpecError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_file(path, &source)
}

/// Parses a fault file's text; `path` names it in errors.
pub fn parse_file(path: &Path, source: &str) -> Result<Faults, FaultSpecError> {
    let at = |offset: usize, reason: String| FaultSpecError::File {
        path: path.to_owned(),
        line: line_of(source, offset),
        reason,
    };
    let fields: FileFields = toml::from_str(source).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim_end().to_owned())
    })?;
    let spanned = |s: &Option<Spanned<String>>, parse: fn(&str) -> Result<Duration, String>| {
        s.as_ref()
            .map(|s| parse(s.get_ref()).map_err(|r| at(s.span().start, r)))
            .transpose()
    };
    let mut faults = Faults {
        delay: spanned(&fields.delay, duration)?.unwrap_or_default(),
        jitter: spanned(&fields.jitter, duration)?.unwrap_or_default(),
        split_bytes: fields.split_bytes,
        ..Faults::default()
    };
    if let Some(t) = &fields.throttle {
        faults.throttle = Some(rate(t.get_ref()).map_err(|r| at(t.span().start, r))?);
    }
    if let Some(c) = &fields.cut_after {
        faults.cut_after = Some(cut_after(c.get_ref()).map_err(|r| at(c.span().start, r))?);
    }
    if let Some(r) = &fields.reorder {
        let parsed = match r.get_ref() {
            ReorderField::Window(n) => reorder(&n.to_string()),
            ReorderField::Spec(s) => reorder(s),
        };
        faults.reorder = Some(parsed.map_err(|e| at(r.span().start, e))?);
    }
    for rule in &fields.rule {
        let parsed = rule
            .get_ref()
            .rule()
            .map_err(|r| at(rule.span().start, r))?;
        faults.rules.push(parsed);
    }
    Ok(faults)
}

/// A fault file's `reorder`: a window (`3`) or a window and a direction
/// (`"3:to-client"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ReorderField {
    Window(usize),
    Spec(String),
}

/// A reorder window of at least 2 packets, with an optional direction:
/// `N`, `N:to-broker` or `N:to-client`.
pub fn reorder(text: &str) -> Result<Reorder, String> {
    let (window, direction) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
    let window: usize = window.parse().map_err(|_| {
        format!("'{text}' is not a reorder window (write N, N:to-broker or N:to-client)")
    })?;
    if window < 2 {
        return Err(format!(
            "reorder window {window} reorders nothing (give 2 or more packets)"
        ));
    }
    let direction = match direction {
        "" => None,
        "to-broker" => Some(Direction::ToBroker),
        "to-client" => Some(Direction::ToClient),
        other => {
            return Err(format!(
                "unknown direction '{other}' (use to-broker or to-client)"
            ));
        }
    };
    Ok(Reorder { window, direction })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).expect("test value is not zero")
    }

    #[test]
    fn drop_every_tenth_puback() {
        let rule = rule_flag(RuleFlag::Drop, "puback:every=10").expect("valid");
        assert_eq!(
            rule,
            Rule {
                direction: None,
                packet: PacketMatch::Type(PacketType::PubAck),
                topic: None,
                occurrence: Occurrence::Every(n(10)),
                scope: Scope::Connection,
                action: Action::Drop,
            }
        );
    }

    #[test]
    fn flag_options_set_direction_scope_and_pause() {
        let rule = rule_flag(
            RuleFlag::PauseBroker,
            "publish:nth=3,to-broker,global,for=2s",
        )
        .expect("valid");
        assert_eq!(rule.direction, Some(Direction::ToBroker));
        assert_eq!(rule.scope, Scope::Global);
        assert_eq!(rule.occurrence, Occurrence::Nth(n(3)));
        assert_eq!(rule.action, Action::PauseBroker(Duration::from_secs(2)));
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let says = |kind, value: &str| rule_flag(kind, value).expect_err("invalid").to_string();
        assert_eq!(
            says(RuleFlag::Drop, "pubak"),
            format!("--drop 'pubak': unknown packet type 'pubak' (use {PACKET_NAMES})")
        );
        assert!(says(RuleFlag::Drop, "puback:every=0").contains("every must be at least 1"));
        assert!(says(RuleFlag::Drop, "puback:every=x").contains("'x' is not a count"));
        assert!(says(RuleFlag::Drop, "puback:for=2s").contains("unknown option 'for=2s'"));
        assert!(says(RuleFlag::PauseBroker, "publish").contains("needs for=DURATION"));
        assert!(says(RuleFlag::CutAt, "publish:every=2,nth=3").contains("not both"));
        assert!(says(RuleFlag::Drop, "puback:topic=a/b").contains("needs packet publish"));
        assert!(
            says(RuleFlag::Drop, "publish:topic=a/#/b")
                .starts_with("--drop 'publish:topic=a/#/b': topic 'a/#/b': ")
        );
        let rule = rule_flag(RuleFlag::Drop, "publish:topic=mqc/+/x/#").expect("valid");
        assert_eq!(
            rule.topic.map(|t| t.as_str().to_owned()).as_deref(),
            Some("mqc/+/x/#")
        );
    }

    #[test]
    fn rates_cuts_and_durations() {
        assert_eq!(rate("10kB/s").map(NonZeroU64::get), Ok(10_000));
        assert_eq!(rate("64KiB/s").map(NonZeroU64::get), Ok(65_536));
        assert_eq!(rate("500B/s").map(NonZeroU64::get), Ok(500));
        assert!(rate("10kB").is_err());
        assert!(rate("0B/s").is_err());
        assert!(rate("10XB/s").is_err());
        assert_eq!(cut_after("packets=50"), Ok(CutAfter::Packets(n(50))));
        assert_eq!(cut_after("bytes=7"), Ok(CutAfter::Bytes(n(7))));
        assert!(cut_after("packets=0").is_err());
        assert!(cut_after("frames=3").is_err());
        assert_eq!(duration("20ms"), Ok(Duration::from_millis(20)));
        assert!(duration("soon").is_err());
    }

    const EXAMPLE: &str = r#"
delay = "20ms"
jitter = "5ms"
throttle = "10kB/s"
reorder = "3:to-client"
cut_after = "packets=50"

[[rule]]
action = "drop"
packet = "puback"
direction = "to-client"
every = 10

[[rule]]
action = "pause-broker"
packet = "publish"
nth = 2
scope = "global"
for = "1s"

[[rule]]
action = "delay"
packet = "suback"
delay = "250ms"
"#;

    #[test]
    fn a_fault_file_parses() {
        let faults = parse_file(Path::new("f.toml"), EXAMPLE).expect("valid");
        assert_eq!(faults.delay, Duration::from_millis(20));
        assert_eq!(faults.jitter, Duration::from_millis(5));
        assert_eq!(faults.throttle, Some(n(10_000)));
        assert_eq!(
            faults.reorder,
            Some(Reorder {
                window: 3,
                direction: Some(Direction::ToClient)
            })
        );
        assert_eq!(faults.cut_after, Some(CutAfter::Packets(n(50))));
        assert_eq!(faults.rules.len(), 3);
        assert_eq!(faults.rules[0].direction, Some(Direction::ToClient));
        assert_eq!(faults.rules[1].scope, Scope::Global);
        assert_eq!(
            faults.rules[2].action,
            Action::Delay(Duration::from_millis(250))
        );
    }

    #[test]
    fn fault_file_errors_name_file_and_line() {
        let err = |text: &str| {
            parse_file(Path::new("f.toml"), text)
                .expect_err("invalid")
                .to_string()
        };
        let bad_rule = "delay = \"1ms\"\n\n[[rule]]\naction = \"explode\"\n";
        let e = err(bad_rule);
        assert!(e.starts_with("f.toml:3: unknown action 'explode'"), "{e}");
        let e = err("delay = \"1ms\"\njitter = \"soon\"\n");
        assert!(e.starts_with("f.toml:2: 'soon' is not a duration"), "{e}");
        let e = err("\n\ndelai = \"1ms\"\n");
        assert!(e.starts_with("f.toml:3: unknown field `delai`"), "{e}");
        let e = err("reorder = 1\n");
        assert!(e.starts_with("f.toml:1: reorder window 1"), "{e}");
        let e = err("\nreorder = \"2:sideways\"\n");
        assert!(
            e.starts_with("f.toml:2: unknown direction 'sideways'"),
            "{e}"
        );
        assert_eq!(
            parse_file(Path::new("f.toml"), "reorder = 4\n")
                .expect("valid")
                .reorder,
            Some(Reorder {
                window: 4,
                direction: None
            })
        );
    }
}
