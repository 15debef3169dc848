//! Whether one topic filter matches one topic name, by the rules of §4.7.
//!
//! This is the definition the broker's subscription index must agree with; the index only finds the same answers without looking at
//! every filter. Both work on levels split at `/`, comparing them as exact
//! strings: case and Unicode form matter and nothing is normalised
//! [MQTT-4.7.3-4].

use super::{TopicFilter, TopicName};

/// Whether `filter` matches `topic` (§4.7):
///
/// - levels are split at `/` and empty levels are real levels, so `/finance`
///   has two levels and is matched by `+/+` and `/+` but not by `+`;
/// - `+` matches exactly one level, which may be empty (`sport/+` matches
///   `sport/` but not `sport`) [MQTT-4.7.1-3];
/// - `#` matches any number of remaining levels, including none, so `sport/#`
///   also matches the parent level `sport` [MQTT-4.7.1-2];
/// - a filter starting with `+` or `#` never matches a topic starting with `$`
///   [MQTT-4.7.2-1], while `$SYS/#` does match `$SYS/broker`;
/// - every other level must be equal byte for byte [MQTT-4.7.3-4].
pub fn matches(filter: &TopicFilter, topic: &TopicName) -> bool {
    matches_text(filter.as_str(), topic.as_str())
}

/// [`matches`](fn@matches) on text that was checked elsewhere or is built
/// per check (the broker's ACL patterns, with a client's id put in), so no
/// [`TopicFilter`] needs allocating. `filter` must be a valid filter and
/// `topic` a valid name; on other text the answer means nothing, but it
/// never panics.
pub fn matches_text(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            // `#` is always the last level of a valid filter and takes
            // whatever remains, nothing included.
            return true;
        }
        match topic_levels.next() {
            Some(topic_level) if filter_level == "+" || filter_level == topic_level => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

impl TopicFilter {
    /// Whether this filter matches `topic`; see [`matches`](fn@matches).
    pub fn matches(&self, topic: &TopicName) -> bool {
        matches(self, topic)
    }
}

#[cfg(test)]
mod tests {
    //! The worked examples of §4.7, one test per paragraph of the spec.

    use super::*;

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).expect("examples are valid filters")
    }

    fn topic(s: &str) -> TopicName {
        TopicName::new(s).expect("examples are valid topic names")
    }

    #[track_caller]
    fn assert_matches(f: &str, t: &str) {
        assert!(matches(&filter(f), &topic(t)), "{f:?} should match {t:?}");
    }

    #[track_caller]
    fn assert_no_match(f: &str, t: &str) {
        assert!(
            !matches(&filter(f), &topic(t)),
            "{f:?} should not match {t:?}"
        );
    }

    /// §4.7.1.2: `sport/tennis/player1/#` receives the player's own topic
    /// and everything below it.
    #[test]
    fn multi_level_wildcard_matches_descendants_and_parent() {
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert_matches("sport/tennis/player1/#", t);
        }
        assert_no_match("sport/tennis/player1/#", "sport/tennis/player2");
        assert_no_match("sport/tennis/player1/#", "sport/tennis");
    }

    /// §4.7.1.2: "sport/#" also matches the singular "sport", since `#`
    /// includes the parent level.
    #[test]
    fn multi_level_wildcard_includes_parent_level() {
        assert_matches("sport/#", "sport");
        assert_matches("sport/#", "sport/");
        assert_matches("sport/#", "sport/tennis/player1");
        assert_no_match("sport/#", "sports");
        assert_no_match("sport/#", "/sport");
    }

    /// §4.7.1.2: `#` alone receives every message (whose topic does not
    /// start with `$`).
    #[test]
    fn lone_multi_level_wildcard_matches_everything() {
        for t in ["sport", "/", "//", "/finance", "a/b/c", " "] {
            assert_matches("#", t);
        }
    }

    /// §4.7.1.3: `sport/tennis/+` matches one level below `sport/tennis`,
    /// not two.
    #[test]
    fn single_level_wildcard_matches_exactly_one_level() {
        assert_matches("sport/tennis/+", "sport/tennis/player1");
        assert_matches("sport/tennis/+", "sport/tennis/player2");
        assert_no_match("sport/tennis/+", "sport/tennis/player1/ranking");
        assert_no_match("sport/tennis/+", "sport/tennis");
    }

    /// §4.7.1.3: `sport/+` does not match `sport` but does match `sport/`.
    #[test]
    fn single_level_wildcard_matches_an_empty_level_but_not_none() {
        assert_no_match("sport/+", "sport");
        assert_matches("sport/+", "sport/");
        assert_matches("+/+", "/");
        assert_matches("+", " ");
    }

    /// §4.7.1.3: `+` is valid on its own and in `+/tennis/#` and
    /// `sport/+/player1`.
    #[test]
    fn single_level_wildcard_at_any_level() {
        assert_matches("+", "sport");
        assert_no_match("+", "sport/tennis");
        assert_matches("+/tennis/#", "sport/tennis");
        assert_matches("+/tennis/#", "sport/tennis/player1/ranking");
        assert_no_match("+/tennis/#", "sport/golf/player1");
        assert_matches("sport/+/player1", "sport/tennis/player1");
        assert_matches("sport/+/player1", "sport//player1");
        assert_no_match("sport/+/player1", "sport/tennis/player2");
    }

    /// §4.7.1.3: `/finance` matches `+/+` and `/+`, but not `+`.
    #[test]
    fn leading_slash_makes_an_empty_first_level() {
        assert_matches("+/+", "/finance");
        assert_matches("/+", "/finance");
        assert_no_match("+", "/finance");
        assert_matches("/#", "/finance");
        assert_matches("+/finance", "/finance");
    }

    /// §4.7.2: `#` does not receive messages whose topic starts with `$`
    /// [MQTT-4.7.2-1].
    #[test]
    fn wildcard_first_filters_skip_dollar_topics() {
        assert_no_match("#", "$SYS");
        assert_no_match("#", "$SYS/broker/clients");
        assert_no_match("+/monitor/Clients", "$SYS/monitor/Clients");
        assert_no_match("+", "$SYS");
        assert_no_match("+/#", "$SYS/x");
        assert_no_match("#", "$");
    }

    /// §4.7.2: `$SYS/#` and `$SYS/monitor/+` do receive `$SYS` messages; to
    /// get both kinds a client subscribes to `#` and `$SYS/#`.
    #[test]
    fn dollar_filters_match_dollar_topics() {
        assert_matches("$SYS/#", "$SYS/x");
        assert_matches("$SYS/#", "$SYS");
        assert_matches("$SYS/#", "$SYS/broker/load/bytes");
        assert_matches("$SYS/monitor/+", "$SYS/monitor/Clients");
        assert_matches("$SYS/monitor/Clients", "$SYS/monitor/Clients");
        assert_no_match("$SYS/#", "SYS/x");
        assert_matches("#", "monitor/Clients");
        // `$` is only special as the first character.
        assert_matches("#", "a/$SYS");
        assert_matches("+/$SYS", "a/$SYS");
    }

    /// §4.7.3: topics are compared as they are; `ACCOUNTS` and `Accounts` are
    /// different, as are two Unicode forms of the same text [MQTT-4.7.3-4].
    #[test]
    fn no_normalisation_of_case_or_unicode() {
        assert_matches("ACCOUNTS", "ACCOUNTS");
        assert_no_match("ACCOUNTS", "Accounts");
        assert_matches("Accounts payable", "Accounts payable");
        assert_no_match("/finance", "finance");
        assert_no_match("finance", "/finance");
        // U+00E9 precomposed against e + U+0301 combining acute.
        assert_no_match("caf\u{e9}", "cafe\u{301}");
        assert_matches("caf\u{e9}/+", "caf\u{e9}/\u{feff}");
        assert_no_match("a/b", "a/b ");
    }

    #[test]
    fn empty_levels_are_real_levels() {
        assert_matches("a//b", "a//b");
        assert_no_match("a/b", "a//b");
        assert_matches("a/+/b", "a//b");
        assert_no_match("a/+", "a//b");
        assert_matches("+/+/+", "//");
        assert_no_match("+/+", "//");
        assert_matches("//#", "//");
        assert_matches("/", "/");
        assert_no_match("/", "//");
    }

    #[test]
    fn method_agrees_with_function() {
        let f = filter("sport/#");
        assert!(f.matches(&topic("sport")));
        assert!(!f.matches(&topic("sports")));
    }
}
