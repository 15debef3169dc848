//! The QoS values of a script that depend on what the broker granted: a
//! `subscribe` step's `require` and `grants`, and an expectation's
//! `qos = "$g"` or `qos = "min(1, $g)"`.
//!
//! A server may grant less than asked [MQTT-3.8.4-6]; scripts say the least
//! they can work with, capture what was granted, and expect deliveries at
//! the minimum of the published and the granted QoS.

use serde::Deserialize;

use super::error::ScriptError;
use crate::model::{GrantSpec, Location, QosSpec};

/// `qos` in an expectation: a number, `"$g"` or `"min(N, $g)"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum QosArg {
    Num(u8),
    Text(String),
}

fn var_name(s: &str) -> Option<String> {
    let name = s.trim().strip_prefix('$')?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_owned())
}

impl QosArg {
    pub(crate) fn into_spec(self, loc: &Location) -> Result<QosSpec, ScriptError> {
        let bad = |v: &str| {
            ScriptError::new(
                loc.clone(),
                format!(
                    "qos {v:?} must be 0, 1 or 2, a captured grant like \"$g\", or \"min(N, $g)\" (the QoS of a delivery published at N)"
                ),
            )
        };
        match self {
            QosArg::Num(n) if n <= 2 => Ok(QosSpec::Literal(n)),
            QosArg::Num(n) => Err(bad(&n.to_string())),
            QosArg::Text(t) => {
                if let Some(v) = var_name(&t) {
                    return Ok(QosSpec::Var(v));
                }
                let inner = t
                    .trim()
                    .strip_prefix("min(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad(&t))?;
                let (n, v) = inner.split_once(',').ok_or_else(|| bad(&t))?;
                let n: u8 = n.trim().parse().map_err(|_| bad(&t))?;
                match (n <= 2, var_name(v)) {
                    (true, Some(v)) => Ok(QosSpec::MinOf(n, v)),
                    _ => Err(bad(&t)),
                }
            }
        }
    }
}

/// The grant check of a `subscribe` step with `requested` QoS bytes, from
/// its `require` and `grants` fields; `None` when it has neither (no SUBACK
/// is awaited).
pub(crate) fn grant_spec(
    loc: &Location,
    requested: &[u8],
    require: Option<Vec<u8>>,
    grants: Option<Vec<String>>,
) -> Result<Option<GrantSpec>, ScriptError> {
    if require.is_none() && grants.is_none() {
        return Ok(None);
    }
    let n = requested.len();
    let require = require.unwrap_or_else(|| vec![0; n]);
    if require.len() != n {
        return Err(ScriptError::new(
            loc.clone(),
            format!(
                "`require` has {} entries for {n} filter(s); give the lowest QoS the scenario needs for each filter",
                require.len()
            ),
        ));
    }
    for (need, asked) in require.iter().zip(requested) {
        if need > asked || *need > 2 {
            return Err(ScriptError::new(
                loc.clone(),
                format!(
                    "`require` {need} can never be met for a filter subscribed at QoS {asked}: a server grants at most what is asked"
                ),
            ));
        }
    }
    let capture = match grants {
        None => vec![None; n],
        Some(list) if list.len() == n => list
            .iter()
            .map(|g| {
                var_name(g).map(Some).ok_or_else(|| {
                    ScriptError::new(
                        loc.clone(),
                        format!(
                            "`grants` entry {g:?} must be a variable like \"$g\" that captures the granted QoS"
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(list) => {
            return Err(ScriptError::new(
                loc.clone(),
                format!(
                    "`grants` has {} entries for {n} filter(s); give one variable per filter",
                    list.len()
                ),
            ));
        }
    };
    Ok(Some(GrantSpec { require, capture }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> Location {
        Location {
            file: "t.toml".into(),
            line: 1,
        }
    }

    #[test]
    fn qos_forms() {
        let q = |a| QosArg::into_spec(a, &loc());
        assert_eq!(q(QosArg::Num(1)).unwrap(), QosSpec::Literal(1));
        assert_eq!(
            q(QosArg::Text("$g".into())).unwrap(),
            QosSpec::Var("g".into())
        );
        assert_eq!(
            q(QosArg::Text("min(2, $g1)".into())).unwrap(),
            QosSpec::MinOf(2, "g1".into())
        );
        assert_eq!(
            q(QosArg::Text(" min( 1 ,$g ) ".into())).unwrap(),
            QosSpec::MinOf(1, "g".into())
        );
        for bad in [
            "g",
            "$",
            "min(3, $g)",
            "min(1 $g)",
            "max(1, $g)",
            "min(1, g)",
        ] {
            assert!(q(QosArg::Text(bad.into())).is_err(), "{bad}");
        }
        assert!(q(QosArg::Num(3)).is_err());
    }

    #[test]
    fn grants_default_to_any_grant() {
        let g = grant_spec(&loc(), &[2, 1], None, Some(vec!["$a".into(), "$b".into()]))
            .unwrap()
            .unwrap();
        assert_eq!(g.require, vec![0, 0]);
        assert_eq!(g.capture, vec![Some("a".into()), Some("b".into())]);
        assert_eq!(grant_spec(&loc(), &[2], None, None).unwrap(), None);
    }

    #[test]
    fn impossible_or_misshapen_requirements_are_refused() {
        let e = grant_spec(&loc(), &[1], Some(vec![2]), None).unwrap_err();
        assert!(e.message.contains("can never be met"), "{e}");
        assert!(grant_spec(&loc(), &[1, 1], Some(vec![1]), None).is_err());
        assert!(grant_spec(&loc(), &[1], None, Some(vec!["g".into()])).is_err());
        assert!(grant_spec(&loc(), &[1], None, Some(vec![])).is_err());
    }
}
