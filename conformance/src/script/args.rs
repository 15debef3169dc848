//! The fields of each step action as serde structs (`deny_unknown_fields`,
//! so a misspelt field is an error), and their conversion into model types.

use std::time::Duration;

use serde::Deserialize;

use super::ScriptError;
use super::qos::QosArg;
use super::template::check_template;
use super::values::{one_bytes, packet_type, template};
use crate::model::{
    BytesSpec, ConnectSpec, DEFAULT_WITHIN, IdSpec, Location, Matcher, Template, WillSpec,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenArgs {
    #[serde(default)]
    pub(super) tls: bool,
    pub(super) client_cert: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectClosedArgs {
    pub(super) within_ms: Option<u64>,
    #[serde(default)]
    pub(super) tls_refused: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchArgs {
    pub(super) chunk: Option<usize>,
    pub(super) pause_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisconnectArgs {
    pub(super) close: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum IdArg {
    Num(u16),
    Var(String),
}

impl IdArg {
    pub(super) fn into_spec(self, loc: &Location) -> Result<IdSpec, ScriptError> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WillArgs {
    pub(super) topic: Option<String>,
    pub(super) topic_hex: Option<String>,
    pub(super) payload: Option<String>,
    pub(super) payload_hex: Option<String>,
    #[serde(default)]
    pub(super) qos: u8,
    #[serde(default)]
    pub(super) retain: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectArgs {
    #[serde(default)]
    pub(super) tls: bool,
    pub(super) client_cert: Option<bool>,
    pub(super) protocol_name: Option<String>,
    pub(super) protocol_name_hex: Option<String>,
    pub(super) protocol_level: Option<u8>,
    pub(super) flags: Option<u8>,
    pub(super) clean_session: Option<bool>,
    pub(super) keep_alive: Option<u16>,
    pub(super) client_id: Option<String>,
    pub(super) client_id_hex: Option<String>,
    #[serde(default)]
    pub(super) no_client_id: bool,
    pub(super) will: Option<WillArgs>,
    pub(super) username: Option<String>,
    pub(super) username_hex: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_hex: Option<String>,
    pub(super) credentials: Option<bool>,
    pub(super) connack: Option<u8>,
    pub(super) session_present: Option<bool>,
    #[serde(default)]
    pub(super) refusal_not_applicable: bool,
}

impl ConnectArgs {
    pub(super) fn into_spec(
        self,
        loc: &Location,
        client: &str,
    ) -> Result<ConnectSpec, ScriptError> {
        let client_id = if self.no_client_id {
            if self.client_id.is_some() || self.client_id_hex.is_some() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`no_client_id` leaves the field out; drop `client_id`",
                ));
            }
            None
        } else {
            Some(
                one_bytes(loc, "client_id", self.client_id, self.client_id_hex, None)?
                    .unwrap_or_else(|| BytesSpec::Text(Template(format!("{{id}}{client}")))),
            )
        };
        let will = self
            .will
            .map(|w| -> Result<WillSpec, ScriptError> {
                Ok(WillSpec {
                    topic: one_bytes(loc, "topic", w.topic, w.topic_hex, None)?.ok_or_else(
                        || ScriptError::new(loc.clone(), "`will` needs `topic` or `topic_hex`"),
                    )?,
                    payload: one_bytes(loc, "payload", w.payload, w.payload_hex, None)?
                        .unwrap_or(BytesSpec::Hex(Vec::new())),
                    qos: w.qos,
                    retain: w.retain,
                })
            })
            .transpose()?;
        if self.refusal_not_applicable && self.connack != Some(0) {
            return Err(ScriptError::new(
                loc.clone(),
                "`refusal_not_applicable` goes with `connack = 0`",
            ));
        }
        if self.session_present.is_some() && self.connack.is_none() {
            return Err(ScriptError::new(
                loc.clone(),
                "`session_present` goes with `connack = CODE`",
            ));
        }
        let username = one_bytes(loc, "username", self.username, self.username_hex, None)?;
        let password = one_bytes(loc, "password", self.password, self.password_hex, None)?;
        Ok(ConnectSpec {
            tls: self.tls,
            client_cert: self.client_cert.unwrap_or(true),
            protocol_name: one_bytes(
                loc,
                "protocol_name",
                self.protocol_name,
                self.protocol_name_hex,
                None,
            )?
            .unwrap_or(BytesSpec::Hex(b"MQTT".to_vec())),
            protocol_level: self.protocol_level.unwrap_or(4),
            flags: self.flags,
            clean_session: self.clean_session.unwrap_or(true),
            keep_alive: self.keep_alive.unwrap_or(60),
            client_id,
            will,
            credentials: self.credentials.unwrap_or(true),
            username,
            password,
            connack: self.connack,
            session_present: self.session_present,
            refusal_not_applicable: self.refusal_not_applicable,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscribeArgs {
    pub(super) filter: Option<String>,
    pub(super) filter_hex: Option<String>,
    pub(super) qos: Option<u8>,
    pub(super) filters: Option<Vec<(String, u8)>>,
    pub(super) packet_id: Option<IdArg>,
    pub(super) flags: Option<u8>,
    /// The old exact check, refused with a message saying what replaced it.
    pub(super) granted: Option<toml::Value>,
    pub(super) require: Option<Vec<u8>>,
    pub(super) grants: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnsubscribeArgs {
    pub(super) filter: Option<String>,
    pub(super) filter_hex: Option<String>,
    pub(super) filters: Option<Vec<String>>,
    pub(super) packet_id: Option<IdArg>,
    pub(super) flags: Option<u8>,
    #[serde(default)]
    pub(super) ack: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishArgs {
    pub(super) topic: Option<String>,
    pub(super) topic_hex: Option<String>,
    pub(super) payload: Option<String>,
    pub(super) payload_hex: Option<String>,
    pub(super) payload_size: Option<usize>,
    #[serde(default)]
    pub(super) qos: u8,
    #[serde(default)]
    pub(super) retain: bool,
    #[serde(default)]
    pub(super) dup: bool,
    pub(super) packet_id: Option<IdArg>,
    pub(super) flags: Option<u8>,
    #[serde(default)]
    pub(super) ack: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendArgs {
    pub(super) hex: Option<String>,
    pub(super) packet: Option<String>,
    pub(super) packet_id: Option<IdArg>,
    pub(super) flags: Option<u8>,
    pub(super) body_hex: Option<String>,
    pub(super) remaining_length: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectAllArgs {
    pub(super) packets: Vec<MatcherArgs>,
    pub(super) within_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MatcherArgs {
    pub(super) packet: Option<String>,
    pub(super) code: Option<u8>,
    pub(super) session_present: Option<bool>,
    pub(super) topic: Option<String>,
    pub(super) payload: Option<String>,
    pub(super) payload_hex: Option<String>,
    pub(super) payload_size: Option<usize>,
    pub(super) qos: Option<QosArg>,
    pub(super) retain: Option<bool>,
    pub(super) dup: Option<bool>,
    pub(super) packet_id: Option<IdArg>,
    pub(super) packet_id_not: Option<Vec<IdArg>>,
    pub(super) return_codes: Option<Vec<u8>>,
    pub(super) within_ms: Option<u64>,
    pub(super) for_ms: Option<u64>,
    #[serde(default)]
    pub(super) ack: bool,
}

impl MatcherArgs {
    pub(super) fn forbid(
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

    pub(super) fn within(&self) -> Duration {
        self.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis)
    }

    pub(super) fn is_empty_matcher(&self) -> bool {
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

    pub(super) fn into_matcher(self, loc: &Location) -> Result<Matcher, ScriptError> {
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
