//! Values that differ between runs, for client ids, probe topics and the
//! names of generated CAs (two CAs with one name confuse trust stores, which
//! look issuers up by name).

/// 16 hex digits: the time and process id, hashed with a per-process random
/// key. Unpredictable enough to keep runs apart; not for secrets.
pub fn nonce() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    #[test]
    fn nonces_are_sixteen_hex_digits_and_differ() {
        let a = super::nonce();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, super::nonce());
    }
}
