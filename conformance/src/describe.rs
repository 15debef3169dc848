//! Packets and bytes as short, exact text for transcripts and reports.

use std::fmt::Write as _;

use mqtt_codec::Packet;

/// Payloads longer than this are shown cut, with their full length.
const PAYLOAD_SHOWN: usize = 48;

/// Bytes as text when they are printable UTF-8, as hex otherwise.
pub fn bytes(b: &[u8]) -> String {
    let shown = &b[..b.len().min(PAYLOAD_SHOWN)];
    let cut = if b.len() > PAYLOAD_SHOWN { "…" } else { "" };
    match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{cut}"),
        _ => format!("0x{}{cut}", hex(shown)),
    }
}

/// Lowercase hex with no separators.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// A packet in one line: type, then its fields.
pub fn packet(p: &Packet) -> String {
    match p {
        Packet::Connect(c) => format!(
            "CONNECT({}client_id={:?}, clean_session={}, keep_alive={}, will={}, username={})",
            // The protocol is shown only when it is not 3.1.1, the default.
            match c.protocol {
                mqtt_codec::ProtocolLevel::V3_1_1 => String::new(),
                p => format!("protocol={}/{}, ", p.name(), p.level()),
            },
            c.client_id,
            c.clean_session,
            c.keep_alive,
            c.will.as_ref().map_or("none".to_owned(), |w| format!(
                "{}:qos{}{}",
                w.topic.as_str(),
                w.qos,
                if w.retain { ":retain" } else { "" }
            )),
            c.username.as_deref().unwrap_or("none")
        ),
        Packet::ConnAck(c) => format!(
            "CONNACK(code=0x{:02x} {}, session_present={})",
            c.code.as_u8(),
            c.code.describe(),
            u8::from(c.session_present)
        ),
        Packet::Publish(p) => format!(
            "PUBLISH(topic={:?}, qos={}, retain={}, dup={}, id={}, payload={} ({} bytes))",
            p.topic().as_str(),
            p.qos(),
            u8::from(p.retain()),
            u8::from(p.dup),
            p.packet_id().map_or("none".to_owned(), |i| i.to_string()),
            bytes(p.payload()),
            p.payload().len()
        ),
        Packet::PubAck(id) => format!("PUBACK(id={id})"),
        Packet::PubRec(id) => format!("PUBREC(id={id})"),
        Packet::PubRel(id) => format!("PUBREL(id={id})"),
        Packet::PubComp(id) => format!("PUBCOMP(id={id})"),
        Packet::Subscribe(s) => format!(
            "SUBSCRIBE(id={}, {})",
            s.packet_id,
            comma_list(&s.filters, |f| format!(
                "{:?}:qos{}",
                f.filter.as_str(),
                f.qos
            ))
        ),
        Packet::SubAck(s) => format!(
            "SUBACK(id={}, codes=[{}])",
            s.packet_id,
            return_codes(&s.return_codes.iter().map(|c| c.as_u8()).collect::<Vec<_>>())
        ),
        Packet::Unsubscribe(u) => format!(
            "UNSUBSCRIBE(id={}, {})",
            u.packet_id,
            comma_list(&u.filters, |f| format!("{:?}", f.as_str()))
        ),
        Packet::UnsubAck(id) => format!("UNSUBACK(id={id})"),
        Packet::PingReq => "PINGREQ".to_owned(),
        Packet::PingResp => "PINGRESP".to_owned(),
        Packet::Disconnect => "DISCONNECT".to_owned(),
    }
}

/// SUBACK return codes as transcripts and mismatches show them: each the
/// granted QoS, or `0x80` for a failure, joined with ", ".
pub fn return_codes(codes: &[u8]) -> String {
    comma_list(codes, |&c| {
        if c == 0x80 {
            "0x80".to_owned()
        } else {
            c.to_string()
        }
    })
}

/// `show` applied to each item, joined with ", ".
fn comma_list<'a, T>(items: &'a [T], show: impl Fn(&'a T) -> String) -> String {
    items.iter().map(show).collect::<Vec<_>>().join(", ")
}

/// A packet the harness is about to send, decoded when it is valid, shown
/// as hex when it is deliberately not.
pub fn sent(b: &[u8]) -> String {
    let shown = hex(&b[..b.len().min(64)]);
    let cut = if b.len() > 64 { "…" } else { "" };
    match mqtt_codec::decode_slice(b) {
        Ok(Some((p, len))) if len == b.len() => packet(&p),
        Ok(Some((p, _))) => format!("raw 0x{shown}{cut} ({} and more bytes)", packet(&p)),
        Ok(None) => format!("raw 0x{shown}{cut} (an incomplete packet)"),
        Err(e) => format!("raw 0x{shown}{cut} ({e})"),
    }
}
