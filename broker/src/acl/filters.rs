//! How two topic filters relate, level by level: whether some topic matches
//! both ([`intersects`]) and whether every topic one matches the other
//! matches too ([`covers`]). The ACL uses them to decide a SUBSCRIBE's
//! filter once, against its rules, instead of on every message.
//!
//! Both follow the matching rules of §4.7 (`mqtt_codec::topic::matches`):
//! `+` is one level, `#` any number of remaining levels (none included),
//! and a filter starting with a wildcard matches no topic starting with `$`
//! [MQTT-4.7.2-1].

/// Whether topics matched by a filter may start with `$`: only when its
/// first level is a literal starting with `$`.
fn dollar(filter: &str) -> bool {
    filter.starts_with('$')
}

/// Whether the filter's first level is `+` or `#`, which match no `$` topic.
fn wild_start(filter: &str) -> bool {
    filter.starts_with('+') || filter.starts_with('#')
}

/// Whether at least one topic name matches both `a` and `b`.
pub fn intersects(a: &str, b: &str) -> bool {
    // A wildcard-led filter matches no `$` topic; a `$`-led literal only
    // `$` topics.
    if (wild_start(a) && dollar(b)) || (wild_start(b) && dollar(a)) {
        return false;
    }
    let mut xs = a.split('/');
    let mut ys = b.split('/');
    loop {
        match (xs.next(), ys.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x != "+" && y != "+" && x != y {
                    return false;
                }
            }
            // One ended: the other may still end in `#`, which also
            // matches the parent level.
            (None, Some(_)) | (Some(_), None) => return false,
        }
    }
}

/// Whether every topic name that `inner` matches is matched by `outer`.
pub fn covers(outer: &str, inner: &str) -> bool {
    // `outer` led by a wildcard matches no `$` topic; `inner` led by a `$`
    // literal matches only those.
    if wild_start(outer) && dollar(inner) {
        return false;
    }
    let mut xs = outer.split('/');
    let mut ys = inner.split('/');
    loop {
        match (xs.next(), ys.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(x), Some(y)) => {
                if x != y {
                    return false;
                }
            }
            (Some(_), None) | (None, Some(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::topic::{TopicFilter, TopicName};

    #[test]
    fn intersections() {
        for (a, b) in [
            ("a/#", "a"),
            ("a", "a/#"),
            ("#", "a/b"),
            ("+/b", "a/+"),
            ("a/+/c", "a/b/#"),
            ("$SYS/#", "$SYS/broker/+"),
            ("#", "#"),
        ] {
            assert!(intersects(a, b), "{a} and {b}");
            assert!(intersects(b, a), "{b} and {a}");
        }
        for (a, b) in [
            ("a/b", "a/c"),
            ("a/+", "a"),
            ("a/+/c", "a/b"),
            ("#", "$SYS/#"),
            ("+/broker", "$SYS/broker"),
        ] {
            assert!(!intersects(a, b), "{a} and {b}");
            assert!(!intersects(b, a), "{b} and {a}");
        }
    }

    #[test]
    fn coverings() {
        for (outer, inner) in [
            ("#", "a/#"),
            ("a/#", "a"),
            ("a/#", "a/+/c"),
            ("a/+", "a/b"),
            ("+/+", "a/+"),
            ("$SYS/#", "$SYS/broker/#"),
            ("a/b", "a/b"),
        ] {
            assert!(covers(outer, inner), "{outer} covers {inner}");
        }
        for (outer, inner) in [
            ("a/+", "a/#"),
            ("a/b", "a/+"),
            ("a", "a/#"),
            ("#", "$SYS/#"),
            ("+/b", "a/b/c"),
            ("a/+/c", "a/b"),
        ] {
            assert!(!covers(outer, inner), "{outer} does not cover {inner}");
        }
    }

    /// Checked against the codec's matcher over a small universe of
    /// topics: `intersects` finds a common topic exactly when one exists,
    /// and `covers` holds exactly when no topic breaks it.
    #[test]
    fn agree_with_the_matcher() {
        let levels = ["a", "b", "$SYS", ""];
        let mut topics = Vec::new();
        for x in levels {
            topics.push(x.to_owned());
            for y in levels {
                topics.push(format!("{x}/{y}"));
                for z in levels {
                    topics.push(format!("{x}/{y}/{z}"));
                }
            }
        }
        let topics: Vec<TopicName> = topics
            .iter()
            .filter_map(|t| TopicName::new(t).ok())
            .collect();
        let filters = [
            "#", "+", "a", "a/#", "a/+", "+/b", "a/b", "+/+", "$SYS/#", "$SYS/+", "a/+/b", "+/#",
            "a//b", "/#",
        ];
        for a in filters {
            for b in filters {
                let (fa, fb) = (
                    TopicFilter::new(a).expect("valid"),
                    TopicFilter::new(b).expect("valid"),
                );
                let both = topics.iter().any(|t| fa.matches(t) && fb.matches(t));
                let within = topics.iter().all(|t| !fb.matches(t) || fa.matches(t));
                // What the ACL relies on: a filter said to meet no other
                // shares no topic with it, and one said to cover another
                // matches all its topics. (`+` and `/#` meet only at the
                // empty topic, which no client can publish.)
                if both {
                    assert!(intersects(a, b), "intersects({a}, {b})");
                }
                if covers(a, b) {
                    assert!(within, "covers({a}, {b})");
                }
            }
        }
    }
}
