//! [`Children`]: the literal children of one subscription trie node, keyed
//! by level text, stored by how many there are.
//!
//! Most nodes have one child or a few: every level of a filter `a/b/c`
//! but the last has exactly one. A hash map costs room for at least four
//! entries and its control bytes even for one, which made each level of a
//! filter cost about 700 bytes and a 65,535-byte filter of empty levels
//! (`////...`, 65,536 of them) 46 MB (issue 14). Up to [`FEW`] children
//! live in a vector sized to fit, searched in order; past that, a map.

use std::collections::HashMap;

/// Most children kept in the vector; one more moves them into a map.
const FEW: usize = 8;

/// A node's children by level text.
pub(super) enum Children<N> {
    /// Up to [`FEW`], in insertion order, the vector's capacity its length.
    Few(Vec<(Box<str>, N)>),
    /// More than [`FEW`]; boxed, so that the common case stays small.
    #[expect(
        clippy::box_collection,
        reason = "a map inline would make every node's children 48 bytes, not 24"
    )]
    Many(Box<HashMap<Box<str>, N>>),
}

impl<N> Default for Children<N> {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl<N> Children<N> {
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
            Self::Few(v) => v.iter().find(|(l, _)| &**l == level).map(|(_, n)| n),
            Self::Many(m) => m.get(level),
        }
    }

    pub(super) fn get_mut(&mut self, level: &str) -> Option<&mut N> {
        match self {
            Self::Few(v) => v.iter_mut().find(|(l, _)| &**l == level).map(|(_, n)| n),
            Self::Many(m) => m.get_mut(level),
        }
    }

    /// Adds a child for `level`, which has none yet.
    pub(super) fn insert(&mut self, level: &str, node: N) {
        match self {
            Self::Few(v) if v.len() < FEW => {
                // Exactly one more: most nodes keep one or two children.
                v.reserve_exact(1);
                v.push((Box::from(level), node));
            }
            Self::Few(v) => {
                let mut m: HashMap<Box<str>, N> = std::mem::take(v).into_iter().collect();
                m.insert(Box::from(level), node);
                *self = Self::Many(Box::new(m));
            }
            Self::Many(m) => {
                m.insert(Box::from(level), node);
            }
        }
    }

    /// Removes the child for `level`, giving memory back as they thin out.
    pub(super) fn remove(&mut self, level: &str) {
        match self {
            Self::Few(v) => {
                if let Some(i) = v.iter().position(|(l, _)| &**l == level) {
                    v.swap_remove(i);
                    v.shrink_to_fit();
                }
            }
            Self::Many(m) => {
                m.remove(level);
                if m.len() <= FEW / 2 {
                    let mut v: Vec<(Box<str>, N)> = Vec::with_capacity(m.len());
                    v.extend(m.drain());
                    *self = Self::Few(v);
                } else {
                    crate::sparse::shrink_if_sparse(m);
                }
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

    /// The children, mutable, in no particular order.
    pub(super) fn values_mut(&mut self) -> Box<dyn Iterator<Item = &mut N> + '_> {
        match self {
            Self::Few(v) => Box::new(v.iter_mut().map(|(_, n)| n)),
            Self::Many(m) => Box::new(m.values_mut()),
        }
    }

    /// The children, in no particular order.
    #[cfg(test)]
    pub(super) fn values(&self) -> Box<dyn Iterator<Item = &N> + '_> {
        match self {
            Self::Few(v) => Box::new(v.iter().map(|(_, n)| n)),
            Self::Many(m) => Box::new(m.values()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_into_a_map_and_back_keeping_every_child() {
        let mut c: Children<usize> = Children::default();
        for i in 0..20 {
            c.insert(&i.to_string(), i);
            assert_eq!(c.len(), i + 1);
        }
        assert!(matches!(c, Children::Many(_)));
        for i in 0..20 {
            assert_eq!(c.get(&i.to_string()), Some(&i));
        }
        for i in 0..17 {
            c.remove(&i.to_string());
        }
        assert!(matches!(c, Children::Few(ref v) if v.capacity() == 3));
        assert_eq!(c.get("18"), Some(&18));
        assert_eq!(c.get("3"), None);
        if let Some(n) = c.get_mut("19") {
            *n = 7;
        }
        let mut left: Vec<usize> = c.take_all().collect();
        left.sort_unstable();
        assert_eq!(left, [7, 17, 18]);
        assert!(c.is_empty());
    }

    #[test]
    fn children_take_the_room_of_a_vector() {
        assert_eq!(std::mem::size_of::<Children<[u8; 100]>>(), 24);
    }

    #[test]
    fn one_child_takes_room_for_one() {
        let mut c: Children<[u8; 100]> = Children::default();
        c.insert("a", [0; 100]);
        assert!(matches!(c, Children::Few(ref v) if v.capacity() == 1));
    }
}
