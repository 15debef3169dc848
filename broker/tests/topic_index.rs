//! `SubscriptionIndex` against a naive model: a plain map of (filter, client)
//! to value, matched by scanning every filter with `mqtt_codec::topic::matches`
//! (itself checked against an independent reference in `topic_matching.rs`).

// Tests may unwrap: a panic here is the test failing, with the value shown.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};

use broker::router::index::SubscriptionIndex;
use mqtt_codec::topic::{TopicFilter, TopicName, matches};
use proptest::prelude::*;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap()
}

fn sorted<K: Ord, V: Ord>(mut v: Vec<(K, V)>) -> Vec<(K, V)> {
    v.sort();
    v
}

/// The naive model: every subscription in a map, grouped by filter.
#[derive(Default)]
struct Model {
    subs: BTreeMap<String, BTreeMap<u8, u8>>,
}

impl Model {
    fn insert(&mut self, f: &str, client: u8, value: u8) -> Option<u8> {
        self.subs
            .entry(f.to_owned())
            .or_default()
            .insert(client, value)
    }

    fn remove(&mut self, f: &str, client: u8) -> Option<u8> {
        let clients = self.subs.get_mut(f)?;
        let previous = clients.remove(&client);
        if clients.is_empty() {
            self.subs.remove(f);
        }
        previous
    }

    fn iter(&self) -> impl Iterator<Item = (&String, u8, u8)> {
        self.subs
            .iter()
            .flat_map(|(f, clients)| clients.iter().map(move |(c, v)| (f, *c, *v)))
    }

    fn len(&self) -> usize {
        self.subs.values().map(BTreeMap::len).sum()
    }

    /// The clients of every filter that matches `t`, found by scanning all.
    fn matching(&self, t: &TopicName) -> impl Iterator<Item = (u8, u8)> {
        self.subs
            .iter()
            .filter(|(f, _)| matches(&filter(f), t))
            .flat_map(|(_, clients)| clients.iter().map(|(c, v)| (*c, *v)))
    }

    /// Each matching client once with its highest value [MQTT-3.3.5-1].
    fn matches(&self, t: &TopicName) -> Vec<(u8, u8)> {
        let mut best: BTreeMap<u8, u8> = BTreeMap::new();
        for (client, value) in self.matching(t) {
            let held = best.entry(client).or_insert(value);
            *held = (*held).max(value);
        }
        best.into_iter().collect()
    }

    /// Every matching (filter, client) pair's client and value.
    fn raw_matches(&self, t: &TopicName) -> Vec<(u8, u8)> {
        let mut raw: Vec<(u8, u8)> = self.matching(t).collect();
        raw.sort();
        raw
    }

    fn filter_count(&self) -> usize {
        self.subs.len()
    }

    /// The trie nodes the live filters need: one per distinct non-empty
    /// prefix of levels, a trailing `#` excluded.
    fn node_count(&self) -> usize {
        let mut prefixes = HashSet::new();
        for f in self.subs.keys() {
            let steps: Vec<&str> = f.split('/').take_while(|l| *l != "#").collect();
            for k in 1..=steps.len() {
                prefixes.insert(steps[..k].join("/"));
            }
        }
        prefixes.len()
    }
}

const LEVELS: &[&str] = &["", "a", "b", "A", "$SYS", "$", "caf\u{e9}", "cafe\u{301}"];

fn level() -> impl Strategy<Value = String> {
    prop::sample::select(LEVELS).prop_map(str::to_owned)
}

fn topic_text() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..=4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic has at least one character", |t| !t.is_empty())
}

fn filter_text() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![3 => level(), 2 => Just("+".to_owned())];
    (prop::collection::vec(filter_level, 0..=4), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
        .prop_filter("a filter has at least one character", |f| !f.is_empty())
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8, u8),
    /// Subscribes clients `start..start + count` at once, so that big merges
    /// (many clients through several filters) come up too.
    InsertMany(String, u8, u8, u8),
    Remove(String, u8),
    /// Removes the `n`-th live subscription (modulo their number), so removals
    /// hit real subscriptions often.
    RemoveLive(usize),
    Check(String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (filter_text(), 0..6u8, 0..3u8).prop_map(|(f, c, q)| Op::Insert(f, c, q)),
        1 => (filter_text(), 0..40u8, 1..40u8, 0..3u8)
            .prop_map(|(f, start, count, q)| Op::InsertMany(f, start, count, q)),
        1 => (filter_text(), 0..6u8).prop_map(|(f, c)| Op::Remove(f, c)),
        2 => any::<usize>().prop_map(Op::RemoveLive),
        3 => topic_text().prop_map(Op::Check),
    ]
}

