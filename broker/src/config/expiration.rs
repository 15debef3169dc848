//! `--persistent-client-expiration`: how long a persistent session may wait
//! for its client, written as mosquitto writes `persistent_client_expiration`
//! — a whole number and a unit: `h` hours, `d` days, `w` weeks, `m` months
//! (30 days), `y` years (365 days). `s` (seconds) is accepted too, for tests
//! and short-lived deployments; mosquitto has no unit below an hour.

use std::time::Duration;

/// Parses `1h`, `2d`, `1w`, `6m`, `1y` or `30s` into a duration. The
/// error names the value and what a valid one looks like.
pub fn parse_expiration(text: &str) -> Result<Duration, String> {
    let hint =
        "give a whole number and a unit: s, h, d, w, m (30 days) or y (365 days), e.g. 1h or 2d";
    let trimmed = text.trim();
    let Some(unit) = trimmed.chars().last() else {
        return Err(format!("\"{text}\" is empty: {hint}"));
    };
    let seconds_per: u64 = match unit {
        's' => 1,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'm' => 30 * 86_400,
        'y' => 365 * 86_400,
        _ => return Err(format!("\"{text}\" has no unit: {hint}")),
    };
    let count: u64 = trimmed[..trimmed.len() - 1]
        .parse()
        .map_err(|_| format!("\"{text}\" does not start with a whole number: {hint}"))?;
    if count == 0 {
        return Err(format!(
            "\"{text}\" would expire sessions at once; leave the setting out to keep them forever, or {hint}"
        ));
    }
    count
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long: {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mosquitto_units_and_seconds() {
        let secs = |t| parse_expiration(t).expect("valid").as_secs();
        assert_eq!(secs("1s"), 1);
        assert_eq!(secs("1h"), 3600);
        assert_eq!(secs("2d"), 2 * 86_400);
        assert_eq!(secs("1w"), 7 * 86_400);
        assert_eq!(secs("2m"), 60 * 86_400);
        assert_eq!(secs("1y"), 365 * 86_400);
        assert_eq!(secs(" 3h "), 3 * 3600);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (text, says) in [
            ("", "is empty"),
            ("12", "has no unit"),
            ("1x", "has no unit"),
            ("h", "does not start with a whole number"),
            ("-1h", "does not start with a whole number"),
            ("1.5h", "does not start with a whole number"),
            ("0d", "would expire sessions at once"),
            ("99999999999999999y", "too long"),
            // Quoted as written, not escaped as Rust's Debug would.
            ("1\\d", "\"1\\d\" does not start with a whole number"),
        ] {
            let e = parse_expiration(text).expect_err("invalid");
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.contains("e.g. 1h"), "{text:?}: {e}");
        }
    }
}
