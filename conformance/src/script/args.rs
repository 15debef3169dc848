//! Step fields that several actions share, as serde types with their
//! conversion into model types: no fields at all, a packet id, and the
//! matcher fields of the expectations (`expect`, `expect_all`,
//! `expect_nothing`). Each action's own fields live in its module in
//! [`crate::actions`].

use std::time::Duration;

use serde::Deserialize;

use super::error::ScriptError;
use super::qos::QosArg;
use super::template::check_template;
use super::values::{one_bytes, packet_type, template};
use crate::model::{DEFAULT_WITHIN, IdSpec, Location, Matcher, Template};

/// The fields of an action that takes none besides its key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

/// A `packet_id` field: a number, `"$p"` or a placeholder like `"{n}"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum IdArg {
    Num(u16),
    Var(String),
}

impl IdArg {
    pub(crate) fn into_spec(self, loc: &Location) -> Result<IdSpec, ScriptError> {
        match self {
            IdArg::Num(n) => Ok(IdSpec::Literal(n)),
            IdArg::Var(v) => match v.strip_prefix('$') {
                Some(name)
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Ok(IdSpec::Var(name.to_owned()))
                }
                None if v.contains('{') => {
                    check_template(&v).map_err(|m| ScriptError::new(loc.clone(), m))?;
                    Ok(IdSpec::Template(Template(v)))
                }
                _ => Err(ScriptError::new(
                    loc.clone(),
                    format!(
                        "packet_id {v:?} must be a number, a variable like \"$p\", or a placeholder like \"{{n}}\""
                    ),
                )),
            },
        }
    }
}

/// The fields of an expectation: what the packet must carry, and how long
/// to wait or watch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatcherArgs {
    pub(crate) packet: Option<String>,
    pub(crate) code: Option<u8>,
    pub(crate) session_present: Option<bool>,
    pub(crate) topic: Option<String>,
    pub(crate) payload: Option<String>,
    pub(crate) payload_hex: Option<String>,
    pub(crate) payload_size: Option<usize>,
    pub(crate) qos: Option<QosArg>,
    pub(crate) retain: Option<bool>,
    pub(crate) dup: Option<bool>,
    pub(crate) packet_id: Option<IdArg>,
    pub(crate) packet_id_not: Option<Vec<IdArg>>,
    pub(crate) return_codes: Option<Vec<u8>>,
    pub(crate) within_ms: Option<u64>,
    pub(crate) for_ms: Option<u64>,
    #[serde(default)]
    pub(crate) ack: bool,
}

impl MatcherArgs {
    pub(crate) fn forbid(
        &self,
        loc: &Location,
        action: &str,
        fields: &[&str],
    ) -> Result<(), ScriptError> {
        for f in fields {
            let set = match *f {
                "for_ms" => self.for_ms.is_some(),
                "within_ms" => self.within_ms.is_some(),
                "ack" => self.ack,
                _ => false,
            };
            if set {
                return Err(ScriptError::new(
                    loc.clone(),
                    format!("`{f}` does not belong in `{action}`"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn within(&self) -> Duration {
        self.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis)
    }

    pub(crate) fn is_empty_matcher(&self) -> bool {
        self.packet.is_none()
            && self.code.is_none()
            && self.session_present.is_none()
            && self.topic.is_none()
            && self.payload.is_none()
            && self.payload_hex.is_none()
            && self.payload_size.is_none()
            && self.qos.is_none()
            && self.retain.is_none()
            && self.dup.is_none()
            && self.packet_id.is_none()
            && self.packet_id_not.is_none()
            && self.return_codes.is_none()
    }

    pub(crate) fn into_matcher(self, loc: &Location) -> Result<Matcher, ScriptError> {
        let packet = match self.packet.as_deref() {
            None | Some("any") => None,
            Some(p) => Some(packet_type(loc, p)?),
        };
        Ok(Matcher {
            packet,
            code: self.code,
            session_present: self.session_present,
            topic: self.topic.map(|t| template(loc, t)).transpose()?,
            payload: one_bytes(
                loc,
                "payload",
                self.payload,
                self.payload_hex,
                self.payload_size,
            )?,
            qos: self.qos.map(|q| q.into_spec(loc)).transpose()?,
            retain: self.retain,
            dup: self.dup,
            packet_id: self.packet_id.map(|i| i.into_spec(loc)).transpose()?,
            packet_id_not: self
                .packet_id_not
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.into_spec(loc))
                .collect::<Result<_, _>>()?,
            return_codes: self.return_codes,
        })
    }
}