fn check_agrees(
    index: &SubscriptionIndex<u8, u8>,
    model: &Model,
    t: &str,
) -> Result<(), TestCaseError> {
    let t = topic(t);
    prop_assert_eq!(
        sorted(index.matches(&t)),
        model.matches(&t),
        "topic {:?}",
        t
    );
    let mut raw = Vec::new();
    index.for_each_match(&t, |client, value| raw.push((*client, value)));
    raw.sort();
    prop_assert_eq!(raw, model.raw_matches(&t), "raw visits for topic {:?}", t);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn index_equals_naive_scan_under_inserts_and_removes(
        ops in prop::collection::vec(op(), 1..60),
        probes in prop::collection::vec(topic_text(), 1..12),
    ) {
        let mut index = SubscriptionIndex::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert(f, client, value) => {
                    let previous = model.insert(&f, client, value);
                    prop_assert_eq!(index.insert(&filter(&f), client, value), previous);
                }
                Op::InsertMany(f, start, count, value) => {
                    for client in start..start + count {
                        let previous = model.insert(&f, client, value);
                        prop_assert_eq!(index.insert(&filter(&f), client, value), previous);
                    }
                }
                Op::Remove(f, client) => {
                    let previous = model.remove(&f, client);
                    prop_assert_eq!(index.remove(&filter(&f), &client), previous);
                }
                Op::RemoveLive(n) => {
                    let live = model.len();
                    if live == 0 {
                        continue;
                    }
                    let (f, client, _) = model.iter().nth(n % live).unwrap();
                    let f = f.clone();
                    let previous = model.remove(&f, client);
                    prop_assert_eq!(index.remove(&filter(&f), &client), previous);
                }
                Op::Check(t) => check_agrees(&index, &model, &t)?,
            }
            prop_assert_eq!(index.len(), model.len());
            prop_assert_eq!(index.is_empty(), model.subs.is_empty());
            prop_assert_eq!(index.filter_count(), model.filter_count());
            prop_assert_eq!(index.node_count(), model.node_count(), "pruning left nodes behind");
        }
        for (f, client, value) in model.iter() {
            prop_assert_eq!(index.get(&filter(f), &client), Some(value));
        }
        for t in &probes {
            check_agrees(&index, &model, t)?;
        }
        // Topics made from the live filters, so that the probes do match.
        for f in model.subs.keys() {
            let t = f.replace('+', "a").replace("/#", "").replace('#', "b");
            let t = if t.is_empty() { "a".to_owned() } else { t };
            check_agrees(&index, &model, &t)?;
        }
    }
}

#[test]
fn each_client_once_with_highest_value() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("sport/#"), "c1", 0);
    index.insert(&filter("sport/tennis/+"), "c1", 2);
    index.insert(&filter("sport/tennis/player1"), "c1", 1);
    index.insert(&filter("#"), "c2", 1);
    index.insert(&filter("sport/+/player1"), "c2", 0);
    index.insert(&filter("sport/golf/#"), "c3", 2);
    assert_eq!(
        sorted(index.matches(&topic("sport/tennis/player1"))),
        vec![("c1", 2), ("c2", 1)]
    );
    let mut raw = 0;
    index.for_each_match(&topic("sport/tennis/player1"), |_, _| raw += 1);
    assert_eq!(raw, 5, "one visit per matching (filter, client)");
}

#[test]
fn subscribing_again_replaces_and_returns_previous() {
    let mut index = SubscriptionIndex::new();
    assert_eq!(index.insert(&filter("a/b"), 7u32, 1u8), None);
    assert_eq!(index.insert(&filter("a/b"), 7, 2), Some(1));
    assert_eq!(index.get(&filter("a/b"), &7), Some(2));
    assert_eq!((index.len(), index.filter_count()), (1, 1));
    assert_eq!(index.matches(&topic("a/b")), vec![(7, 2)]);
}

#[test]
fn remove_is_literal_not_matching() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("a/b"), 1, 0u8);
    index.insert(&filter("a/+"), 1, 1);
    index.insert(&filter("a/#"), 1, 2);
    // `a/+` and `#` match `a/b` as topics, but only the identical filter goes.
    assert_eq!(index.remove(&filter("#"), &1), None);
    assert_eq!(index.remove(&filter("a/+"), &1), Some(1));
    assert_eq!(index.remove(&filter("a/+"), &1), None);
    assert_eq!(index.remove(&filter("a/b"), &2), None);
    assert_eq!(index.get(&filter("a/b"), &1), Some(0));
    assert_eq!(index.get(&filter("a/#"), &1), Some(2));
    assert_eq!(index.len(), 2);
}

#[test]
fn wildcard_first_filters_skip_dollar_topics() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("#"), "all", 0u8);
    index.insert(&filter("+/monitor/Clients"), "plus", 0);
    index.insert(&filter("$SYS/#"), "sys", 1);
    index.insert(&filter("$SYS/monitor/+"), "monitor", 2);
    assert_eq!(
        sorted(index.matches(&topic("$SYS/monitor/Clients"))),
        vec![("monitor", 2), ("sys", 1)]
    );
    assert_eq!(
        sorted(index.matches(&topic("x/monitor/Clients"))),
        vec![("all", 0), ("plus", 0)]
    );
    assert_eq!(index.matches(&topic("$SYS")), vec![("sys", 1)]);
    // `$` is special only as the first character of the topic.
    assert_eq!(index.matches(&topic("a/$SYS")), vec![("all", 0)]);
}

