//! [`Retained`]: the last retained message of each topic, in a trie of
//! topic levels ([`trie`]), and the [`RetainedCursor`] through which a
//! SUBSCRIBE's retained messages reach the client a chunk at a time
//! ([`cursor`]).

mod cursor;
mod levels;
mod trie;

pub use cursor::{Owed, RetainedCursor};
pub use trie::Walked;

use crate::mutant;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{Message, QoS};
use trie::TopicTrie;

/// Retained messages by topic. A PUBLISH with RETAIN=1 replaces the topic's
/// message [MQTT-3.3.1-5]; one with an empty payload removes it and is not
/// stored itself [MQTT-3.3.1-10] [MQTT-3.3.1-11].
#[derive(Debug, Default)]
pub struct Retained {
    trie: TopicTrie,
}

impl Retained {
    /// Applies a message published with RETAIN=1.
    pub fn update(&mut self, message: &Message) {
        if message.payload.is_empty() && !mutant::active("empty-retained-stored") {
            self.trie.remove(&message.topic);
        } else {
            self.trie.insert(message.for_delivery(message.qos, true));
        }
    }

    /// The retained message of `topic`, if any (for the store).
    pub fn get(&self, topic: &TopicName) -> Option<&Message> {
        self.trie.get(topic)
    }

    /// Only with the `non-retained-replaces-retained` mutant: a message
    /// published without RETAIN replaces the topic's retained one.
    pub(super) fn replace_existing(&mut self, message: &Message) {
        if let Some(held) = self.trie.get_mut(&message.topic) {
            *held = message.for_delivery(message.qos, true);
        }
    }

    /// Copies into `out` the retained messages whose topic `filter` matches
    /// and that come after `after` in the trie's order (all, without
    /// `after`), each to be sent with RETAIN=1 [MQTT-3.3.1-8] at no more
    /// than `granted` QoS [MQTT-3.8.4-6]. Stops once `out` holds `max`
    /// messages (it gets at least one when one matches) or `budget` trie
    /// nodes were visited, returning where to resume; the cost follows the
    /// nodes the filter reaches, not the number of retained messages.
    pub fn matching(
        &self,
        filter: &TopicFilter,
        granted: QoS,
        after: Option<&str>,
        budget: &mut usize,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Walked {
        self.trie.walk(filter, after, budget, |m| {
            out.push(deliver(m, granted));
            out.len() < max
        })
    }

    /// How many topics hold a retained message.
    pub fn len(&self) -> usize {
        self.trie.len()
    }

    /// Whether no topic holds one.
    pub fn is_empty(&self) -> bool {
        self.trie.len() == 0
    }

    /// Every retained message, for the store.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.trie.iter()
    }
}

/// The copy of retained message `m` a new subscriber with `granted` QoS gets.
fn deliver(m: &Message, granted: QoS) -> Message {
    let qos = if mutant::active("retained-qos-not-downgraded") {
        m.qos
    } else {
        m.qos.min(granted)
    };
    m.for_delivery(qos, !mutant::active("retained-flag-cleared-on-subscribe"))
}
