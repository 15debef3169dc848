//! Stand-in for `topic::SubscriptionIndex` until it lands on main: the same
//! API over a plain map, scanning every filter. Replaced, not kept.

use std::collections::HashMap;
use std::hash::Hash;

use crate::topic::{TopicFilter, TopicName};

/// Whether `filter` matches `topic` (§4.7).
pub fn matches(filter: &TopicFilter, topic: &TopicName) -> bool {
    if topic.is_dollar() && filter.starts_with_wildcard() {
        return false;
    }
    let mut f = filter.levels();
    let mut t = topic.levels();
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[derive(Debug)]
pub struct SubscriptionIndex<K, V> {
    filters: HashMap<TopicFilter, HashMap<K, V>>,
}

impl<K: Clone + Eq + Hash, V: Copy + Ord> SubscriptionIndex<K, V> {
    pub fn new() -> Self {
        Self {
            filters: HashMap::new(),
        }
    }
    pub fn insert(&mut self, filter: &TopicFilter, client: K, value: V) -> Option<V> {
        self.filters
            .entry(filter.clone())
            .or_default()
            .insert(client, value)
    }
    pub fn remove(&mut self, filter: &TopicFilter, client: &K) -> Option<V> {
        let m = self.filters.get_mut(filter)?;
        let v = m.remove(client);
        if m.is_empty() {
            self.filters.remove(filter);
        }
        v
    }
    pub fn for_each_match(&self, topic: &TopicName, mut f: impl FnMut(&K, V)) {
        let mut best: HashMap<K, V> = HashMap::new();
        for (filter, clients) in &self.filters {
            if matches(filter, topic) {
                for (k, v) in clients {
                    let e = best.entry(k.clone()).or_insert(*v);
                    if *v > *e {
                        *e = *v;
                    }
                }
            }
        }
        for (k, v) in &best {
            f(k, *v);
        }
    }
    pub fn len(&self) -> usize {
        self.filters.values().map(HashMap::len).sum()
    }
}
