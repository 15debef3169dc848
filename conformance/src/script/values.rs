//! Values inside step fields: text with placeholders, hex bytes, and
//! packet type names.

use mqtt_codec::PacketType;

use super::error::ScriptError;
use super::template::check_template;
use crate::model::{BytesSpec, Location, Template};

pub(crate) fn text(loc: &Location, s: String) -> Result<BytesSpec, ScriptError> {
    check_template(&s).map_err(|m| ScriptError::new(loc.clone(), m))?;
    Ok(BytesSpec::Text(Template(s)))
}

pub(crate) fn template(loc: &Location, s: String) -> Result<Template, ScriptError> {
    check_template(&s).map_err(|m| ScriptError::new(loc.clone(), m))?;
    Ok(Template(s))
}

/// Parses hex digits, ignoring whitespace, `_` and `:` between them.
pub(crate) fn hex(loc: &Location, s: &str) -> Result<Vec<u8>, ScriptError> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'_' && *b != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(ScriptError::new(
            loc.clone(),
            format!("hex {s:?} has an odd number of digits"),
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| ScriptError::new(loc.clone(), format!("{s:?} is not hex")))
        })
        .collect()
}

pub(crate) fn one_bytes(
    loc: &Location,
    field: &str,
    text_value: Option<String>,
    hex_value: Option<String>,
    size: Option<usize>,
) -> Result<Option<BytesSpec>, ScriptError> {
    match (text_value, hex_value, size) {
        (None, None, None) => Ok(None),
        (Some(t), None, None) => text(loc, t).map(Some),
        (None, Some(h), None) => Ok(Some(BytesSpec::Hex(hex(loc, &h)?))),
        (None, None, Some(n)) => Ok(Some(BytesSpec::Filler(n))),
        _ => Err(ScriptError::new(
            loc.clone(),
            format!(
                "give only one of `{field}`, `{field}_hex`{}",
                if field == "payload" {
                    ", `payload_size`"
                } else {
                    ""
                }
            ),
        )),
    }
}

pub(crate) fn packet_type(loc: &Location, name: &str) -> Result<PacketType, ScriptError> {
    (1..=14)
        .filter_map(PacketType::from_nibble)
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ScriptError::new(
                loc.clone(),
                format!(
                    "unknown packet type {name:?}; use connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, unsubscribe, unsuback, pingreq, pingresp or disconnect"
                ),
            )
        })
}
