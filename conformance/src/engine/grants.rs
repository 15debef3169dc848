//! Judging a SUBACK's return codes against what the SUBSCRIBE asked for and
//! what the scenario needs.
//!
//! The spec lets a server grant a lower maximum QoS than requested, or
//! refuse a subscription with 0x80 [MQTT-3.8.4-6], [MQTT-3.9.3-2]. Neither is
//! a fault, but a scenario about QoS 2 deliveries has nothing to check when
//! only QoS 1 was granted: such a scenario is *not applicable* to that
//! broker. What the server may never do is send a code per filter that does
//! not line up with the request [MQTT-3.9.3-1] or grant more than was asked.

use crate::model::GrantSpec;

/// What a SUBACK's codes mean for the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// Allowed and enough; the (variable, granted QoS) pairs to bind.
    Usable(Vec<(String, u16)>),
    /// The server broke a rule; what it did.
    Violation(String),
    /// Allowed, but less than the scenario needs; what the broker chose.
    NotApplicable(String),
}

/// One filter of the SUBSCRIBE: how to show it, and the QoS byte requested.
#[derive(Debug, Clone)]
pub(crate) struct Requested {
    /// The filter as text for messages.
    pub shown: String,
    /// The requested QoS byte as sent (a malformed 3 is possible).
    pub qos: u8,
}

/// Judges `codes` (the SUBACK's return codes, in order) for `filters`.
pub(crate) fn judge(filters: &[Requested], codes: &[u8], spec: &GrantSpec) -> Judgement {
    if codes.len() != filters.len() {
        return Judgement::Violation(format!(
            "SUBACK carries {} return code(s) for {} filter(s); it must carry one per filter, in order [MQTT-3.9.3-1]",
            codes.len(),
            filters.len()
        ));
    }
    for (f, &code) in filters.iter().zip(codes) {
        if code != 0x80 && code > 2 {
            return Judgement::Violation(format!(
                "return code 0x{code:02x} for {} is reserved [MQTT-3.9.3-2]",
                f.shown
            ));
        }
        if code != 0x80 && f.qos <= 2 && code > f.qos {
            return Judgement::Violation(format!(
                "granted QoS {code} for {} although QoS {} was asked for: a server may grant less, never more [MQTT-3.8.4-6]",
                f.shown, f.qos
            ));
        }
    }
    let mut short = Vec::new();
    for ((f, &code), &need) in filters.iter().zip(codes).zip(&spec.require) {
        if code == 0x80 {
            short.push(format!(
                "broker refused the subscription to {} (SUBACK 0x80)",
                f.shown
            ));
        } else if code < need {
            short.push(format!(
                "broker granted QoS {code} for {} (the scenario needs QoS {need})",
                f.shown
            ));
        }
    }
    if !short.is_empty() {
        return Judgement::NotApplicable(short.join("; "));
    }
    Judgement::Usable(
        spec.capture
            .iter()
            .zip(codes)
            .filter_map(|(var, &code)| var.clone().map(|v| (v, u16::from(code))))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(qos: &[u8]) -> Vec<Requested> {
        qos.iter()
            .enumerate()
            .map(|(i, &q)| Requested {
                shown: format!("\"f{i}\""),
                qos: q,
            })
            .collect()
    }

    fn spec(require: &[u8], capture: &[Option<&str>]) -> GrantSpec {
        GrantSpec {
            require: require.to_vec(),
            capture: capture.iter().map(|c| c.map(str::to_owned)).collect(),
        }
    }

    #[test]
    fn full_grant_is_usable_and_captured() {
        let j = judge(
            &filters(&[2, 1]),
            &[2, 1],
            &spec(&[2, 0], &[None, Some("g")]),
        );
        assert_eq!(j, Judgement::Usable(vec![("g".to_owned(), 1)]));
    }

    #[test]
    fn lower_grant_than_needed_is_not_applicable() {
        let j = judge(&filters(&[2]), &[1], &spec(&[2], &[None]));
        assert_eq!(
            j,
            Judgement::NotApplicable(
                "broker granted QoS 1 for \"f0\" (the scenario needs QoS 2)".to_owned()
            )
        );
    }

    #[test]
    fn lower_grant_that_is_enough_is_usable() {
        let j = judge(&filters(&[2]), &[1], &spec(&[1], &[Some("g")]));
        assert_eq!(j, Judgement::Usable(vec![("g".to_owned(), 1)]));
    }

    #[test]
    fn refusal_of_an_ordinary_filter_is_not_applicable() {
        let j = judge(&filters(&[0]), &[0x80], &spec(&[0], &[Some("g")]));
        assert!(matches!(j, Judgement::NotApplicable(r) if r.contains("SUBACK 0x80")));
    }

    #[test]
    fn grant_above_request_is_a_violation() {
        let j = judge(&filters(&[1]), &[2], &spec(&[0], &[None]));
        assert!(matches!(j, Judgement::Violation(r) if r.contains("MQTT-3.8.4-6")));
    }

    #[test]
    fn codes_out_of_order_are_a_violation_not_a_downgrade() {
        // Asked 2, 0, 1; a SUBACK listing 1, 0, 2 has a grant above the
        // request, so it fails rather than passing as "not applicable".
        let j = judge(&filters(&[2, 0, 1]), &[1, 0, 2], &spec(&[2, 0, 1], &[]));
        assert!(matches!(j, Judgement::Violation(_)));
    }

    #[test]
    fn wrong_number_of_codes_is_a_violation() {
        let j = judge(&filters(&[1, 1]), &[1], &spec(&[1, 1], &[]));
        assert!(matches!(j, Judgement::Violation(r) if r.contains("MQTT-3.9.3-1")));
    }

    #[test]
    fn reserved_code_is_a_violation() {
        let j = judge(&filters(&[2]), &[3], &spec(&[0], &[]));
        assert!(matches!(j, Judgement::Violation(r) if r.contains("MQTT-3.9.3-2")));
    }
}
