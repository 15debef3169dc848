//! [`Retained`]: the last retained message of each topic.

use std::collections::HashMap;

use crate::mutant;
use mqtt_codec::Message;
use mqtt_codec::topic::matches;
use mqtt_codec::topic::{TopicFilter, TopicName};

/// Retained messages by topic. A PUBLISH with RETAIN=1 replaces the topic's
/// message [MQTT-3.3.1-5]; one with an empty payload removes it and is not
/// stored itself [MQTT-3.3.1-10] [MQTT-3.3.1-11].
#[derive(Debug, Default)]
pub struct Retained {
    by_topic: HashMap<TopicName, Message>,
}

impl Retained {
    /// Applies a message published with RETAIN=1.
    pub fn update(&mut self, message: &Message) {
        if message.payload.is_empty() && !mutant::active("empty-retained-stored") {
            self.by_topic.remove(&message.topic);
        } else {
            self.by_topic.insert(
                message.topic.clone(),
                message.for_delivery(message.qos, true),
            );
        }
    }

    /// The retained message of `topic`, if any (for the store).
    pub fn get(&self, topic: &TopicName) -> Option<&Message> {
        self.by_topic.get(topic)
    }

    /// Only with the `non-retained-replaces-retained` mutant: a message
    /// published without RETAIN replaces the topic's retained one.
    pub(super) fn replace_existing(&mut self, message: &Message) {
        if let Some(held) = self.by_topic.get_mut(&message.topic) {
            *held = message.for_delivery(message.qos, true);
        }
    }

    /// The retained messages whose topic `filter` matches, each to be sent
    /// with RETAIN=1 [MQTT-3.3.1-8] at no more than `granted` QoS.
    pub fn matching(&self, filter: &TopicFilter, granted: mqtt_codec::QoS) -> Vec<Message> {
        let deliver = |m: &Message| {
            let qos = if mutant::active("retained-qos-not-downgraded") {
                m.qos
            } else {
                m.qos.min(granted)
            };
            m.for_delivery(qos, !mutant::active("retained-flag-cleared-on-subscribe"))
        };
        if !filter.has_wildcards() {
            return TopicName::new(filter.as_str())
                .ok()
                .and_then(|t| self.by_topic.get(&t))
                .map(|m| vec![deliver(m)])
                .unwrap_or_default();
        }
        self.by_topic
            .values()
            .filter(|m| matches(filter, &m.topic))
            .map(deliver)
            .collect()
    }

    /// How many topics hold a retained message.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Whether no topic holds one.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }

    /// Every retained message, for the store.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.by_topic.values()
    }
}
