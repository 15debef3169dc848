//! [`Levels`]: the children of one retained-trie node, keyed by level text
//! and kept in sorted order, stored by how many there are.
//!
//! The retained trie needs its children sorted (walks resume after a topic
//! text, see the trie's module doc), which the subscription index does not
//! (its `Children` are unordered). A `BTreeMap`
//! sorts them but allocates a whole node of eleven slots even for one
//! child: about 1,100 bytes per level, so one retained 65,535-byte topic of
//! empty levels (`///…`, 65,536 of them) held 75 MB (issue 14). Most nodes
//! have one child or a few: up to [`FEW`] live in a sorted vector sized to
//! fit, found by binary search; past that, a boxed map, so that a level
//! with 100,000 children does not pay a vector insert per topic.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Bound;

/// Most children kept in the vector; one more moves them into a map.
const FEW: usize = 8;

/// A node's children by level text, in sorted order.
#[derive(Debug)]
pub(super) enum Levels<N> {
    /// Up to [`FEW`], sorted by level, the vector's capacity its length.
    Few(Vec<(Box<str>, N)>),
    /// More than [`FEW`]; boxed, so that the common case stays small.
    #[expect(
        clippy::box_collection,
        reason = "a map inline would make every node's children 32 bytes, not 24"
    )]
    Many(Box<BTreeMap<Box<str>, N>>),
}

impl<N> Default for Levels<N> {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

/// Children in sorted order from a starting level: see [`Levels::from`].
pub(super) enum Range<'a, N> {
    Few(std::slice::Iter<'a, (Box<str>, N)>),
    Many(btree_map::Range<'a, Box<str>, N>),
}

impl<'a, N> Iterator for Range<'a, N> {
    type Item = (&'a str, &'a N);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Few(it) => it.next().map(|(k, n)| (&**k, n)),
            Self::Many(it) => it.next().map(|(k, n)| (&**k, n)),
        }
    }
}

impl<N> Levels<N> {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Few(v) => v.len(),
            Self::Many(m) => m.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn get(&self, level: &str) -> Option<&N> {
        match self {
            Self::Few(v) => v
                .binary_search_by(|(k, _)| (**k).cmp(level))
                .ok()
                .map(|i| &v[i].1),
            Self::Many(m) => m.get(level),
        }
    }

    pub(super) fn get_mut(&mut self, level: &str) -> Option<&mut N> {
        match self {
            Self::Few(v) => v
                .binary_search_by(|(k, _)| (**k).cmp(level))
                .ok()
                .map(|i| &mut v[i].1),
            Self::Many(m) => m.get_mut(level),
        }
    }

    /// The child for `level`, made with `make` if there is none.
    pub(super) fn get_or_insert_with(&mut self, level: &str, make: impl FnOnce() -> N) -> &mut N {
        if let Self::Few(v) = self
            && v.len() >= FEW
            && v.binary_search_by(|(k, _)| (**k).cmp(level)).is_err()
        {
            let m: BTreeMap<Box<str>, N> = std::mem::take(v).into_iter().collect();
            *self = Self::Many(Box::new(m));
        }
        match self {
            Self::Few(v) => {
                let i = match v.binary_search_by(|(k, _)| (**k).cmp(level)) {
                    Ok(i) => i,
                    Err(i) => {
                        // Exactly one more: most nodes keep one or two children.
                        v.reserve_exact(1);
                        v.insert(i, (Box::from(level), make()));
                        i
                    }
                };
                &mut v[i].1
            }
            Self::Many(m) => m.entry(Box::from(level)).or_insert_with(make),
        }
    }

    /// Removes the child for `level`, giving memory back as they thin out.
    pub(super) fn remove(&mut self, level: &str) -> Option<N> {
        match self {
            Self::Few(v) => {
                let i = v.binary_search_by(|(k, _)| (**k).cmp(level)).ok()?;
                let (_, node) = v.remove(i);
                v.shrink_to_fit();
                Some(node)
            }
            Self::Many(m) => {
                let node = m.remove(level);
                if m.len() <= FEW / 2 {
                    let mut v: Vec<(Box<str>, N)> = Vec::with_capacity(m.len());
                    v.extend(std::mem::take(&mut **m));
                    *self = Self::Few(v);
                }
                node
            }
        }
    }

