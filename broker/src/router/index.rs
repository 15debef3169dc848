//! [`SubscriptionIndex`]: every (topic filter, client) subscription, arranged
//! so that finding the subscribers of one topic does not look at the others.
//!
//! The index is a trie keyed by topic level. Each node stands for a filter
//! prefix and holds its literal children by level text, a separate child for
//! `+`, the subscribers of the filter that ends at the node, and the
//! subscribers of the same filter followed by `/#` (`#` is always the last
//! level, so it needs no node of its own). Matching a topic walks the literal
//! and `+` branches level by level and collects the `#` sets on the way; its
//! cost follows the number of filters that could match, not the number
//! stored. Removing the last subscriber of a filter prunes the nodes nothing
//! else needs, so memory does not grow with subscribe/unsubscribe churn.
//!
//! Filters may have up to 32,768 levels, so nothing here recurses along a
//! path: the walks keep their own stacks and dropping a node dismantles its
//! subtree in a loop.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use smallvec::SmallVec;

use super::children::Children;
use crate::mutant;
use crate::sparse::shrink_if_sparse;
use mqtt_codec::topic::{TopicFilter, TopicName};

/// The subscribers of one filter: client key to granted level.
type Subscribers<K, V> = HashMap<K, V>;

/// A node's subscriber set, allocated only while it holds someone: most
/// nodes are inner levels nobody subscribed to, and an empty map kept
/// inline would cost each of them 48 bytes (a 65,536-level filter has
/// 65,536 nodes).
struct Set<K, V>(Option<Box<Subscribers<K, V>>>);

impl<K, V> Set<K, V> {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }

    /// The subscribers, `None` when there are none.
    fn map(&self) -> Option<&Subscribers<K, V>> {
        self.0.as_deref().filter(|m| !m.is_empty())
    }
}

impl<K: Eq + Hash, V> Set<K, V> {
    fn insert(&mut self, client: K, value: V) -> Option<V> {
        self.0.get_or_insert_default().insert(client, value)
    }

    /// Removes `client`, freeing the map with its last subscriber.
    fn remove(&mut self, client: &K) -> Option<V> {
        let map = self.0.as_mut()?;
        let removed = map.remove(client)?;
        if map.is_empty() {
            self.0 = None;
        } else {
            shrink_if_sparse(map);
        }
        Some(removed)
    }
}

/// A node still to visit while matching, with the topic text left to match
/// below it (`None` once every level has been consumed).
type Pending<'a, 't, K, V> = (&'a Node<K, V>, Option<&'t str>);

/// Every subscription of the broker: which clients subscribed to which topic
/// filters, with the level (QoS) granted to each.
///
/// `K` identifies a client; `V` is the granted level, ordered so that the
/// highest of several matching subscriptions can be chosen [MQTT-3.3.5-1].
/// Filters are compared literally, as UNSUBSCRIBE requires [MQTT-3.10.4-1]:
/// `a/+` and `a/#` are different subscriptions even where they overlap.
pub struct SubscriptionIndex<K, V> {
    root: Node<K, V>,
    /// Number of (filter, client) pairs.
    subscriptions: usize,
    /// Number of filters with at least one subscriber.
    filters: usize,
    /// Number of trie nodes besides the root.
    nodes: usize,
}

/// One filter prefix. See the module documentation for the layout.
struct Node<K, V> {
    /// Children reached by a literal level, keyed by its exact text.
    literal: Children<Node<K, V>>,
    /// The child reached by `+`.
    single: Option<Box<Node<K, V>>>,
    /// Subscribers of the filter that ends at this node.
    exact: Set<K, V>,
    /// Subscribers of this node's filter followed by `/#` (at the root: `#`).
    multi: Set<K, V>,
}

impl<K, V> Node<K, V> {
    fn new() -> Self {
        Self {
            literal: Children::default(),
            single: None,
            exact: Set(None),
            multi: Set(None),
        }
    }

