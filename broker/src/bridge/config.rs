//! [`BridgeConfig`]: one bridge's settings, from mosquitto's bridge
//! directives, one line at a time ([`BridgeConfig::apply`]) or from a
//! `[[bridge]]` table of the TOML config ([`BridgeConfig::from_toml`], whose
//! keys are the same directive names).
//!
//! A bridge block starts with `connection NAME` ([`BridgeConfig::new`]);
//! every later directive up to the next `connection` is applied to it, and
//! [`BridgeConfig::finish`] checks the whole (an address, a topic) once the
//! block ends. Defaults are mosquitto 2.0's.

use std::path::PathBuf;
use std::time::Duration;

use super::topics::{BridgeTopic, TopicLineError};
use mqtt_codec::ProtocolLevel;
use mqtt_codec::topic::TopicName;

/// Why a bridge directive or block cannot be used. Each names the
/// directive and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeConfigError {
    /// A directive bridges do not have.
    #[error("{0}: not a bridge directive")]
    Unknown(String),
    /// A directive's value is wrong.
    #[error("{directive}: {message}")]
    Value {
        /// The directive.
        directive: String,
        /// What is wrong, and how to put it right.
        message: String,
    },
    /// A `topic` line is wrong.
    #[error("topic \"{line}\": {source}")]
    Topic {
        /// The line's value.
        line: String,
        /// What is wrong with it.
        source: TopicLineError,
    },
    /// The block lacks a directive it needs.
    #[error("bridge {name}: {message}")]
    Incomplete {
        /// The bridge's `connection` name.
        name: String,
        /// What is missing.
        message: String,
    },
}

/// Where the remote broker listens: a host name or address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, 1883 when the address names none.
    pub port: u16,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Address {
    /// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
    fn parse(word: &str) -> Option<Self> {
        let (host, port) = match word.strip_prefix('[') {
            Some(rest) => {
                let (host, after) = rest.split_once(']')?;
                match after {
                    "" => (host, None),
                    _ => (host, Some(after.strip_prefix(':')?)),
                }
            }
            None => match word.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, Some(p)),
                Some(_) => (word, None),
                None => (word, None),
            },
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0)?,
            None => 1883,
        };
        (!host.is_empty()).then(|| Self {
            host: host.to_owned(),
            port,
        })
    }
}

/// How long a bridge waits before connecting again (`restart_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartTimeout {
    /// `restart_timeout N`: always N seconds.
    Constant(Duration),
    /// `restart_timeout BASE CAP`: mosquitto 2.0's default (5 30),
    /// "decorrelated jitter": each wait a random time between `base` and
    /// three times the last wait, at most `cap`.
    Backoff {
        /// The shortest wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
}

/// What [`BridgeConfig::apply`] did with a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The setting is taken.
    Set,
    /// A mosquitto directive this broker reads but does not act on: a
    /// caller reading a file warns with `note` and the line.
    Ignored {
        /// Why, in a few words.
        note: &'static str,
    },
}

