//! Certificate fingerprints and colon-separated hex, as `openssl x509`
//! prints them: one definition for the broker's first-run log line and
//! `toolkit certs --info`.

use sha2::{Digest as _, Sha256};

/// The SHA-256 fingerprint of a DER certificate, upper-case hex pairs joined
/// by colons (`openssl x509 -fingerprint -sha256`).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    hex_colons(&Sha256::digest(der), true)
}

/// Bytes as hex pairs joined by colons, upper- or lower-case (openssl prints
/// fingerprints in upper case and serial numbers in lower case).
pub fn hex_colons(bytes: &[u8], upper: bool) -> String {
    let pairs: Vec<String> = bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect();
    pairs.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_colons_in_both_cases() {
        assert_eq!(hex_colons(&[0x0a, 0xff, 0x10], true), "0A:FF:10");
        assert_eq!(hex_colons(&[0x0a, 0xff, 0x10], false), "0a:ff:10");
        assert_eq!(hex_colons(&[], true), "");
    }

    #[test]
    fn fingerprint_of_empty_input_is_the_sha256_of_nothing() {
        assert!(sha256_fingerprint(b"").starts_with("E3:B0:C4:42:98:FC:1C:14"));
    }
}
