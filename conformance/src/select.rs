//! Choosing scenarios by glob: `--only` and `--skip` patterns matched
//! against each scenario's id, area, tags and statement ids.
//!
//! A pattern is a glob where `*` stands for any run of characters and `?`
//! for one character; everything else matches itself. Matching is on the
//! whole string: `connect` matches the area `connect`, not the id
//! `connect.accepted` (write `connect.*` for that).

use crate::scenario::Scenario;

/// Whether `pattern` matches all of `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `pattern` matches the scenario's id, area, one of its tags or
/// one of its statement ids.
pub fn matches(pattern: &str, s: &Scenario) -> bool {
    glob_match(pattern, &s.name)
        || glob_match(pattern, &s.area)
        || s.tags.iter().any(|t| glob_match(pattern, t))
        || s.statements.iter().any(|id| glob_match(pattern, id))
}

/// `--only` and `--skip` patterns.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep only scenarios matching one of these (all when empty).
    pub only: Vec<String>,
    /// Then drop scenarios matching one of these.
    pub skip: Vec<String>,
}

impl Selection {
    /// Whether `s` is selected.
    pub fn selects(&self, s: &Scenario) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| matches(p, s)))
            && !self.skip.iter().any(|p| matches(p, s))
    }

    /// The patterns that match no scenario of `scenarios` (most likely
    /// typos), `--only` ones first.
    pub fn unmatched<'a>(&'a self, scenarios: &[Scenario]) -> Vec<&'a str> {
        self.only
            .iter()
            .chain(&self.skip)
            .filter(|p| !scenarios.iter().any(|s| matches(p, s)))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_whole_strings() {
        assert!(glob_match("connect", "connect"));
        assert!(!glob_match("connect", "connect.accepted"));
        assert!(glob_match("connect.*", "connect.accepted"));
        assert!(glob_match("*.accepted", "connect.accepted"));
        assert!(glob_match("MQTT-3.1.2-?", "MQTT-3.1.2-4"));
        assert!(!glob_match("MQTT-3.1.2-?", "MQTT-3.1.2-24"));
        assert!(glob_match("MQTT-3.1.*", "MQTT-3.1.2-24"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*flags", "malformed.pingreq-flags"));
    }
}
