//! One directive's value read as mosquitto reads it (a port, `true` or
//! `false`, a number, a path taking the rest of the line, an address), or
//! an error naming the directive, the value and the line.

use super::{Origin, at};
use crate::config::ConfigError;

/// A count as the TOML table holds it (TOML integers are signed 64-bit).
pub(super) fn int_value(n: u64, origin: &Origin) -> Result<i64, ConfigError> {
    i64::try_from(n).map_err(|_| at(origin, format!("{n} is too large")))
}

/// One directive's value, with what it needs to name itself in an error.
#[derive(Clone, Copy)]
pub(super) struct Arg<'a> {
    pub(super) name: &'a str,
    pub(super) value: &'a str,
    pub(super) origin: &'a Origin,
}

impl Arg<'_> {
    fn wrong(&self, what: &str) -> ConfigError {
        at(
            self.origin,
            format!("{} \"{}\" is not {what}", self.name, self.value),
        )
    }

    pub(super) fn number<T: std::str::FromStr>(&self, what: &str) -> Result<T, ConfigError> {
        self.value.parse().map_err(|_| self.wrong(what))
    }

    pub(super) fn port(&self) -> Result<u16, ConfigError> {
        self.number("a number from 0 to 65535")
    }

    pub(super) fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.wrong("true or false")),
        }
    }

    /// A path: the rest of the line, which may hold spaces.
    pub(super) fn path(&self) -> Result<String, ConfigError> {
        if self.value.is_empty() {
            return Err(at(
                self.origin,
                format!("{} needs a file or directory", self.name),
            ));
        }
        Ok(self.value.to_owned())
    }

    /// An IP address or a host name.
    pub(super) fn host(&self) -> Result<String, ConfigError> {
        let ok = self.value.parse::<std::net::IpAddr>().is_ok()
            || (!self.value.is_empty()
                && self.value.len() <= 253
                && self.value.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                }));
        if ok {
            Ok(self.value.to_owned())
        } else {
            Err(self.wrong("an IP address or host name"))
        }
    }
}