    fn child_count(&self) -> usize {
        self.literal.len() + usize::from(self.single.is_some())
    }

    /// Whether the node holds nothing: no subscribers and no children.
    fn is_vacant(&self) -> bool {
        self.exact.is_empty() && self.multi.is_empty() && self.child_count() == 0
    }

    /// The child for a (non-`#`) filter level, if it exists.
    fn child(&self, level: &str) -> Option<&Node<K, V>> {
        if level == "+" {
            self.single.as_deref()
        } else {
            self.literal.get(level)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        if level == "+" {
            self.single.as_deref_mut()
        } else {
            self.literal.get_mut(level)
        }
    }
}

impl<K, V> Drop for Node<K, V> {
    /// Dismantles the subtree in a loop: the derived, recursive drop would
    /// overflow the stack on a chain of thousands of levels.
    fn drop(&mut self) {
        if self.child_count() == 0 {
            return;
        }
        let mut pending: Vec<Node<K, V>> = Vec::new();
        pending.extend(self.literal.take_all());
        pending.extend(self.single.take().map(|child| *child));
        while let Some(mut node) = pending.pop() {
            pending.extend(node.literal.take_all());
            pending.extend(node.single.take().map(|child| *child));
            // `node` drops here without children, so its own drop returns at once.
        }
    }
}

/// The levels of `filter` that lead to its node: all but a trailing `#`,
/// whose subscribers live in the node of its parent.
fn steps(filter: &TopicFilter) -> impl Iterator<Item = &str> {
    filter.levels().take_while(|level| *level != "#")
}

/// Whether `filter` ends in `#`, so its subscribers are a node's `multi` set.
fn is_multi(filter: &TopicFilter) -> bool {
    filter.as_str().ends_with('#')
}

/// Splits off the first level of `rest`, returning it and what follows the
/// `/`, or `None` when it was the last level. `'/'` is ASCII, so splitting
/// there never cuts a UTF-8 sequence.
fn split_level(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('/') {
        Some((level, after)) => (level, Some(after)),
        None => (rest, None),
    }
}

impl<K, V> SubscriptionIndex<K, V> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            root: Node::new(),
            subscriptions: 0,
            filters: 0,
            nodes: 0,
        }
    }

    /// Number of (filter, client) subscriptions.
    pub fn len(&self) -> usize {
        self.subscriptions
    }

    /// Whether there are no subscriptions at all.
    pub fn is_empty(&self) -> bool {
        self.subscriptions == 0
    }

    /// Number of distinct filters that have at least one subscriber.
    pub fn filter_count(&self) -> usize {
        self.filters
    }

    /// Number of trie nodes besides the root: one per distinct filter prefix
    /// (a trailing `#` takes none). Pruning keeps it to what the current
    /// subscriptions need, which tests and memory accounting rely on.
    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Calls `f` on every subscription's value, for a change that applies
    /// to all of them (the router forgets its cached ACL decisions when the
    /// ACL is reloaded). Walks with a stack of its own, not recursion: a
    /// filter may be 65,536 levels deep.
    pub fn for_each_value_mut(&mut self, mut f: impl FnMut(&mut V)) {
        let mut stack: Vec<&mut Node<K, V>> = vec![&mut self.root];
        while let Some(node) = stack.pop() {
            for set in [&mut node.exact, &mut node.multi] {
                if let Some(map) = set.0.as_deref_mut() {
                    map.values_mut().for_each(&mut f);
                }
            }
            if let Some(single) = node.single.as_deref_mut() {
                stack.push(single);
            }
            stack.extend(node.literal.values_mut());
        }
    }

    /// The subscriber set of `filter`, if its node exists.
    fn subscribers(&self, filter: &TopicFilter) -> Option<&Subscribers<K, V>> {
        let mut node = &self.root;
        for level in steps(filter) {
            node = node.child(level)?;
        }
        if is_multi(filter) {
            node.multi.map()
        } else {
            node.exact.map()
        }
    }

    /// Calls `visit` with every non-empty subscriber set whose filter matches
    /// `topic`. Each trie node is reached at most once, by the one path whose
    /// levels the topic's levels match.
    fn for_each_matching_set<'a>(
        &'a self,
        topic: &TopicName,
        mut visit: impl FnMut(&'a Subscribers<K, V>),
    ) {
        // Pending nodes with the topic text still to match below them. The
        // stack holds at most one entry per level, so it stays inline for
        // all ordinary topics and costs no allocation.
        let mut stack: SmallVec<[Pending<'a, '_, K, V>; 16]> = SmallVec::new();
        let root = &self.root;
        let (first, rest) = split_level(topic.as_str());
        // Filters that start with a wildcard live in the root's `#` set and
        // under its `+` child; they never match `$` topics [MQTT-4.7.2-1].
        if !topic.is_dollar() || mutant::active("dollar-matched-by-wildcards") {
            if let Some(set) = root.multi.map() {
                visit(set);
            }
            if let Some(single) = &root.single {
                stack.push((single, rest));
            }
        }
        if let Some(child) = root.literal.get(first) {
            stack.push((child, rest));
        }
        while let Some((node, rest)) = stack.pop() {
            // `#` matches the remaining levels, none included: `sport/#`
            // matches `sport` [MQTT-4.7.1-2].
            if let Some(set) = node.multi.map()
                && (rest.is_some() || !mutant::active("hash-not-matching-parent"))
            {
                visit(set);
            }
            match rest {
                None => {
                    if let Some(set) = node.exact.map() {
                        visit(set);
                    }
                }
                Some(rest) => {
                    let (level, rest) = split_level(rest);
                    // `+` takes exactly one level, an empty one included.
                    if let Some(single) = &node.single
                        && (rest.is_none() || !mutant::active("plus-not-matching-in-middle"))
                    {
                        stack.push((single, rest));
                    }
                    if !node.literal.is_empty()
                        && let Some(child) = node.literal.get(level)
                    {
                        stack.push((child, rest));
                    }
                }
            }
        }
    }
}

