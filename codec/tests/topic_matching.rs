//! `mqtt_codec::topic::matches` against a reference written independently from
//! §4.7: instead of walking a filter against a topic, the reference builds
//! every filter that matches a topic and asks whether the filter is among
//! them.

// Tests may unwrap: a panic here is the test failing, with the value shown.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use mqtt_codec::topic::{TopicFilter, TopicName, matches};
use proptest::prelude::*;

/// Every filter text that matches `topic` under §4.7, enumerated:
/// each of the first `k` levels is either itself or `+`; then either the
/// topic ends there (`k` = all levels) or `#` takes the rest, including
/// nothing (`k` from 0 to all levels: `sport/#` matches `sport`). Filters
/// starting with a wildcard are dropped for topics starting with `$`
/// [MQTT-4.7.2-1].
fn matching_filters(topic: &str) -> HashSet<String> {
    let levels: Vec<&str> = topic.split('/').collect();
    let mut prefixes: Vec<Vec<String>> = vec![Vec::new()];
    let mut out = HashSet::new();
    for k in 0..=levels.len() {
        for prefix in &prefixes {
            let mut with_hash = prefix.clone();
            with_hash.push("#".to_owned());
            out.insert(with_hash.join("/"));
            if k == levels.len() {
                out.insert(prefix.join("/"));
            }
        }
        if let Some(level) = levels.get(k) {
            prefixes = prefixes
                .into_iter()
                .flat_map(|p| {
                    let mut literal = p.clone();
                    literal.push((*level).to_owned());
                    let mut plus = p;
                    plus.push("+".to_owned());
                    [literal, plus]
                })
                .collect();
        }
    }
    if topic.starts_with('$') {
        out.retain(|f| !f.starts_with('+') && !f.starts_with('#'));
    }
    out
}

/// Level texts chosen to collide often, with the cases §4.7 cares about:
/// empty levels, `$` (special only first), case and Unicode-form twins.
const LEVELS: &[&str] = &[
    "",
    "a",
    "b",
    "A",
    "$SYS",
    "$",
    "x y",
    "caf\u{e9}",
    "cafe\u{301}",
];

fn level() -> impl Strategy<Value = String> {
    prop::sample::select(LEVELS).prop_map(str::to_owned)
}

fn topic_text() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..=5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic has at least one character", |t| !t.is_empty())
}

fn filter_text() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![3 => level(), 2 => Just("+".to_owned())];
    (prop::collection::vec(filter_level, 0..=5), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
        .prop_filter("a filter has at least one character", |f| !f.is_empty())
}

/// A topic made to match `filter` (wildcards filled with random levels), so
/// that matches are common rather than rare.
fn instantiate(filter: &str, fill: &[String]) -> String {
    let mut fill = fill.iter().cycle();
    let mut out: Vec<String> = Vec::new();
    for level in filter.split('/') {
        match level {
            "+" => out.push(fill.next().cloned().unwrap_or_default()),
            "#" => {
                let extra = fill.next().map_or(0, String::len) % 3;
                out.extend(fill.by_ref().take(extra).cloned());
            }
            other => out.push(other.to_owned()),
        }
    }
    let joined = out.join("/");
    if joined.is_empty() {
        "a".to_owned()
    } else {
        joined
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn agrees_with_reference_on_random_pairs(filter in filter_text(), topic in topic_text()) {
        let f = TopicFilter::new(&filter).unwrap();
        let t = TopicName::new(&topic).unwrap();
        let expected = matching_filters(&topic).contains(&filter);
        prop_assert_eq!(matches(&f, &t), expected, "filter {:?} topic {:?}", filter, topic);
        prop_assert_eq!(f.matches(&t), expected);
    }

    #[test]
    fn agrees_with_reference_on_instantiated_topics(
        filter in filter_text(),
        fill in prop::collection::vec(level(), 1..=6),
    ) {
        let topic = instantiate(&filter, &fill);
        let f = TopicFilter::new(&filter).unwrap();
        let t = TopicName::new(&topic).unwrap();
        let expected = matching_filters(&topic).contains(&filter);
        prop_assert_eq!(matches(&f, &t), expected, "filter {:?} topic {:?}", filter, topic);
    }

    /// Every filter the reference lists is valid and matches; nothing is lost
    /// to the enumeration being wrong in the other direction.
    #[test]
    fn every_enumerated_filter_matches(topic in topic_text()) {
        let t = TopicName::new(&topic).unwrap();
        for filter in matching_filters(&topic) {
            let f = TopicFilter::new(&filter).unwrap();
            prop_assert!(matches(&f, &t), "filter {:?} topic {:?}", filter, topic);
        }
    }
}

#[test]
fn reference_enumeration_sanity() {
    // The reference itself, on the examples of §4.7.1.2 and §4.7.1.3.
    let sport = matching_filters("sport");
    assert!(sport.contains("sport/#") && sport.contains("#") && sport.contains("+"));
    assert!(!sport.contains("sport/+"));
    let finance = matching_filters("/finance");
    assert!(finance.contains("+/+") && finance.contains("/+") && !finance.contains("+"));
    let sys = matching_filters("$SYS/monitor/Clients");
    assert!(sys.contains("$SYS/monitor/+") && sys.contains("$SYS/#"));
    assert!(!sys.contains("#") && !sys.contains("+/monitor/Clients"));
}