/// One bridge: where the remote broker is, how to connect to it, and which
/// topics cross.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// `connection NAME`: names the bridge in logs and default client ids.
    pub name: String,
    /// `address`/`addresses`: tried in turn until one answers.
    pub addresses: Vec<Address>,
    /// `topic` lines, in order; the first matching line maps a message.
    pub topics: Vec<BridgeTopic>,
    /// `remote_clientid` [default: `HOSTNAME.NAME`].
    pub remote_clientid: Option<String>,
    /// `local_clientid`: the bridge's session on this broker [default:
    /// `local.HOSTNAME.NAME`].
    pub local_clientid: Option<String>,
    /// `remote_username`.
    pub remote_username: Option<String>,
    /// `remote_password`.
    pub remote_password: Option<String>,
    /// `bridge_cafile`: connect with TLS, the remote checked against it.
    pub cafile: Option<PathBuf>,
    /// `bridge_certfile`: the certificate shown to the remote.
    pub certfile: Option<PathBuf>,
    /// `bridge_keyfile`: the key of `certfile`.
    pub keyfile: Option<PathBuf>,
    /// `bridge_insecure`: accept any certificate from the remote.
    pub insecure: bool,
    /// `cleansession` [default: false, so both brokers queue for the
    /// bridge while it is down].
    pub clean_session: bool,
    /// `local_cleansession` [default: `cleansession`].
    pub local_clean_session: Option<bool>,
    /// `keepalive_interval` in seconds [default: 60].
    pub keepalive: u16,
    /// `restart_timeout` [default: backoff 5 30].
    pub restart: RestartTimeout,
    /// `try_private`: CONNECT with the bridge bit (0x84), so a remote that
    /// knows it sends the bridge none of its own messages back [default:
    /// true]. Refused by the remote with 0x01, the bridge connects again
    /// without it.
    pub try_private: bool,
    /// `bridge_protocol_version`: mqttv311 (the default) or mqttv31.
    pub protocol: ProtocolLevel,
    /// `notifications`: publish the bridge's state, `1` connected and `0`
    /// not, retained, here and (unless `notifications_local_only`) on the
    /// remote, where a will sets `0` if the bridge drops [default: true].
    pub notifications: bool,
    /// `notifications_local_only` [default: false].
    pub notifications_local_only: bool,
    /// `notification_topic` [default:
    /// `$SYS/broker/connection/REMOTE_CLIENTID/state`].
    pub notification_topic: Option<TopicName>,
}

/// The directives [`BridgeConfig::apply`] knows, for a translator deciding
/// whether a line belongs to a bridge block.
pub const DIRECTIVES: &[&str] = &[
    "address",
    "addresses",
    "topic",
    "remote_clientid",
    "local_clientid",
    "remote_username",
    "remote_password",
    "bridge_cafile",
    "bridge_certfile",
    "bridge_keyfile",
    "bridge_insecure",
    "cleansession",
    "local_cleansession",
    "keepalive_interval",
    "restart_timeout",
    "try_private",
    "bridge_protocol_version",
    "notifications",
    "notification_topic",
    "notifications_local_only",
    "start_type",
    "round_robin",
    "idle_timeout",
    "threshold",
    "bridge_attempt_unsubscribe",
    "bridge_outgoing_retain",
    "bridge_max_packet_size",
    "local_username",
    "local_password",
];

