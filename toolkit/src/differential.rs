//! `toolkit conformance --target NAME=HOST:PORT` (repeatable): the
//! differential run of issue 13, item 8. This module holds the flag's value
//! and its parse; the run itself is `conformance.rs`'s, once per target, and
//! the table is `conformance::report::differential`'s.
//!
//! The targets run one after another, not at once: each broker then has the
//! machine to itself, so the timing scenarios see it as a single run would.
//! The connection flags other than -h/-p (TLS, credentials, client
//! certificate) apply to every target. The exit status is that of a single
//! run against the FIRST target, the broker under test (with --baseline
//! describing it); the others are references shown in the table.

use crate::connection::ConnectionFlags;

/// One `--target NAME=HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The column name: letters, digits, `-` and `_`.
    pub name: String,
    /// A host name, an IPv4 address, or an IPv6 address in brackets
    /// (kept, so that `HOST:PORT` stays an address, as `-h [::1]` gives it).
    pub host: String,
    /// The plain MQTT port.
    pub port: u16,
}

impl TargetSpec {
    /// `flags` pointed at this target's host and port.
    pub fn flags(&self, flags: &ConnectionFlags) -> ConnectionFlags {
        let mut f = flags.clone();
        f.host.clone_from(&self.host);
        f.port = Some(self.port);
        f
    }
}

/// Parses `NAME=HOST:PORT` (`HOST` may be `[IPv6]`), for clap.
pub fn parse_target(s: &str) -> Result<TargetSpec, String> {
    const FORM: &str = "expected NAME=HOST:PORT, e.g. mosquitto=127.0.0.1:1883 or ours=[::1]:1883";
    let (name, address) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': no `=`; {FORM}"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{name:?} is not a target name: use letters, digits, - and _; {FORM}"
        ));
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("'{address}': no `:PORT`; {FORM}"))?;
    let host = match host.strip_prefix('[') {
        Some(rest) => {
            let inner = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("{host:?}: unclosed `[`; {FORM}"))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{inner:?} is not an IPv6 address; {FORM}"))?;
            host.to_owned()
        }
        None if host.contains(':') => {
            return Err(format!(
                "{host:?}: put an IPv6 address in brackets, [{host}]; {FORM}"
            ));
        }
        None if host.is_empty() => return Err(format!("{address:?}: no host; {FORM}")),
        None => host.to_owned(),
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{port:?} is not a port (1-65535); {FORM}"))?;
    Ok(TargetSpec {
        name: name.to_owned(),
        host,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, host: &str, port: u16) -> TargetSpec {
        TargetSpec {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn names_hosts_and_ports_parse() {
        assert_eq!(
            parse_target("mosquitto=127.0.0.1:1883"),
            Ok(spec("mosquitto", "127.0.0.1", 1883))
        );
        assert_eq!(
            parse_target("our_broker-2=broker.local:11883"),
            Ok(spec("our_broker-2", "broker.local", 11883))
        );
        assert_eq!(parse_target("v6=[::1]:1883"), Ok(spec("v6", "[::1]", 1883)));
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        for (bad, says) in [
            ("127.0.0.1:1883", "no `=`"),
            ("my broker=h:1", "not a target name"),
            ("=h:1", "not a target name"),
            ("a=h", "no `:PORT`"),
            ("a=h:0", "is not a port"),
            ("a=h:70000", "is not a port"),
            ("a=::1:1883", "in brackets"),
            ("a=[::1:1883", "unclosed"),
            ("a=[x]:1883", "not an IPv6 address"),
            ("a=:1883", "no host"),
        ] {
            let err = parse_target(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.contains("expected NAME=HOST:PORT"), "{bad}: {err}");
        }
    }
}