impl<K: Clone + Eq + Hash, V: Copy + Ord> SubscriptionIndex<K, V> {
    /// Subscribes `client` to `filter` with `value`. Subscribing again to an
    /// identical filter replaces the old subscription [MQTT-3.8.4-3]; the
    /// previous value is returned.
    pub fn insert(&mut self, filter: &TopicFilter, client: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in steps(filter) {
            if node.child(level).is_none() {
                self.nodes += 1;
                if level == "+" {
                    node.single = Some(Box::new(Node::new()));
                } else {
                    node.literal.insert(level, Node::new());
                }
            }
            node = node
                .child_mut(level)
                .expect("the child for this level exists: it was just checked or created");
        }
        let set = if is_multi(filter) {
            &mut node.multi
        } else {
            &mut node.exact
        };
        let was_empty = set.is_empty();
        let previous = set.insert(client, value);
        if previous.is_none() {
            self.subscriptions += 1;
            if was_empty {
                self.filters += 1;
            }
        }
        previous
    }

    /// Unsubscribes `client` from exactly `filter`, compared literally, not
    /// by matching [MQTT-3.10.4-1]; returns the value it had, or `None` if
    /// there was no such subscription. The filter's nodes are pruned once
    /// nothing else needs them.
    pub fn remove(&mut self, filter: &TopicFilter, client: &K) -> Option<V> {
        let mut node = &mut self.root;
        for level in steps(filter) {
            node = node.child_mut(level)?;
        }
        let set = if is_multi(filter) {
            &mut node.multi
        } else {
            &mut node.exact
        };
        let removed = set.remove(client)?;
        self.subscriptions -= 1;
        if set.is_empty() {
            self.filters -= 1;
            if node.is_vacant() {
                self.prune(filter);
            }
        }
        Some(removed)
    }

