//! Topic patterns: `--topic bench/{run}/{i}` names each publisher's topic, and
//! the filters subscribers use are derived from it.

use anyhow::Context;
use mqtt_codec::topic::{TopicFilter, TopicName};

/// A topic with placeholders: `{run}` becomes the run id (so concurrent or
/// earlier runs cannot mix), `{i}` the publisher's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(String);

impl TopicPattern {
    /// Checks the pattern by expanding it once.
    pub fn new(pattern: &str) -> anyhow::Result<Self> {
        let p = Self(pattern.to_owned());
        p.name(0, 0)
            .with_context(|| format!("--topic {pattern:?} is not a valid topic name"))?;
        Ok(p)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn expand(&self, run_id: u32, i: &str) -> String {
        self.0
            .replace("{run}", &format!("{run_id:08x}"))
            .replace("{i}", i)
    }

    /// Publisher `i`'s topic.
    pub fn name(&self, run_id: u32, i: u32) -> anyhow::Result<TopicName> {
        let s = self.expand(run_id, &i.to_string());
        TopicName::new(&s).with_context(|| format!("topic {s:?}"))
    }

    /// Publisher `i`'s topic as an exact filter.
    pub fn filter_for(&self, run_id: u32, i: u32) -> anyhow::Result<TopicFilter> {
        let s = self.expand(run_id, &i.to_string());
        TopicFilter::new(&s).with_context(|| format!("topic filter {s:?}"))
    }

    /// One filter matching every publisher's topic: `{i}` becomes `+`, which
    /// is only valid when `{i}` fills a whole level.
    pub fn filter_all(&self, run_id: u32) -> anyhow::Result<TopicFilter> {
        let s = self.expand(run_id, "+");
        TopicFilter::new(&s).with_context(|| {
            format!(
                "--topic {:?}: {{i}} must fill a whole topic level (like bench/{{i}}) so one subscriber can match every publisher with +",
                self.0
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand() {
        let p = TopicPattern::new("bench/{run}/{i}").unwrap();
        assert_eq!(p.name(0xab, 3).unwrap().as_str(), "bench/000000ab/3");
        assert_eq!(p.filter_all(0xab).unwrap().as_str(), "bench/000000ab/+");
    }

    #[test]
    fn index_inside_a_level_cannot_be_wildcarded() {
        let p = TopicPattern::new("bench/p{i}").unwrap();
        assert!(p.filter_all(1).is_err());
        assert_eq!(p.filter_for(1, 2).unwrap().as_str(), "bench/p2");
    }

    #[test]
    fn wildcard_in_pattern_is_refused() {
        assert!(TopicPattern::new("bench/#").is_err());
    }
}