#[test]
fn empty_levels_and_parent_level() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("+/+"), 1, 0u8);
    index.insert(&filter("/+"), 2, 0);
    index.insert(&filter("+"), 3, 0);
    index.insert(&filter("sport/#"), 4, 0);
    index.insert(&filter("sport/+"), 5, 0);
    assert_eq!(
        sorted(index.matches(&topic("/finance"))),
        vec![(1, 0), (2, 0)]
    );
    assert_eq!(sorted(index.matches(&topic("sport"))), vec![(3, 0), (4, 0)]);
    assert_eq!(
        sorted(index.matches(&topic("sport/"))),
        vec![(1, 0), (4, 0), (5, 0)]
    );
}

#[test]
fn matches_into_reuses_and_clears_the_buffer() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("a"), 1, 0u8);
    let mut out = vec![(9, 9)];
    index.matches_into(&topic("a"), &mut out);
    assert_eq!(out, vec![(1, 0)]);
    index.matches_into(&topic("b"), &mut out);
    assert!(out.is_empty());
}

#[test]
fn removing_everything_prunes_every_node() {
    let mut index = SubscriptionIndex::new();
    let filters: Vec<String> = (0..2_000)
        .map(|i| match i % 4 {
            0 => format!("dev/{i}/temp"),
            1 => format!("dev/+/{i}/#"),
            2 => format!("+/{}/x/{i}", i % 50),
            _ => format!("$SYS/{i}"),
        })
        .collect();
    for round in 0..3 {
        for (i, f) in filters.iter().enumerate() {
            index.insert(&filter(f), i % 7, round);
        }
        assert!(index.node_count() > 0);
        for (i, f) in filters.iter().enumerate() {
            assert_eq!(index.remove(&filter(f), &(i % 7)), Some(round));
        }
        assert_eq!(
            (index.len(), index.filter_count(), index.node_count()),
            (0, 0, 0),
            "round {round}"
        );
        assert!(index.matches(&topic("dev/1/temp")).is_empty());
    }
}

#[test]
fn shared_prefix_survives_pruning_of_a_sibling() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("a/b/c/d"), 1, 0u8);
    index.insert(&filter("a/b"), 2, 0);
    index.insert(&filter("a/b/+/e"), 3, 0);
    assert_eq!(index.node_count(), 6); // a, a/b, a/b/c, a/b/c/d, a/b/+, a/b/+/e
    index.remove(&filter("a/b/c/d"), &1);
    assert_eq!(index.node_count(), 4);
    index.remove(&filter("a/b/+/e"), &3);
    assert_eq!(index.node_count(), 2);
    assert_eq!(index.matches(&topic("a/b")), vec![(2, 0)]);
    index.remove(&filter("a/b"), &2);
    assert_eq!(index.node_count(), 0);
}

/// A filter of 32,768 levels (the most 65,535 bytes can hold) must not
/// overflow the stack when inserted, matched, pruned or dropped.
#[test]
fn deepest_possible_filters_do_not_overflow_the_stack() {
    let levels = 32_768;
    let plus = vec!["+"; levels].join("/");
    let literal = vec!["a"; levels].join("/");
    let slashes = "/".repeat(levels - 1);
    assert_eq!(plus.len(), 65_535);
    let mut index = SubscriptionIndex::new();
    index.insert(&filter(&plus), 1, 0u8);
    index.insert(&filter(&literal), 2, 1);
    index.insert(
        &filter(&format!("{}/#", &literal[..literal.len() - 2])),
        3,
        2,
    );
    assert_eq!(index.matches(&topic(&slashes)), vec![(1, 0)]);
    assert_eq!(
        sorted(index.matches(&topic(&literal))),
        vec![(1, 0), (2, 1), (3, 2)]
    );
    assert_eq!(index.remove(&filter(&literal), &2), Some(1));
    assert_eq!(index.remove(&filter(&plus), &1), Some(0));
    // The `#` filter still needs all but the last `a` level.
    assert_eq!(index.node_count(), levels - 1);
    index.insert(&filter(&plus), 1, 0);
    drop(index);
}

#[test]
fn many_clients_on_one_filter() {
    let mut index: SubscriptionIndex<u32, u8> = SubscriptionIndex::default();
    for client in 0..10_000 {
        index.insert(&filter("news/+"), client, (client % 3) as u8);
        index.insert(&filter("news/#"), client, 1);
    }
    let found: HashMap<u32, u8> = index.matches(&topic("news/today")).into_iter().collect();
    assert_eq!(found.len(), 10_000);
    assert!(found.iter().all(|(c, q)| *q == ((c % 3) as u8).max(1)));
    for client in 0..10_000 {
        index.remove(&filter("news/+"), &client);
    }
    assert_eq!((index.len(), index.filter_count()), (10_000, 1));
    assert_eq!(index.matches(&topic("news/today")).len(), 10_000);
}

#[test]
fn debug_shows_counts() {
    let mut index = SubscriptionIndex::new();
    index.insert(&filter("a/b"), 1, 0u8);
    assert_eq!(
        format!("{index:?}"),
        "SubscriptionIndex { subscriptions: 1, filters: 1, nodes: 2, .. }"
    );
}
