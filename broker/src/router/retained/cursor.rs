//! [`RetainedCursor`]: the retained messages a client's SUBSCRIBEs still owe
//! it, held as filters with a resume point instead of as messages.
//!
//! A SUBSCRIBE of 2,048 overlapping filters over 10,000 retained messages
//! owes 20 million copies; made all at once they took a gigabyte and held
//! the broker for seconds (issue 14). The cursor holds one small entry per
//! filter (the filter, its granted QoS, and the topic after which its walk
//! goes on), and the router takes the next chunk from it whenever the
//! client's outbox runs low, walking a bounded number of trie nodes under
//! the retained lock each time. Publishes and other subscribes interleave
//! between chunks.
//!
//! What a client gets for a filter is what is retained when the walk
//! reaches the topic: a retained message replaced while a cursor is pending
//! is delivered as it is then (the new one), one removed is not delivered,
//! one added behind the resume point is delivered. A message is never held
//! by the cursor, so nothing stale or freed can be sent.

use std::collections::VecDeque;

use super::{Retained, Walked};
use mqtt_codec::topic::TopicFilter;
use mqtt_codec::{Message, QoS};

/// One filter whose retained messages are still to be sent. A persistent
/// session's record holds these, so what a SUBACK promised is still owed
/// after a restart or a crash (issue 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The filter subscribed to.
    pub filter: TopicFilter,
    /// Its granted QoS.
    pub granted: QoS,
    /// The topic after which the walk goes on; `None` before it starts.
    pub after: Option<Box<str>>,
}

/// The filters of a client whose retained messages are not all sent yet,
/// in the order they were granted; each filter's messages go in the trie's
/// order, one copy per matching filter as before.
#[derive(Debug, Default)]
pub struct RetainedCursor {
    pending: VecDeque<Owed>,
}

impl RetainedCursor {
    /// Owes the client the retained messages matching `filter`, at no more
    /// than `granted` QoS, after those of the filters before it.
    pub fn push(&mut self, filter: TopicFilter, granted: QoS) {
        self.pending.push_back(Owed {
            filter,
            granted,
            after: None,
        });
    }

    /// Forgets the filters an UNSUBSCRIBE removed: no new messages are
    /// added for them [MQTT-3.10.4-2].
    pub fn forget(&mut self, filter: &TopicFilter) {
        self.pending.retain(|p| p.filter != *filter);
    }

    /// A cursor owing what `owed` lists, as a stored session kept it.
    pub fn from_owed(owed: Vec<Owed>) -> Self {
        Self {
            pending: owed.into(),
        }
    }

    /// The filters still owing messages, in order, for the store.
    pub fn owed(&self) -> impl Iterator<Item = &Owed> {
        self.pending.iter()
    }

