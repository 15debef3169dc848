//! Checking one received packet against a [`Matcher`].

use std::collections::HashMap;

use mqtt_codec::{Packet, PacketType};

use crate::model::{BytesSpec, IdSpec, Matcher, QosSpec};
use crate::script::template::Placeholders;

/// Expands a [`BytesSpec`] into the bytes it stands for.
pub fn bytes_of(spec: &BytesSpec, ph: &Placeholders) -> Vec<u8> {
    match spec {
        BytesSpec::Text(t) => ph.expand(t).into_bytes(),
        BytesSpec::Hex(h) => h.clone(),
        BytesSpec::Filler(n) => (0..*n).map(|i| b'a' + (i % 26) as u8).collect(),
    }
}

/// The matcher as text, with placeholders expanded and variables shown.
pub fn describe(m: &Matcher, ph: &Placeholders, vars: &HashMap<String, u16>) -> String {
    let mut parts = Vec::new();
    if let Some(c) = m.code {
        parts.push(format!("code=0x{c:02x}"));
    }
    if let Some(s) = m.session_present {
        parts.push(format!("session_present={}", u8::from(s)));
    }
    if let Some(t) = &m.topic {
        parts.push(format!("topic={:?}", ph.expand(t)));
    }
    match &m.qos {
        Some(QosSpec::Literal(q)) => parts.push(format!("qos={q}")),
        Some(QosSpec::Var(v)) => match vars.get(v) {
            Some(g) => parts.push(format!("qos=${v}={g}")),
            None => parts.push(format!("qos=${v} (not captured)")),
        },
        Some(QosSpec::MinOf(n, v)) => match vars.get(v) {
            Some(g) => parts.push(format!("qos=min({n}, ${v}={g})={}", u16::from(*n).min(*g))),
            None => parts.push(format!("qos=min({n}, ${v} (not captured))")),
        },
        None => {}
    }
    if let Some(r) = m.retain {
        parts.push(format!("retain={}", u8::from(r)));
    }
    if let Some(d) = m.dup {
        parts.push(format!("dup={}", u8::from(d)));
    }
    match &m.packet_id {
        Some(IdSpec::Literal(n)) => parts.push(format!("id={n}")),
        Some(IdSpec::Template(t)) => parts.push(format!("id={}", ph.expand(t))),
        Some(IdSpec::Var(v)) => match vars.get(v) {
            Some(n) => parts.push(format!("id=${v}={n}")),
            None => parts.push(format!("id=any (captured as ${v})")),
        },
        None => {}
    }
    for spec in &m.packet_id_not {
        match spec {
            IdSpec::Literal(n) => parts.push(format!("id!={n}")),
            IdSpec::Template(t) => parts.push(format!("id!={}", ph.expand(t))),
            IdSpec::Var(v) => parts.push(format!(
                "id!=${v}{}",
                vars.get(v).map(|n| format!("={n}")).unwrap_or_default()
            )),
        }
    }
    if let Some(p) = &m.payload {
        parts.push(format!(
            "payload={}",
            crate::describe::bytes(&bytes_of(p, ph))
        ));
    }
    if let Some(rc) = &m.return_codes {
        parts.push(format!("codes=[{}]", crate::describe::return_codes(rc)));
    }
    let name = m.packet.map_or("any packet", PacketType::name);
    if parts.is_empty() {
        name.to_owned()
    } else {
        format!("{name}({})", parts.join(", "))
    }
}

/// The QoS `spec` stands for, given the grants captured so far.
fn qos_wanted(spec: &QosSpec, vars: &HashMap<String, u16>) -> Result<u8, String> {
    let granted = |v: &String| {
        vars.get(v)
            .map(|g| u8::try_from(*g).unwrap_or(u8::MAX))
            .ok_or_else(|| {
                format!(
                    "qos variable ${v} was not captured by an earlier subscribe step's `grants` (script error)"
                )
            })
    };
    match spec {
        QosSpec::Literal(q) => Ok(*q),
        QosSpec::Var(v) => granted(v),
        QosSpec::MinOf(n, v) => granted(v).map(|g| g.min(*n)),
    }
}

/// Notes a difference when the matcher wants a flag (`name`) to be `want`
/// and the packet's is `is`; flags show as 0 or 1, as on the wire.
fn check_flag(diffs: &mut Vec<String>, name: &str, want: Option<bool>, is: bool) {
    if let Some(w) = want
        && is != w
    {
        diffs.push(format!("{name} is {}, not {}", u8::from(is), u8::from(w)));
    }
}