    /// Removes the vacant tail of `filter`'s path: the nodes from the one
    /// below the deepest node still needed for something else (subscribers,
    /// or a child off the path) down to the filter's own, vacant, node.
    fn prune(&mut self, filter: &TopicFilter) {
        // First pass, read-only: find the deepest node that stays.
        let mut keep_depth = 0;
        let mut depth = 0;
        let mut node = &self.root;
        for level in steps(filter) {
            let needed = !node.exact.is_empty() || !node.multi.is_empty() || node.child_count() > 1;
            if depth > 0 && needed {
                keep_depth = depth;
            }
            match node.child(level) {
                Some(child) => node = child,
                None => return,
            }
            depth += 1;
        }
        if depth == 0 || !node.is_vacant() {
            return;
        }
        // Second pass: cut the edge below the node that stays.
        let mut node = &mut self.root;
        let mut levels = steps(filter);
        for _ in 0..keep_depth {
            match levels.next().and_then(|level| node.child_mut(level)) {
                Some(child) => node = child,
                None => return,
            }
        }
        let Some(cut) = levels.next() else { return };
        if cut == "+" {
            node.single = None;
        } else {
            node.literal.remove(cut);
        }
        self.nodes -= depth - keep_depth;
    }

    /// The value `client` holds for exactly `filter`, if subscribed.
    pub fn get(&self, filter: &TopicFilter, client: &K) -> Option<V> {
        self.subscribers(filter)?.get(client).copied()
    }

    /// The subscribers of `topic`: each client once, with the highest value
    /// among its matching filters [MQTT-3.3.5-1]. The order is unspecified.
    pub fn matches(&self, topic: &TopicName) -> Vec<(K, V)> {
        let mut out = Vec::new();
        self.matches_into(topic, &mut out);
        out
    }

    /// As [`matches`](Self::matches), into `out` (cleared first), so a caller
    /// can reuse one buffer for every message.
    pub fn matches_into(&self, topic: &TopicName, out: &mut Vec<(K, V)>) {
        out.clear();
        let mut sets: SmallVec<[&Subscribers<K, V>; 8]> = SmallVec::new();
        self.for_each_matching_set(topic, |set| sets.push(set));
        match sets.as_slice() {
            [] => {}
            // Keys of one set are distinct already.
            [only] => out.extend(only.iter().map(|(k, v)| (k.clone(), *v))),
            several => dedup_into(several, out),
        }
    }

    /// Calls `f` once per matching (filter, client) subscription, without
    /// allocating for ordinary topics. A client subscribed through several
    /// matching filters is visited once for each; use
    /// [`matches`](Self::matches) to get each client once with its highest
    /// value.
    pub fn for_each_match(&self, topic: &TopicName, mut f: impl FnMut(&K, V)) {
        self.for_each_matching_set(topic, |set| {
            for (client, value) in set {
                f(client, *value);
            }
        });
    }
}

/// The value a client gets when two of its subscriptions match: the
/// higher [MQTT-3.3.5-1].
fn higher<V: Ord>(a: V, b: V) -> V {
    if mutant::active("overlapping-lowest-qos") {
        return a.min(b);
    }
    a.max(b)
}

