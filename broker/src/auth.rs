//! Who may connect: the password file in force and the anonymous policy,
//! turned into a CONNACK return code for each CONNECT.
//!
//! The file format itself (mosquitto's `$7$` and `$6$` hashes) lives in
//! [`credentials::password`], shared with `toolkit passwd`.

use std::sync::{Arc, RwLock};

use credentials::password::PasswordFile;
use mqtt_codec::ConnectReturnCode;

/// The connection policy: an optional password file and whether clients
/// without a user name are let in.
///
/// The file's users can be replaced while the broker runs (SIGHUP,
/// [`Self::replace_passwords`]); whether there is a file at all is fixed at
/// start, as in mosquitto, where a reload re-reads the files the
/// configuration names.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// Read once per CONNECT; written only by a reload.
    passwords: Option<RwLock<Arc<PasswordFile>>>,
    allow_anonymous: bool,
}

impl Authenticator {
    /// A policy from a password file (if any) and the anonymous rule.
    pub fn new(passwords: Option<PasswordFile>, allow_anonymous: bool) -> Self {
        Self {
            passwords: passwords.map(|p| RwLock::new(Arc::new(p))),
            allow_anonymous,
        }
    }

    /// Whether user names are checked against a password file, so a user
    /// name that passed [`Self::check`] names who is connecting.
    pub fn verifies_users(&self) -> bool {
        self.passwords.is_some()
    }

    /// Puts a reloaded password file in force for the CONNECTs from now
    /// on. Returns false, changing nothing, when the broker started without
    /// one.
    pub fn replace_passwords(&self, file: PasswordFile) -> bool {
        match &self.passwords {
            Some(lock) => {
                *lock.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(file);
                true
            }
            None => false,
        }
    }

    /// The password file in force now.
    fn passwords(&self) -> Option<Arc<PasswordFile>> {
        let lock = self.passwords.as_ref()?;
        Some(Arc::clone(&lock.read().unwrap_or_else(|p| p.into_inner())))
    }

    /// Decides a CONNECT's credentials.
    ///
    /// - No user name: accepted if anonymous clients are allowed, else 0x05
    ///   (not authorized).
    /// - A user name while a password file is in force: accepted only if the
    ///   file has the user and the password matches, else 0x04 (bad user name
    ///   or password).
    /// - A user name with no password file: accepted as anonymous would be,
    ///   as mosquitto does.
    pub fn check(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<(), ConnectReturnCode> {
        match (username, self.passwords()) {
            (Some(user), Some(file)) => {
                let verified = file.verify(user, password.unwrap_or_default())
                    || crate::mutant::active("password-not-checked");
                if verified && password.is_some() {
                    Ok(())
                } else {
                    Err(ConnectReturnCode::BadUserNameOrPassword)
                }
            }
            _ if self.allow_anonymous => Ok(()),
            _ => Err(ConnectReturnCode::NotAuthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credentials::password::PasswordFile;

    /// Made by `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11).
    const MOSQUITTO_ALICE: &str = "alice:$7$101$bU4GpvqrtTom9o+e$Z7z0sy27bnpqRg8T8VuUMUBkXfQdxTvqXADHhWI8NxftQen5l8Hx3trZaf1IhgDxpmqBheSsq61sI13qdXQD2g==";

    #[test]
    fn policy_codes() {
        let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
        let strict = Authenticator::new(Some(file.clone()), false);
        assert_eq!(strict.check(Some("alice"), Some(b"secret")), Ok(()));
        assert_eq!(
            strict.check(Some("alice"), Some(b"nope")),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
        assert_eq!(
            strict.check(Some("alice"), None),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
        assert_eq!(
            strict.check(None, None),
            Err(ConnectReturnCode::NotAuthorized)
        );
        let lenient = Authenticator::new(Some(file), true);
        assert_eq!(lenient.check(None, None), Ok(()));
        let open = Authenticator::new(None, true);
        assert_eq!(open.check(Some("anyone"), Some(b"x")), Ok(()));
        assert!(!open.replace_passwords(PasswordFile::parse("").expect("empty")));
    }

    /// A reloaded file decides the next CONNECT: a user it drops is
    /// refused from then on.
    #[test]
    fn replaced_passwords_apply_to_the_next_check() {
        let file = PasswordFile::parse(MOSQUITTO_ALICE).expect("parses");
        let auth = Authenticator::new(Some(file), false);
        assert_eq!(auth.check(Some("alice"), Some(b"secret")), Ok(()));
        assert!(auth.replace_passwords(PasswordFile::parse("").expect("empty")));
        assert_eq!(
            auth.check(Some("alice"), Some(b"secret")),
            Err(ConnectReturnCode::BadUserNameOrPassword)
        );
    }
}
