//! Per-publisher delivery accounting on the subscriber side: which sequence
//! numbers arrived, how many twice, how many after a later one.
//!
//! A bit per sequence number records what was seen, so duplicates are exact
//! rather than guessed from gaps, and losses are what was sent minus what was
//! seen once the run has drained.

use serde::{Deserialize, Serialize};

/// What one subscriber saw of one publisher.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    seen: Vec<u64>,
    next: u64,
    unique: u64,
    duplicated: u64,
    out_of_order: u64,
}

/// What arriving message `seq` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First time this sequence number was seen.
    New,
    /// Seen before: a duplicate delivery.
    Duplicate,
    /// A sequence number far beyond anything sent so far: not a message this
    /// run wrote (a corrupt payload), and not worth a huge bitmap.
    OutOfRange,
}

impl SequenceTracker {
    /// Records the arrival of `seq`.
    pub fn record(&mut self, seq: u64) -> Arrival {
        let word = usize::try_from(seq / 64).unwrap_or(usize::MAX);
        if word >= self.seen.len() {
            // Grow geometrically; a sequence number from a corrupt or hostile
            // payload cannot be trusted to be small, so cap the jump.
            if word > self.seen.len().saturating_mul(2).max(1 << 20) {
                return Arrival::OutOfRange;
            }
            let new_len = (word + 1).max(self.seen.len() * 2);
            self.seen.resize(new_len, 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.seen[word] & bit != 0 {
            self.duplicated += 1;
            return Arrival::Duplicate;
        }
        self.seen[word] |= bit;
        self.unique += 1;
        if seq < self.next {
            self.out_of_order += 1;
        } else {
            self.next = seq + 1;
        }
        Arrival::New
    }

    /// One more than the highest sequence number seen (0 if none): how far
    /// this publisher's stream has got to this subscriber, gaps included.
    pub fn progress(&self) -> u64 {
        self.next
    }

    /// The totals, given how many messages the publisher sent.
    pub fn summary(&self, sent: u64) -> DeliveryCounts {
        DeliveryCounts {
            expected: sent,
            delivered: self.unique,
            lost: sent.saturating_sub(self.unique),
            duplicated: self.duplicated,
            out_of_order: self.out_of_order,
        }
    }
}

/// Delivery totals for one publisher (summed over its subscribers) or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// Deliveries that should have happened: messages sent times subscribers.
    pub expected: u64,
    /// Distinct messages that arrived.
    pub delivered: u64,
    /// Expected but never arrived.
    pub lost: u64,
    /// Arrived more than once (each extra arrival counts one).
    pub duplicated: u64,
    /// Arrived after a message the same publisher sent later.
    pub out_of_order: u64,
}

impl DeliveryCounts {
    /// Adds another set of counts to these.
    pub fn add(&mut self, other: &DeliveryCounts) {
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_has_no_anomalies() {
        let mut t = SequenceTracker::default();
        for s in 0..1000 {
            assert_eq!(t.record(s), Arrival::New);
        }
        assert_eq!(
            t.summary(1000),
            DeliveryCounts {
                expected: 1000,
                delivered: 1000,
                ..DeliveryCounts::default()
            }
        );
    }

    #[test]
    fn gaps_duplicates_and_late_arrivals_are_told_apart() {
        let mut t = SequenceTracker::default();
        for s in [0, 1, 3, 4, 2, 4, 7] {
            t.record(s);
        }
        let c = t.summary(8);
        assert_eq!(c.delivered, 6); // 0 1 2 3 4 7
        assert_eq!(c.lost, 2); // 5 6
        assert_eq!(c.duplicated, 1); // second 4
        assert_eq!(c.out_of_order, 1); // 2 after 4
        assert_eq!(t.progress(), 8);
    }

    #[test]
    fn absurd_sequence_number_does_not_allocate() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.record(u64::MAX), Arrival::OutOfRange);
        assert!(t.seen.len() <= 1);
    }
}
