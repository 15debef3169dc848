//! How `toolkit sub` prints a message: the payload alone (mosquitto_sub's
//! default), `-v` (topic, space, payload), a `-F` template in mosquitto_sub's
//! spelling, or JSON (`-F json`, `--json`, or `%j` inside a template).
//!
//! A template is parsed once, when the flags are read, so a mistake in it
//! is a usage error before anything connects.
//!
//! Supported, as in mosquitto_sub(1): `%%` `%t` topic, `%p` payload bytes,
//! `%q` QoS, `%r` retain flag (0 or 1), `%m` packet id, `%l` payload length,
//! `%x`/`%X` payload in lower/upper-case hex, `%I` ISO-8601 time, `%U` Unix
//! time with nanoseconds, `%j` JSON with the payload as a string, `%J` JSON
//! with the payload as JSON; escapes `\n` `\t` `\r` `\\` `\0` `\e` `\a`.
//! Field widths and `@` strftime sequences are not supported: they are
//! refused, not printed literally.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exit::usage;
use crate::probe::qos_digit;
use crate::probe::session::Message;

/// One piece of a `-F` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Bytes printed as they are.
    Literal(Vec<u8>),
    /// `%t`.
    Topic,
    /// `%p`.
    Payload,
    /// `%q`.
    Qos,
    /// `%r`.
    Retain,
    /// `%m`.
    PacketId,
    /// `%l`.
    Length,
    /// `%x`, `%X` (upper case when true).
    Hex(bool),
    /// `%I`.
    IsoTime,
    /// `%U`.
    UnixTime,
    /// `%j` (false) or `%J` (true: the payload must be JSON itself).
    Json(bool),
}

/// How each message is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
    /// End each message with a newline (not with `-N`).
    newline: bool,
}

impl Format {
    /// The format the flags ask for: `template` (`-F`; `json` means `%j`),
    /// else `-v` (`verbose`) or the payload alone; a newline after each
    /// message unless `no_newline` (`-N`).
    pub fn new(template: Option<&str>, verbose: bool, no_newline: bool) -> anyhow::Result<Self> {
        let pieces = match template {
            Some("json") => vec![Piece::Json(false)],
            Some(text) => parse(text)?,
            None if verbose => vec![Piece::Topic, Piece::Literal(b" ".to_vec()), Piece::Payload],
            None => vec![Piece::Payload],
        };
        Ok(Self {
            pieces,
            newline: !no_newline,
        })
    }

    /// `message`, received at `at`, as the bytes to print. A `%J` whose
    /// payload is not JSON is an error naming the topic (mosquitto_sub
    /// also refuses it).
    pub fn render(&self, message: &Message, at: OffsetDateTime) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.extend_from_slice(bytes),
                Piece::Topic => out.extend_from_slice(message.topic.as_bytes()),
                Piece::Payload => out.extend_from_slice(&message.payload),
                Piece::Qos => push(&mut out, qos_digit(message.qos)),
                Piece::Retain => push(&mut out, u8::from(message.retain)),
                Piece::PacketId => push(&mut out, message.packet_id),
                Piece::Length => push(&mut out, message.payload.len()),
                Piece::Hex(upper) => {
                    let mut hex = String::with_capacity(message.payload.len() * 2);
                    for b in &message.payload {
                        let _ = if *upper {
                            write!(hex, "{b:02X}")
                        } else {
                            write!(hex, "{b:02x}")
                        };
                    }
                    out.extend_from_slice(hex.as_bytes());
                }
                Piece::IsoTime => out.extend_from_slice(iso_time(at).as_bytes()),
                Piece::UnixTime => {
                    let nanos = at.unix_timestamp_nanos();
                    let text = format!(
                        "{}.{:09}",
                        nanos.div_euclid(1_000_000_000),
                        nanos.rem_euclid(1_000_000_000)
                    );
                    out.extend_from_slice(text.as_bytes());
                }
                Piece::Json(raw) => out.extend_from_slice(json(message, at, *raw)?.as_bytes()),
            }
        }
        if self.newline {
            out.push(b'\n');
        }
        Ok(out)
    }
}

fn push(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    out.extend_from_slice(value.to_string().as_bytes());
}