fn packet_id(p: &Packet) -> Option<u16> {
    match p {
        Packet::Publish(p) => p.packet_id().map(|i| i.get()),
        Packet::PubAck(i)
        | Packet::PubRec(i)
        | Packet::PubRel(i)
        | Packet::PubComp(i)
        | Packet::UnsubAck(i) => Some(i.get()),
        Packet::SubAck(s) => Some(s.packet_id.get()),
        Packet::Subscribe(s) => Some(s.packet_id.get()),
        Packet::Unsubscribe(u) => Some(u.packet_id.get()),
        _ => None,
    }
}

/// Checks `p` against `m`. On success returns the variables the match binds;
/// on failure, every field that differs.
pub fn check(
    m: &Matcher,
    p: &Packet,
    ph: &Placeholders,
    vars: &HashMap<String, u16>,
) -> Result<Vec<(String, u16)>, String> {
    let mut diffs = Vec::new();
    if let Some(t) = m.packet
        && p.packet_type() != t
    {
        return Err(format!("packet type is {}, not {}", p.packet_type(), t));
    }
    if m.code.is_some() || m.session_present.is_some() {
        match p {
            Packet::ConnAck(c) => {
                if let Some(code) = m.code
                    && c.code.as_u8() != code
                {
                    diffs.push(format!(
                        "code is 0x{:02x}, not 0x{code:02x}",
                        c.code.as_u8()
                    ));
                }
                check_flag(
                    &mut diffs,
                    "session_present",
                    m.session_present,
                    c.session_present,
                );
            }
            _ => diffs.push("not a CONNACK".into()),
        }
    }
    if m.topic.is_some()
        || m.qos.is_some()
        || m.retain.is_some()
        || m.dup.is_some()
        || m.payload.is_some()
    {
        match p {
            Packet::Publish(publish) => {
                if let Some(t) = &m.topic {
                    let want = ph.expand(t);
                    if publish.topic().as_str() != want {
                        diffs.push(format!(
                            "topic is {:?}, not {want:?}",
                            publish.topic().as_str()
                        ));
                    }
                }
                if let Some(spec) = &m.qos {
                    match qos_wanted(spec, vars) {
                        Ok(q) if publish.qos().as_u8() != q => {
                            diffs.push(format!("qos is {}, not {q}", publish.qos()));
                        }
                        Ok(_) => {}
                        Err(e) => diffs.push(e),
                    }
                }
                check_flag(&mut diffs, "retain", m.retain, publish.retain());
                check_flag(&mut diffs, "dup", m.dup, publish.dup);
                if let Some(spec) = &m.payload {
                    let want = bytes_of(spec, ph);
                    if publish.payload()[..] != want[..] {
                        diffs.push(format!(
                            "payload is {}, not {}",
                            crate::describe::bytes(publish.payload()),
                            crate::describe::bytes(&want)
                        ));
                    }
                }
            }
            _ => diffs.push("not a PUBLISH".into()),
        }
    }
    if let Some(rc) = &m.return_codes {
        match p {
            Packet::SubAck(s) => {
                let got: Vec<u8> = s.return_codes.iter().map(|c| c.as_u8()).collect();
                if &got != rc {
                    let show = crate::describe::return_codes;
                    diffs.push(format!(
                        "return codes are [{}], not [{}]",
                        show(&got),
                        show(rc)
                    ));
                }
            }
            _ => diffs.push("not a SUBACK".into()),
        }
    }
    let mut bind = Vec::new();
    if let Some(spec) = &m.packet_id {
        let got = packet_id(p);
        let want = match spec {
            IdSpec::Literal(n) => Some(*n),
            IdSpec::Var(v) => vars.get(v).copied(),
            IdSpec::Template(t) => Some(ph.expand(t).parse().unwrap_or(0)),
        };
        match (got, want, spec) {
            (None, _, _) => diffs.push("carries no packet id".into()),
            (Some(g), Some(w), _) if g != w => diffs.push(format!("packet id is {g}, not {w}")),
            (Some(g), None, IdSpec::Var(v)) => bind.push((v.clone(), g)),
            _ => {}
        }
    }
    if !m.packet_id_not.is_empty() {
        let got = packet_id(p);
        for spec in &m.packet_id_not {
            let avoid = match spec {
                IdSpec::Literal(n) => Some(*n),
                IdSpec::Var(v) => vars.get(v).copied(),
                IdSpec::Template(t) => ph.expand(t).parse().ok(),
            };
            if got.is_some() && got == avoid {
                diffs.push(format!(
                    "packet id {} is still in use",
                    got.unwrap_or_default()
                ));
            }
        }
    }
    if diffs.is_empty() {
        Ok(bind)
    } else {
        Err(diffs.join("; "))
    }
}