impl BridgeConfig {
    /// A new bridge block, `connection NAME`, with mosquitto's defaults.
    pub fn new(name: &str) -> Result<Self, BridgeConfigError> {
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(value_error(
                "connection",
                "give the bridge one name without spaces (connection NAME)",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            addresses: Vec::new(),
            topics: Vec::new(),
            remote_clientid: None,
            local_clientid: None,
            remote_username: None,
            remote_password: None,
            cafile: None,
            certfile: None,
            keyfile: None,
            insecure: false,
            clean_session: false,
            local_clean_session: None,
            keepalive: 60,
            restart: RestartTimeout::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(30),
            },
            try_private: true,
            protocol: ProtocolLevel::V3_1_1,
            notifications: true,
            notifications_local_only: false,
            notification_topic: None,
        })
    }

    /// Applies one directive of the block, `value` being the rest of its
    /// line. `connection` starts a new block ([`BridgeConfig::new`]) and is
    /// refused here.
    pub fn apply(&mut self, directive: &str, value: &str) -> Result<Applied, BridgeConfigError> {
        let value = value.trim();
        let text = || {
            (!value.is_empty() && !value.contains(char::is_whitespace))
                .then(|| value.to_owned())
                .ok_or_else(|| value_error(directive, "give one value, without spaces"))
        };
        let path = || text().map(PathBuf::from);
        match directive {
            "address" | "addresses" => {
                if value.is_empty() {
                    return Err(value_error(
                        directive,
                        "give HOST[:PORT] [HOST2[:PORT] ...]",
                    ));
                }
                for word in value.split_whitespace() {
                    let address = Address::parse(word).ok_or_else(|| {
                        value_error(
                            directive,
                            &format!(
                                "\"{word}\" is not HOST, HOST:PORT or [IPV6]:PORT with a port from 1 to 65535"
                            ),
                        )
                    })?;
                    self.addresses.push(address);
                }
            }
            "topic" => {
                let topic =
                    BridgeTopic::parse(value).map_err(|source| BridgeConfigError::Topic {
                        line: value.to_owned(),
                        source,
                    })?;
                self.topics.push(topic);
            }
            "remote_clientid" => self.remote_clientid = Some(client_id(directive, value)?),
            "local_clientid" => self.local_clientid = Some(client_id(directive, value)?),
            "remote_username" => self.remote_username = Some(text()?),
            "remote_password" => self.remote_password = Some(text()?),
            "bridge_cafile" => self.cafile = Some(path()?),
            "bridge_certfile" => self.certfile = Some(path()?),
            "bridge_keyfile" => self.keyfile = Some(path()?),
            "bridge_insecure" => self.insecure = boolean(directive, value)?,
            "cleansession" => self.clean_session = boolean(directive, value)?,
            "local_cleansession" => self.local_clean_session = Some(boolean(directive, value)?),
            "try_private" => self.try_private = boolean(directive, value)?,
            "keepalive_interval" => {
                self.keepalive =
                    value
                        .parse::<u16>()
                        .ok()
                        .filter(|k| *k >= 5)
                        .ok_or_else(|| {
                            value_error(
                                directive,
                                "give seconds from 5 to 65535, as mosquitto allows",
                            )
                        })?;
            }
            "restart_timeout" => self.restart = restart_timeout(value)?,
            "bridge_protocol_version" => {
                self.protocol = match value {
                    "mqttv311" => ProtocolLevel::V3_1_1,
                    "mqttv31" => ProtocolLevel::V3_1,
                    _ => {
                        return Err(value_error(
                            directive,
                            "give mqttv311 or mqttv31 (this broker speaks MQTT 3.1.1 and 3.1 only)",
                        ));
                    }
                };
            }
            "notifications" => self.notifications = boolean(directive, value)?,
            "notifications_local_only" => {
                self.notifications_local_only = boolean(directive, value)?;
            }
            "notification_topic" => {
                let topic = TopicName::new(value).map_err(|e| {
                    value_error(directive, &format!("\"{value}\" is no topic name: {e}"))
                })?;
                self.notification_topic = Some(topic);
            }
            "start_type" | "round_robin" | "idle_timeout" | "threshold" => {
                return Ok(Applied::Ignored {
                    note: "bridges start at once and try their addresses in turn",
                });
            }
            "bridge_attempt_unsubscribe" | "bridge_outgoing_retain" | "bridge_max_packet_size" => {
                return Ok(Applied::Ignored {
                    note: "not supported by this broker's bridges",
                });
            }
            "local_username" | "local_password" => {
                // mosquitto 2.0 lets its own bridges pass its ACL check
                // whatever these say, and so does this broker: the bridge's
                // topics are the operator's own configuration.
                return Ok(Applied::Ignored {
                    note: "the broker's own bridges are exempt from the ACL and the password file, as in mosquitto",
                });
            }
            "connection" => {
                return Err(value_error(
                    directive,
                    "starts a new bridge block, it cannot be applied to one",
                ));
            }
            other => return Err(BridgeConfigError::Unknown(other.to_owned())),
        }
        Ok(Applied::Set)
    }

    /// Checks the finished block: it needs an address and a topic, and a
    /// certificate needs its key.
    pub fn finish(self) -> Result<Self, BridgeConfigError> {
        let incomplete = |message: &str| {
            Err(BridgeConfigError::Incomplete {
                name: self.name.clone(),
                message: message.to_owned(),
            })
        };
        if self.addresses.is_empty() {
            return incomplete("no address: add `address HOST[:PORT]`");
        }
        if self.topics.is_empty() {
            return incomplete("no topic: add at least one `topic PATTERN [out|in|both] ...` line");
        }
        if self.certfile.is_some() != self.keyfile.is_some() {
            return incomplete("bridge_certfile and bridge_keyfile go together: give both");
        }
        if (self.certfile.is_some() || self.insecure) && self.cafile.is_none() {
            return incomplete(
                "bridge_certfile and bridge_insecure are TLS settings: add bridge_cafile to connect with TLS",
            );
        }
        Ok(self)
    }

    /// Reads one `[[bridge]]` table of the TOML config: keys are the
    /// directive names, `connection` among them; a value is a string (the
    /// rest of the directive's line), a number, a boolean, or an array of
    /// them for a directive given several times (`topic`, `address`).
    pub fn from_toml(table: &toml::Table) -> Result<Self, BridgeConfigError> {
        let name = match table.get("connection") {
            Some(toml::Value::String(n)) => n,
            Some(_) => {
                return Err(value_error(
                    "connection",
                    "give the bridge's name as a string",
                ));
            }
            None => {
                return Err(value_error(
                    "connection",
                    "missing: every [[bridge]] needs connection = \"NAME\"",
                ));
            }
        };
        let mut bridge = Self::new(name)?;
        for (key, value) in table.iter().filter(|(k, _)| *k != "connection") {
            let values = match value {
                toml::Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            for v in values {
                let line = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => {
                        return Err(value_error(
                            key,
                            "give a string, a number, a boolean or an array of them",
                        ));
                    }
                };
                bridge.apply(key, &line)?;
            }
        }
        bridge.finish()
    }

    /// The client id this bridge connects to the remote with.
    pub fn remote_client_id(&self) -> String {
        self.remote_clientid
            .clone()
            .unwrap_or_else(|| format!("{}.{}", hostname(), self.name))
    }

    /// The client id of the bridge's session on this broker.
    pub fn local_client_id(&self) -> String {
        self.local_clientid
            .clone()
            .unwrap_or_else(|| format!("local.{}.{}", hostname(), self.name))
    }

    /// Where the bridge's state is published, if `notifications` is on.
    pub fn notification_topic(&self) -> Option<TopicName> {
        if !self.notifications {
            return None;
        }
        match &self.notification_topic {
            Some(t) => Some(t.clone()),
            None => TopicName::new(format!(
                "$SYS/broker/connection/{}/state",
                self.remote_client_id()
            ))
            .ok(),
        }
    }

    /// Whether the local session is clean (`local_cleansession`, else
    /// `cleansession`).
    pub fn local_clean(&self) -> bool {
        self.local_clean_session.unwrap_or(self.clean_session)
    }
}