/// `at` as RFC 3339 (an ISO-8601 profile), in UTC.
fn iso_time(at: OffsetDateTime) -> String {
    at.replace_nanosecond(at.microsecond() * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// mosquitto_sub's `%j`/`%J` object, its keys in mosquitto's order:
/// `tst`, `topic`, `qos`, `retain`, `payloadlen`, then the payload. A
/// payload that is not UTF-8 cannot be a JSON string; it is given as
/// `payload_hex` instead of being altered.
fn json(message: &Message, at: OffsetDateTime, raw: bool) -> anyhow::Result<String> {
    let string = |text: &str| serde_json::Value::from(text).to_string();
    let payload = if raw {
        let value: serde_json::Value = serde_json::from_slice(&message.payload).map_err(|e| {
            anyhow::anyhow!(
                "the payload on {:?} is not JSON ({e}), which %J needs: use %j",
                message.topic
            )
        })?;
        format!("\"payload\":{value}")
    } else {
        match std::str::from_utf8(&message.payload) {
            Ok(text) => format!("\"payload\":{}", string(text)),
            Err(_) => {
                let mut hex = String::with_capacity(message.payload.len() * 2);
                for b in &message.payload {
                    let _ = write!(hex, "{b:02x}");
                }
                format!("\"payload_hex\":\"{hex}\"")
            }
        }
    };
    Ok(format!(
        "{{\"tst\":{},\"topic\":{},\"qos\":{},\"retain\":{},\"payloadlen\":{},{payload}}}",
        string(&iso_time(at)),
        string(&message.topic),
        qos_digit(message.qos),
        u8::from(message.retain),
        message.payload.len(),
    ))
}

/// A `-F` template as pieces; an unknown `%` or `\` sequence is a usage
/// error naming it.
fn parse(text: &str) -> anyhow::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('%') => {
                    literal.push(b'%');
                    continue;
                }
                Some('t') => Piece::Topic,
                Some('p') => Piece::Payload,
                Some('q') => Piece::Qos,
                Some('r') => Piece::Retain,
                Some('m') => Piece::PacketId,
                Some('l') => Piece::Length,
                Some('x') => Piece::Hex(false),
                Some('X') => Piece::Hex(true),
                Some('I') => Piece::IsoTime,
                Some('U') => Piece::UnixTime,
                Some('j') => Piece::Json(false),
                Some('J') => Piece::Json(true),
                Some(other) => {
                    return Err(usage(format!(
                        "-F: %{other} is not a format sequence toolkit knows; use %t %p %q %r %m %l %x %X %I %U %j %J or %%"
                    )));
                }
                None => return Err(usage("-F: the format ends with a lone %; write %% for a %")),
            },
            '\\' => {
                let byte = match chars.next() {
                    Some('n') => b'\n',
                    Some('t') => b'\t',
                    Some('r') => b'\r',
                    Some('\\') => b'\\',
                    Some('0') => 0,
                    Some('e') => 0x1b,
                    Some('a') => 0x07,
                    Some(other) => {
                        return Err(usage(format!(
                            "-F: \\{other} is not an escape toolkit knows; use \\n \\t \\r \\\\ \\0 \\e \\a"
                        )));
                    }
                    None => return Err(usage("-F: the format ends with a lone \\; write \\\\")),
                };
                literal.push(byte);
                continue;
            }
            '@' => {
                return Err(usage(
                    "-F: @ time sequences (strftime) are not supported; use %I or %U for the time",
                ));
            }
            other => {
                let mut buf = [0; 4];
                literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(piece);
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::QoS;
    use std::time::Instant;

    fn message(payload: &[u8]) -> Message {
        Message {
            topic: "a/b".into(),
            payload: payload.to_vec(),
            qos: QoS::AtLeastOnce,
            retain: true,
            packet_id: 7,
            at: Instant::now(),
        }
    }

    fn at() -> OffsetDateTime {
        // 2020-05-06T21:12:00.123456789Z
        OffsetDateTime::from_unix_timestamp_nanos(1_588_799_520_123_456_789).unwrap()
    }

    fn render(template: Option<&str>, verbose: bool, payload: &[u8]) -> String {
        let f = Format::new(template, verbose, false).unwrap();
        String::from_utf8(f.render(&message(payload), at()).unwrap()).unwrap()
    }

    #[test]
    fn default_is_the_payload_and_verbose_adds_the_topic() {
        assert_eq!(render(None, false, b"hi"), "hi\n");
        assert_eq!(render(None, true, b"hi"), "a/b hi\n");
        let f = Format::new(None, false, true).unwrap();
        assert_eq!(f.render(&message(b"hi"), at()).unwrap(), b"hi");
    }

    #[test]
    fn every_sequence_prints_its_field() {
        assert_eq!(
            render(Some("%t|%p|%q|%r|%m|%l|%x|%X|%%"), false, b"z\x1a"),
            "a/b|z\u{1a}|1|1|7|2|7a1a|7A1A|%\n"
        );
        assert_eq!(
            render(Some("%I"), false, b""),
            "2020-05-06T21:12:00.123456Z\n"
        );
        assert_eq!(render(Some("%U"), false, b""), "1588799520.123456789\n");
        assert_eq!(render(Some("a\\tb\\\\c\\n"), false, b""), "a\tb\\c\n\n");
    }

    #[test]
    fn json_is_mosquittos_object() {
        let line = render(Some("json"), false, b"hello \"world\"");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["tst"], "2020-05-06T21:12:00.123456Z");
        assert_eq!(v["topic"], "a/b");
        assert_eq!(
            (v["qos"].as_u64(), v["retain"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(v["payload"], "hello \"world\"");
        assert_eq!(v["payloadlen"], 13);
        assert!(
            line.starts_with("{\"tst\":"),
            "mosquitto's key order: {line}"
        );
        let short = render(Some("%j"), false, b"x");
        let v: serde_json::Value = serde_json::from_str(short.trim_end()).unwrap();
        assert_eq!(
            (v["payload"].as_str(), v["payloadlen"].as_u64()),
            (Some("x"), Some(1))
        );
        let binary = render(Some("%j"), false, b"\xff\x00");
        let v: serde_json::Value = serde_json::from_str(binary.trim_end()).unwrap();
        assert_eq!(v["payload_hex"], "ff00");
        assert!(v.get("payload").is_none());
    }

    #[test]
    fn upper_j_embeds_a_json_payload_and_refuses_another() {
        let line = render(Some("%J"), false, br#"{"t":27.5}"#);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["payload"]["t"], 27.5);
        let f = Format::new(Some("%J"), false, false).unwrap();
        let err = f.render(&message(b"not json"), at()).unwrap_err();
        assert!(err.to_string().contains("\"a/b\" is not JSON"), "{err}");
    }

    #[test]
    fn unknown_sequences_are_usage_errors() {
        for bad in ["%z", "%", "\\q", "\\", "@H", "%10t"] {
            let err = Format::new(Some(bad), false, false).unwrap_err();
            assert_eq!(
                crate::exit::status_of(&err),
                crate::exit::Status::Usage,
                "{bad}"
            );
        }
    }
}
