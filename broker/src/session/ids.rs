//! [`IdSet`]: which packet identifiers are in use, cheap whether a session has
//! two messages in flight or twenty thousand.
//!
//! Most sessions hold a handful of ids, so the set starts as a short vector
//! (no allocation while empty, a linear scan over a few entries). Past
//! [`SMALL_LIMIT`] entries it switches to a 65,536-bit map (8 KB), allocated
//! only for sessions that really keep that many ids outstanding.

use mqtt_codec::PacketId;

/// How many ids the vector form holds before the set switches to a bitmap.
const SMALL_LIMIT: usize = 32;

/// A set of packet identifiers.
#[derive(Debug, Clone, Default)]
pub struct IdSet {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Small(Vec<PacketId>),
    Bitmap { words: Box<[u64]>, len: usize },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Small(Vec::new())
    }
}

fn bit(id: PacketId) -> (usize, u64) {
    let v = usize::from(id.get());
    (v / 64, 1u64 << (v % 64))
}

impl IdSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self {
            repr: Repr::Small(Vec::new()),
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: PacketId) -> bool {
        match &self.repr {
            Repr::Small(v) => v.contains(&id),
            Repr::Bitmap { words, .. } => {
                let (w, m) = bit(id);
                words.get(w).is_some_and(|word| word & m != 0)
            }
        }
    }

    /// Adds `id`; returns whether it was absent.
    pub fn insert(&mut self, id: PacketId) -> bool {
        match &mut self.repr {
            Repr::Small(v) => {
                if v.contains(&id) {
                    return false;
                }
                if v.len() < SMALL_LIMIT {
                    v.push(id);
                    return true;
                }
                let mut words = vec![0u64; 65_536 / 64].into_boxed_slice();
                for old in v.iter().copied().chain(std::iter::once(id)) {
                    let (w, m) = bit(old);
                    if let Some(word) = words.get_mut(w) {
                        *word |= m;
                    }
                }
                let len = v.len() + 1;
                self.repr = Repr::Bitmap { words, len };
                true
            }
            Repr::Bitmap { words, len } => {
                let (w, m) = bit(id);
                match words.get_mut(w) {
                    Some(word) if *word & m == 0 => {
                        *word |= m;
                        *len += 1;
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// Removes `id`; returns whether it was present.
    pub fn remove(&mut self, id: PacketId) -> bool {
        match &mut self.repr {
            Repr::Small(v) => match v.iter().position(|x| *x == id) {
                Some(i) => {
                    v.swap_remove(i);
                    true
                }
                None => false,
            },
            Repr::Bitmap { words, len } => {
                let (w, m) = bit(id);
                let removed = match words.get_mut(w) {
                    Some(word) if *word & m != 0 => {
                        *word &= !m;
                        *len -= 1;
                        true
                    }
                    _ => false,
                };
                // Give the 8 KB back once the burst is over.
                if *len == 0 {
                    self.repr = Repr::Small(Vec::new());
                }
                removed
            }
        }
    }

    /// How many ids are in the set.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(v) => v.len(),
            Repr::Bitmap { len, .. } => *len,
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids in the set, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = PacketId> + '_ {
        let (small, bitmap) = match &self.repr {
            Repr::Small(v) => (Some(v.iter().copied()), None),
            Repr::Bitmap { words, .. } => (None, Some(words)),
        };
        let from_bitmap = bitmap.into_iter().flat_map(|words| {
            words.iter().enumerate().flat_map(|(w, word)| {
                (0..64u32)
                    .filter(move |b| word & (1u64 << b) != 0)
                    .filter_map(move |b| u16::try_from(w * 64 + b as usize).ok())
                    .filter_map(PacketId::new)
            })
        });
        small.into_iter().flatten().chain(from_bitmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).expect("non-zero")
    }

    #[test]
    fn small_and_bitmap_forms_agree() {
        let mut set = IdSet::new();
        for v in 1..=100 {
            assert!(set.insert(id(v)));
            assert!(!set.insert(id(v)));
        }
        assert_eq!(set.len(), 100);
        assert!(set.contains(id(77)));
        assert!(!set.contains(id(101)));
        assert!(set.contains(id(1)));
        for v in 1..=100 {
            assert!(set.remove(id(v)));
        }
        assert!(set.is_empty());
        assert!(matches!(set.repr, Repr::Small(_)));
    }

    #[test]
    fn highest_id_fits_the_bitmap() {
        let mut set = IdSet::new();
        for v in (65_500..=65_535).rev() {
            set.insert(id(v));
        }
        assert!(set.contains(id(65_535)));
        let mut all: Vec<u16> = set.iter().map(PacketId::get).collect();
        all.sort_unstable();
        assert_eq!(all.first(), Some(&65_500));
        assert_eq!(all.len(), 36);
    }
}