/// Merges several subscriber sets into `out`, each client once with its
/// highest value [MQTT-3.3.5-1].
///
/// A few visits are merged by comparing with what `out` already holds; more
/// go through a hash map. One set is usually far bigger than the rest (a
/// popular filter next to a few specific ones), so only the smaller sets'
/// entries are hashed; the biggest set is copied as it is, looked up per
/// entry only when some client in it holds a higher value through another
/// filter.
fn dedup_into<K: Clone + Eq + Hash, V: Copy + Ord>(
    sets: &[&Subscribers<K, V>],
    out: &mut Vec<(K, V)>,
) {
    /// Up to this many visits, quadratic comparison beats hashing.
    const LINEAR_MAX: usize = 32;
    let total: usize = sets.iter().map(|set| set.len()).sum();
    if total <= LINEAR_MAX {
        for (client, &value) in sets.iter().flat_map(|set| set.iter()) {
            match out.iter_mut().find(|(held, _)| held == client) {
                Some((_, held)) => *held = higher(*held, value),
                None => out.push((client.clone(), value)),
            }
        }
        return;
    }
    let Some(big) = sets.iter().copied().max_by_key(|set| set.len()) else {
        return;
    };
    let mut rest: HashMap<&K, V> = HashMap::with_capacity(total - big.len());
    // Each set appears once (a walk reaches each node once), so identity
    // picks out the biggest.
    for set in sets.iter().copied().filter(|set| !std::ptr::eq(*set, big)) {
        for (client, &value) in set {
            rest.entry(client)
                .and_modify(|held| *held = higher(*held, value))
                .or_insert(value);
        }
    }
    let mut raised: HashMap<&K, V> = HashMap::new();
    rest.retain(|client, value| match big.get(*client) {
        None => true,
        Some(&held) => {
            if *value > held {
                raised.insert(*client, *value);
            }
            false
        }
    });
    out.reserve(big.len() + rest.len());
    if raised.is_empty() {
        out.extend(big.iter().map(|(client, value)| (client.clone(), *value)));
    } else {
        out.extend(big.iter().map(|(client, value)| {
            let value = raised.get(client).copied().unwrap_or(*value);
            (client.clone(), value)
        }));
    }
    out.extend(
        rest.into_iter()
            .map(|(client, value)| (client.clone(), value)),
    );
}

impl<K, V> Default for SubscriptionIndex<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for SubscriptionIndex<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionIndex")
            .field("subscriptions", &self.subscriptions)
            .field("filters", &self.filters)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<K, V> SubscriptionIndex<K, V> {
        /// Counts the nodes really in the trie, to check the kept counter
        /// and that pruning frees what it says it frees.
        fn walk_node_count(&self) -> usize {
            let mut stack = vec![&self.root];
            let mut count = 0;
            while let Some(node) = stack.pop() {
                count += node.child_count();
                stack.extend(node.literal.values());
                stack.extend(node.single.as_deref());
            }
            count
        }
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).expect("test filters are valid")
    }

    /// Every subscription's value is reached, in every kind of node.
    #[test]
    fn every_value_is_visited_for_a_change() {
        let shapes = [
            "a/b/c", "a/+/c", "a/#", "+/b/#", "#", "a//", "$SYS/x/+", "a/b",
        ];
        let mut index = SubscriptionIndex::new();
        for (i, f) in shapes.iter().enumerate() {
            index.insert(&filter(f), i, 1u8);
            index.insert(&filter(f), i + 100, 1u8);
        }
        let mut visited = 0;
        index.for_each_value_mut(|v| {
            *v = 2;
            visited += 1;
        });
        assert_eq!(visited, 2 * shapes.len());
        for (i, f) in shapes.iter().enumerate() {
            assert_eq!(index.get(&filter(f), &i), Some(2), "{f}");
        }
    }

    #[test]
    fn node_counter_matches_the_trie_through_churn() {
        let shapes = [
            "a/b/c", "a/+/c", "a/#", "+/b/#", "#", "a//", "$SYS/x/+", "a/b",
        ];
        let mut index = SubscriptionIndex::new();
        // Insert and remove in shifting orders so every pruning case
        // (shared prefix, sibling, `#` on an inner node) comes up.
        for round in 0..shapes.len() {
            for (i, f) in shapes.iter().enumerate() {
                index.insert(&filter(f), (i + round) % 3, 0u8);
            }
            assert_eq!(index.node_count(), index.walk_node_count());
            for step in 0..shapes.len() {
                let i = (step * 3 + round) % shapes.len();
                index.remove(&filter(shapes[i]), &((i + round) % 3));
                assert_eq!(index.node_count(), index.walk_node_count(), "round {round}");
            }
            assert_eq!((index.len(), index.walk_node_count()), (0, 0));
        }
    }
}
