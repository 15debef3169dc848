//! Placeholders in script strings, expanded per run so scenarios running at
//! the same time never share a topic or a client id.

use crate::model::Template;

/// The values placeholders expand to for one scenario run.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// `{t}`: a topic prefix unique to this scenario run (`mqc/<run>/<n>`).
    pub topic: String,
    /// `{u}`: a token unique to this scenario run, letters and digits only.
    pub unique: String,
    /// `{id}`: a client-id prefix unique to this scenario run, letters and
    /// digits only and short enough that `{id}` plus an 8-character client
    /// name stays within the 23 characters every broker must accept
    /// [MQTT-3.1.3-5].
    pub client_id: String,
    /// `{n}`: the 1-based iteration of the innermost `repeat`, or 0.
    /// (`{fill:N}` expands to N filler letters, and `{pad:N}` to as many as
    /// make the whole string N bytes long; they need no value here.)
    pub iteration: u32,
}

/// The placeholders scripts may use.
pub const NAMES: &[&str] = &["t", "u", "id", "n"];

/// The most bytes a length-prefixed MQTT string can hold, the largest N of
/// `{fill:N}` and `{pad:N}`.
const MAX_STRING: usize = 65_535;

/// Checks that every `{...}` in `s` is a known placeholder, with at most one
/// `{pad:N}`.
pub fn check_template(s: &str) -> Result<(), String> {
    let mut rest = s;
    let mut pads = 0;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed '{{' in {s:?}"));
        };
        let name = &after[..close];
        let sized = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n <= MAX_STRING))
        };
        let pad = sized("pad:");
        pads += usize::from(pad);
        if !NAMES.contains(&name) && !sized("fill:") && !pad {
            return Err(format!(
                "unknown placeholder {{{name}}} in {s:?}; known: {{t}} topic prefix, {{u}} unique token, {{id}} client-id prefix, {{n}} repeat iteration, {{fill:N}} N filler letters, {{pad:N}} filler letters making the whole string N bytes (N up to 65535)"
            ));
        }
        if pads > 1 {
            return Err(format!("{s:?} holds more than one {{pad:N}}; use one"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

impl Placeholders {
    /// Expands every placeholder of `template`.
    pub fn expand(&self, template: &Template) -> String {
        let s = &template.0;
        if !s.contains('{') {
            return s.clone();
        }
        let mut out = s
            .replace("{t}", &self.topic)
            .replace("{u}", &self.unique)
            .replace("{id}", &self.client_id)
            .replace("{n}", &self.iteration.to_string());
        // `{fill:N}`: N letters a-z repeating, for size limits.
        while let Some(start) = out.find("{fill:") {
            let Some(len) = out[start..].find('}') else {
                break;
            };
            let n: usize = out[start + 6..start + len].parse().unwrap_or(0);
            out.replace_range(start..=start + len, &filler(n));
        }
        // `{pad:N}` last, when the rest of the string has its final length:
        // a string of exactly N bytes whatever the run's prefixes expand to
        // (the largest string field holds 65,535 bytes, and `{t}` varies in
        // length). Should the rest already be longer, it adds nothing.
        if let Some(start) = out.find("{pad:")
            && let Some(len) = out[start..].find('}')
        {
            let n: usize = out[start + 5..start + len].parse().unwrap_or(0);
            let rest = out.len() - (len + 1);
            out.replace_range(start..=start + len, &filler(n.saturating_sub(rest)));
        }
        out
    }
}

/// `n` filler letters, a-z repeating.
fn filler(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph() -> Placeholders {
        Placeholders {
            topic: "mqc/r1/s".into(),
            unique: "r1007".into(),
            client_id: "qr1007".into(),
            iteration: 3,
        }
    }

    #[test]
    fn expands_every_placeholder() {
        let t = Template("{t}/{u}/{id}-{n}".into());
        assert_eq!(ph().expand(&t), "mqc/r1/s/r1007/qr1007-3");
    }

    #[test]
    fn fill_expands_to_that_many_letters() {
        let t = Template("x/{fill:30}/y".into());
        let s = ph().expand(&t);
        assert_eq!(s, "x/abcdefghijklmnopqrstuvwxyzabcd/y");
        assert_eq!(ph().expand(&Template("{fill:65535}".into())).len(), 65_535);
    }

    #[test]
    fn pad_makes_the_whole_string_that_long() {
        let s = ph().expand(&Template("{t}/{pad:65535}".into()));
        assert_eq!(s.len(), 65_535);
        assert!(s.starts_with("mqc/r1/s/abc"), "{}", &s[..20]);
        let s = ph().expand(&Template("{id}{pad:12}/{fill:3}".into()));
        assert_eq!(s, "qr1007ab/abc");
        // A rest longer than N is left as it is.
        assert_eq!(ph().expand(&Template("{t}{pad:3}".into())), "mqc/r1/s");
    }

    #[test]
    fn check_refuses_unknown_and_unclosed() {
        assert!(check_template("{t}/{pad:65535}").is_ok());
        assert!(check_template("{pad:65536}").is_err());
        assert!(
            check_template("{pad:5}{pad:6}")
                .unwrap_err()
                .contains("more than one {pad:N}")
        );
        assert!(check_template("{t}/{fill:10}").is_ok());
        assert!(
            check_template("{topic}")
                .unwrap_err()
                .contains("unknown placeholder {topic}")
        );
        assert!(check_template("{fill:70000}").is_err());
        assert!(check_template("{t").unwrap_err().contains("unclosed"));
    }
}