fn value_error(directive: &str, message: &str) -> BridgeConfigError {
    BridgeConfigError::Value {
        directive: directive.to_owned(),
        message: message.to_owned(),
    }
}

/// mosquitto's booleans: `true` or `false`.
fn boolean(directive: &str, value: &str) -> Result<bool, BridgeConfigError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(value_error(
            directive,
            &format!("\"{value}\" is not true or false"),
        )),
    }
}

fn client_id(directive: &str, value: &str) -> Result<String, BridgeConfigError> {
    if value.is_empty() || value.len() > 65_535 || value.contains(char::is_whitespace) {
        return Err(value_error(directive, "give a client id without spaces"));
    }
    Ok(value.to_owned())
}

/// `N` (constant) or `BASE CAP` (backoff), whole seconds of at least 1.
fn restart_timeout(value: &str) -> Result<RestartTimeout, BridgeConfigError> {
    let secs = |w: &str| {
        w.parse::<u64>()
            .ok()
            .filter(|s| *s >= 1)
            .map(Duration::from_secs)
    };
    let words: Vec<&str> = value.split_whitespace().collect();
    let bad = || {
        value_error(
            "restart_timeout",
            "give SECONDS (a constant wait) or BASE CAP (a backoff from BASE up to CAP), whole seconds of at least 1",
        )
    };
    match words[..] {
        [n] => Ok(RestartTimeout::Constant(secs(n).ok_or_else(bad)?)),
        [b, c] => {
            let (base, cap) = (secs(b).ok_or_else(bad)?, secs(c).ok_or_else(bad)?);
            if cap < base {
                return Err(value_error(
                    "restart_timeout",
                    "the cap (second number) is below the base (first)",
                ));
            }
            Ok(RestartTimeout::Backoff { base, cap })
        }
        _ => Err(bad()),
    }
}

/// This machine's host name, for the default client ids as mosquitto makes
/// them; "localhost" when the system does not say.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;
