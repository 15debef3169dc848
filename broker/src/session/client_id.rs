//! Client identifier rules for CONNECT (§3.1.3.1).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::mutant;
use mqtt_codec::{ConnectReturnCode, ProtocolLevel};

/// The client identifier a connection will use, or the refusal for it.
///
/// Any well-formed UTF-8 identifier up to 65,535 bytes is accepted (the
/// server MAY allow more than the 23 alphanumerics it MUST allow
/// [MQTT-3.1.3-5] [MQTT-3.1.3-6]). An empty identifier gets a unique one
/// assigned when Clean Session is set [MQTT-3.1.3-6]; otherwise the
/// connection is refused with 0x02 [MQTT-3.1.3-8]. MQTT 3.1 has no
/// assigned identifiers: its client id must hold at least one character,
/// so an empty one is refused with 0x02 whatever Clean Session says (as
/// mosquitto does).
pub fn resolve(
    client_id: &str,
    clean_session: bool,
    protocol: ProtocolLevel,
) -> Result<String, ConnectReturnCode> {
    if mutant::active("client-id-23-refused") && client_id.len() >= 23 {
        return Err(ConnectReturnCode::IdentifierRejected);
    }
    if !client_id.is_empty() {
        return Ok(client_id.to_owned());
    }
    if (!clean_session && !mutant::active("empty-client-id-persistent-accepted"))
        || protocol.base() == ProtocolLevel::V3_1
    {
        return Err(ConnectReturnCode::IdentifierRejected);
    }
    Ok(generate())
}

/// A new identifier no other client of this process has: a per-process
/// random prefix (so identifiers stay unique across restarts sharing a data
/// directory) and a counter.
fn generate() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(rand::random);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("auto-{prefix:08x}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_id_with_clean_session_gets_a_unique_one() {
        let a = resolve("", true, ProtocolLevel::V3_1_1).expect("assigned");
        let b = resolve("", true, ProtocolLevel::V3_1_1).expect("assigned");
        assert!(a.starts_with("auto-"));
        assert_ne!(a, b);
    }

    #[test]
    fn empty_id_without_clean_session_is_rejected() {
        assert_eq!(
            resolve("", false, ProtocolLevel::V3_1_1),
            Err(ConnectReturnCode::IdentifierRejected)
        );
    }

    #[test]
    fn empty_id_is_rejected_in_mqtt_3_1_even_with_clean_session() {
        assert_eq!(
            resolve("", true, ProtocolLevel::V3_1),
            Err(ConnectReturnCode::IdentifierRejected)
        );
    }

    #[test]
    fn long_and_unusual_ids_are_accepted() {
        let long = "x".repeat(1000);
        assert_eq!(
            resolve(&long, false, ProtocolLevel::V3_1_1).as_deref(),
            Ok(long.as_str())
        );
        assert_eq!(
            resolve("a b/ü#+", true, ProtocolLevel::V3_1).as_deref(),
            Ok("a b/ü#+")
        );
    }
}
