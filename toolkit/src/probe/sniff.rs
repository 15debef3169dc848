//! What answers on a plain port where the MQTT connection failed. The MQTT
//! client only says its decoder gave up ("bytes remaining on stream"); a
//! second, raw CONNECT shows what the server actually sent back, so a web
//! server or a TLS listener is named as such, with the fix.

use mqtt_codec::{Connect, Packet};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Target, TlsSwitch};
use crate::exit::{Failure, Status};

/// The reason to give instead of the MQTT client's, when what answers a raw
/// CONNECT on `target` is plainly not an MQTT broker; `None` when it
/// answers with a CONNACK, says nothing, or cannot be reached (the first
/// reason stands). Bounded by the target's timeout.
pub(super) async fn not_mqtt(target: &Target) -> Option<Failure> {
    let addr = target.addr();
    let attempt = async {
        let mut tcp = TcpStream::connect(&addr).await.ok()?;
        let connect = Packet::Connect(Connect {
            clean_session: true,
            keep_alive: 30,
            client_id: target.client_id.clone(),
            ..Connect::default()
        });
        tcp.write_all(&connect.to_bytes().ok()?).await.ok()?;
        let mut answer = vec![0; 128];
        let n = tcp.read(&mut answer).await.ok()?;
        answer.truncate(n);
        Some(answer)
    };
    let answer = tokio::time::timeout(target.timeout, attempt).await.ok()??;
    classify_answer(&answer, &addr, target.switch)
}

/// Names what `answer` (the first bytes back after a CONNECT) comes from.
fn classify_answer(answer: &[u8], addr: &str, switch: TlsSwitch) -> Option<Failure> {
    const CONNACK: u8 = 0x20;
    match answer {
        [] | [CONNACK, ..] => None,
        http if http.starts_with(b"HTTP/") => {
            let line = String::from_utf8_lossy(http);
            let line = line.lines().next().unwrap_or_default();
            Some(Failure::new(
                Status::Connect,
                format!(
                    "{addr} is not an MQTT broker: it answered CONNECT like a web server ({line:?}); check --host and --port (MQTT is usually 1883, TLS 8883)"
                ),
            ))
        }
        // A TLS record: alert (21) or handshake (22), version 3.x.
        [0x15 | 0x16, 0x03, ..] => Some(Failure::new(
            Status::Closed,
            format!(
                "{addr} answered CONNECT with TLS: it is a TLS listener; {}",
                switch.add()
            ),
        )),
        other => {
            let head: Vec<String> = other.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Some(Failure::new(
                Status::Connect,
                format!(
                    "{addr} is not an MQTT broker: it answered CONNECT with bytes that are not a CONNACK ({}); check --host and --port (MQTT is usually 1883, TLS 8883)",
                    head.join(" ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_web_server_is_named_with_its_status_line() {
        let f = classify_answer(
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n",
            "h:1",
            TlsSwitch::Tls,
        )
        .unwrap();
        assert_eq!(f.status, Status::Connect);
        let text = f.to_string();
        assert!(text.contains("not an MQTT broker"), "{text}");
        assert!(text.contains("\"HTTP/1.1 400 Bad Request\""), "{text}");
        assert!(text.contains("--port"), "{text}");
    }

    #[test]
    fn a_tls_record_means_add_tls() {
        let f = classify_answer(
            &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32],
            "h:1",
            TlsSwitch::Tls,
        )
        .unwrap();
        assert_eq!(f.status, Status::Closed);
        assert!(f.to_string().contains("add --tls"), "{f}");
        let f = classify_answer(&[0x16, 0x03, 0x01], "h:1", TlsSwitch::TlsPort).unwrap();
        assert!(f.to_string().contains("--tls-port PORT"), "{f}");
    }

    #[test]
    fn a_connack_or_silence_keeps_the_first_reason() {
        assert!(classify_answer(&[0x20, 0x02, 0x00, 0x05], "h:1", TlsSwitch::Tls).is_none());
        assert!(classify_answer(&[], "h:1", TlsSwitch::Tls).is_none());
    }

    #[test]
    fn other_bytes_are_shown_in_hex() {
        let f = classify_answer(b"SSH-2.0-OpenSSH_9.2", "h:1", TlsSwitch::Tls).unwrap();
        assert!(f.to_string().contains("(53 53 48 2d 32 2e 30 2d)"), "{f}");
    }
}