    /// The children whose level is `from` or after it, in order; all of
    /// them without `from`.
    pub(super) fn from(&self, from: Option<&str>) -> Range<'_, N> {
        match (self, from) {
            (Self::Few(v), None) => Range::Few(v.iter()),
            (Self::Few(v), Some(from)) => {
                let i = v.partition_point(|(k, _)| &**k < from);
                Range::Few(v[i..].iter())
            }
            (Self::Many(m), None) => Range::Many(m.range::<str, _>(..)),
            (Self::Many(m), Some(from)) => {
                Range::Many(m.range::<str, _>((Bound::Included(from), Bound::Unbounded)))
            }
        }
    }

    /// The child for `level` alone, as a range (empty if there is none).
    pub(super) fn only(&self, level: &str) -> Range<'_, N> {
        match self {
            Self::Few(v) => match v.binary_search_by(|(k, _)| (**k).cmp(level)) {
                Ok(i) => Range::Few(v[i..=i].iter()),
                Err(_) => Range::Few([].iter()),
            },
            Self::Many(m) => {
                Range::Many(m.range::<str, _>((Bound::Included(level), Bound::Included(level))))
            }
        }
    }

    /// Takes every child out, leaving none.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = N> + use<N> {
        let few = match std::mem::take(self) {
            Self::Few(v) => v,
            Self::Many(m) => m.into_iter().collect(),
        };
        few.into_iter().map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(r: Range<'_, usize>) -> Vec<String> {
        r.map(|(k, _)| k.to_owned()).collect()
    }

    #[test]
    fn stays_sorted_growing_into_a_map_and_back() {
        let mut c: Levels<usize> = Levels::default();
        // Inserted out of order, past FEW.
        for i in [7, 3, 19, 0, 12, 5, 1, 18, 2, 9, 4] {
            *c.get_or_insert_with(&format!("{i:02}"), || 0) = i;
        }
        assert!(matches!(c, Levels::Many(_)));
        assert_eq!(c.len(), 11);
        let all = keys(c.from(None));
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        assert_eq!(
            keys(c.from(Some("05"))),
            ["05", "07", "09", "12", "18", "19"]
        );
        assert_eq!(keys(c.from(Some("06"))), ["07", "09", "12", "18", "19"]);
        assert_eq!(keys(c.only("12")), ["12"]);
        assert!(keys(c.only("13")).is_empty());
        for i in [7, 3, 19, 0, 12, 5, 1] {
            assert_eq!(c.remove(&format!("{i:02}")), Some(i));
        }
        assert!(matches!(c, Levels::Few(ref v) if v.capacity() == 4));
        assert_eq!(keys(c.from(None)), ["02", "04", "09", "18"]);
        assert_eq!(keys(c.from(Some("03"))), ["04", "09", "18"]);
        assert_eq!(keys(c.only("09")), ["09"]);
        assert_eq!(c.get("18"), Some(&18));
        if let Some(n) = c.get_mut("18") {
            *n = 81;
        }
        assert_eq!(c.get("18"), Some(&81));
        assert_eq!(c.remove("absent"), None);
        let mut left: Vec<usize> = c.take_all().collect();
        left.sort_unstable();
        assert_eq!(left, [2, 4, 9, 81]);
        assert!(c.is_empty());
    }

    #[test]
    fn one_child_costs_its_entry_alone() {
        let mut c: Levels<u8> = Levels::default();
        c.get_or_insert_with("a", || 1);
        assert!(matches!(c, Levels::Few(ref v) if v.capacity() == 1));
        assert_eq!(std::mem::size_of::<Levels<u8>>(), 24);
    }
}