    /// Whether every owed message was handed out.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// How many filters still owe messages.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Moves the next owed messages into `out`: stops once it holds `max`
    /// (or just past, by one) or `budget` trie nodes were visited (each
    /// filter begun counts one more). May add nothing while filters remain,
    /// when the budget went on nodes that matched nothing.
    pub fn next_chunk(
        &mut self,
        retained: &Retained,
        max: usize,
        mut budget: usize,
        out: &mut Vec<Message>,
    ) {
        while budget > 0 && out.len() < max {
            let Some(front) = self.pending.front_mut() else {
                return;
            };
            budget -= 1;
            match retained.matching(
                &front.filter,
                front.granted,
                front.after.as_deref(),
                &mut budget,
                max,
                out,
            ) {
                Walked::Done => {
                    self.pending.pop_front();
                }
                Walked::Paused(at) => front.after = Some(at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use mqtt_codec::topic::TopicName;

    fn retained(n: usize) -> Retained {
        let mut r = Retained::default();
        for i in 0..n {
            r.update(&Message {
                topic: TopicName::new(format!("r/{}/{}", i / 10, i % 10)).expect("valid"),
                payload: Bytes::from(format!("{i}")),
                qos: QoS::ExactlyOnce,
                retain: true,
            });
        }
        r
    }

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::new(f).expect("valid")
    }

    /// Everything the cursor owes, in chunks of at most `max` messages and
    /// `budget` nodes.
    fn drain(c: &mut RetainedCursor, r: &Retained, max: usize, budget: usize) -> Vec<Message> {
        let mut all = Vec::new();
        while !c.is_empty() {
            let mut chunk = Vec::new();
            c.next_chunk(r, max, budget, &mut chunk);
            assert!(chunk.len() <= max);
            all.extend(chunk);
        }
        all
    }

    #[test]
    fn chunks_add_up_to_one_copy_per_matching_filter_in_order() {
        let r = retained(100);
        let mut whole = RetainedCursor::default();
        whole.push(filter("r/#"), QoS::AtLeastOnce);
        whole.push(filter("r/+/3"), QoS::AtMostOnce);
        whole.push(filter("r/2/+"), QoS::ExactlyOnce);
        let expected = drain(&mut whole, &r, usize::MAX, usize::MAX);
        assert_eq!(expected.len(), 100 + 10 + 10);
        assert!(expected.iter().all(|m| m.retain), "RETAIN=1 [MQTT-3.3.1-8]");
        assert_eq!(expected[0].qos, QoS::AtLeastOnce, "min(retained, granted)");
        assert_eq!(expected[100].qos, QoS::AtMostOnce);
        assert_eq!(expected[119].qos, QoS::ExactlyOnce);
        for (max, budget) in [(1, usize::MAX), (7, 3), (usize::MAX, 1), (3, 2)] {
            let mut c = RetainedCursor::default();
            c.push(filter("r/#"), QoS::AtLeastOnce);
            c.push(filter("r/+/3"), QoS::AtMostOnce);
            c.push(filter("r/2/+"), QoS::ExactlyOnce);
            assert_eq!(
                drain(&mut c, &r, max, budget),
                expected,
                "max {max} budget {budget}"
            );
        }
    }

    #[test]
    fn a_chunk_visits_no_more_nodes_than_its_budget() {
        // 1,000 topics none of which `+/+/x` matches: each chunk stops on
        // its budget, with nothing to send, and the cursor goes on.
        let r = retained(1_000);
        let mut c = RetainedCursor::default();
        c.push(filter("+/+/x"), QoS::AtMostOnce);
        let mut chunks = 0;
        while !c.is_empty() {
            let mut out = Vec::new();
            c.next_chunk(&r, 10, 16, &mut out);
            assert!(out.is_empty());
            chunks += 1;
        }
        // `r` and its 100 children (`x` exists under none of them): 101
        // nodes, 15 per chunk once the filter's own count is taken.
        assert_eq!(chunks, 7);
    }

    #[test]
    fn forgotten_filters_owe_nothing_more() {
        let r = retained(20);
        let mut c = RetainedCursor::default();
        c.push(filter("r/#"), QoS::AtMostOnce);
        c.push(filter("r/1/+"), QoS::AtMostOnce);
        let mut out = Vec::new();
        c.next_chunk(&r, 5, usize::MAX, &mut out);
        assert_eq!(out.len(), 5);
        c.forget(&filter("r/#"));
        assert_eq!(c.len(), 1);
        assert_eq!(drain(&mut c, &r, usize::MAX, usize::MAX).len(), 10);
    }

    #[test]
    fn a_message_replaced_while_pending_goes_out_as_it_is_now() {
        let mut r = retained(20);
        let mut c = RetainedCursor::default();
        c.push(filter("r/#"), QoS::AtMostOnce);
        let mut out = Vec::new();
        c.next_chunk(&r, 5, usize::MAX, &mut out);
        let replaced = Message {
            topic: TopicName::new("r/1/9").expect("valid"),
            payload: Bytes::from_static(b"replaced"),
            qos: QoS::AtMostOnce,
            retain: true,
        };
        r.update(&replaced);
        r.update(&Message {
            payload: Bytes::new(),
            topic: TopicName::new("r/1/8").expect("valid"),
            ..replaced.clone()
        });
        let rest = drain(&mut c, &r, usize::MAX, usize::MAX);
        assert_eq!(rest.len(), 14, "r/1/8 is gone");
        assert!(rest.contains(&replaced));
        assert!(rest.iter().all(|m| m.topic.as_str() != "r/1/8"));
    }
}
