//! Values that differ between runs, for client ids, probe topics and the
//! names of generated CAs (two CAs with one name confuse trust stores, which
//! look issuers up by name).

/// 16 random hex digits (64 bits from `rand`'s thread-local generator):
/// enough to keep runs apart; not for secrets.
pub fn nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonces_are_sixteen_hex_digits_and_differ() {
        let a = super::nonce();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, super::nonce());
    }
}
