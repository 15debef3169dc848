//! `toolkit pub` and `toolkit sub`: one-shot publish and subscribe, spelled
//! as mosquitto_pub and mosquitto_sub spell them, for scripts and for trying
//! a broker by hand.
//!
//! Both connect through `probe`'s connection code ([`crate::probe::connect`]
//! and [`crate::probe::session`]), so a failure gets probe's one-line
//! explanation and exit status (`toolkit --help` lists them).
//!
//! - [`publish`]: `toolkit pub`, the message from `-m`, `-f`, `-s`, `-n` or
//!   each line of `-l`, waiting for PUBACK or PUBCOMP before it exits;
//! - [`subscribe`]: `toolkit sub`, printing messages until `-C`, `-W`,
//!   Ctrl-C or SIGTERM, then sending DISCONNECT;
//! - [`format`](mod@format): how `sub` prints a message (`-v`, `-F`, `--json`).

pub mod format;
pub mod publish;
pub mod subscribe;

use std::time::Duration;

use clap::Args;
use rumqttc::LastWill;

use crate::connection::{ConnectionFlags, refuse};
use crate::exit::usage;
use crate::probe::connect;
use crate::probe::session::{ClientOptions, Session};
use crate::probe::{Target, TlsSwitch, parse_timeout, qos_of};
use crate::unique::nonce;

pub use publish::PubArgs;
pub use subscribe::SubArgs;

/// The CONNECT flags `pub` and `sub` share besides the connection's own:
/// keep-alive, clean session, the will, and the bound on each wait.
#[derive(Debug, Clone, Args)]
pub struct SessionFlags {
    /// Keep-alive in seconds; 0 turns it off.
    #[arg(
        short = 'k',
        long = "keepalive",
        value_name = "SECONDS",
        default_value = "60"
    )]
    pub keepalive: u16,

    /// Keep the session when disconnecting (clean session off): the broker
    /// keeps the subscriptions and queues QoS 1 and 2 messages while the
    /// client is away. Needs -i.
    #[arg(short = 'c', long = "disable-clean-session")]
    pub keep_session: bool,

    /// Topic of the will the broker publishes if this client goes away
    /// without DISCONNECT.
    #[arg(long, value_name = "TOPIC", requires = "will_payload")]
    pub will_topic: Option<String>,

    /// Payload of the will.
    #[arg(long, value_name = "TEXT", requires = "will_topic")]
    pub will_payload: Option<String>,

    /// QoS of the will.
    #[arg(long, value_name = "0|1|2", default_value = "0", requires = "will_topic",
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub will_qos: u8,

    /// Have the broker retain the will.
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,

    /// Seconds to wait for each answer from the broker (connect, CONNACK,
    /// SUBACK, PUBACK, PUBCOMP).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout)]
    pub timeout: Duration,
}

impl SessionFlags {
    /// The CONNECT options these flags ask for; the will topic must be a
    /// valid topic name, as it is published [MQTT-3.3.2-2].
    fn options(&self, client_id_given: bool) -> anyhow::Result<ClientOptions> {
        if self.keep_session && !client_id_given {
            return Err(usage(
                "-c keeps the session under a client id: give one with -i ID",
            ));
        }
        let will = match (&self.will_topic, &self.will_payload) {
            (Some(topic), Some(payload)) => {
                topic_name(topic, "--will-topic")?;
                Some(LastWill::new(
                    topic.as_str(),
                    payload.as_bytes().to_vec(),
                    qos_of(self.will_qos),
                    self.will_retain,
                ))
            }
            _ => None,
        };
        Ok(ClientOptions {
            keep_alive: Duration::from_secs(u64::from(self.keepalive)),
            clean_session: !self.keep_session,
            will,
        })
    }
}

/// Refuses `topic` unless it is a valid topic name to publish to (no
/// wildcards, not empty [MQTT-3.3.2-2], [MQTT-4.7.3-1]), naming `flag`.
fn topic_name(topic: &str, flag: &str) -> anyhow::Result<()> {
    mqtt_codec::topic::TopicName::new(topic)
        .map(drop)
        .map_err(|e| {
            usage(format!(
                "{flag} {topic:?} is not a topic to publish to: {e}"
            ))
        })
}

/// Connects as the flags say, with `prefix` and a random suffix as the
/// client id unless `-i` gives one, and waits for CONNACK.
async fn open(
    connection: &ConnectionFlags,
    session: &SessionFlags,
    prefix: &str,
) -> anyhow::Result<Session> {
    let options = session.options(connection.client_id.is_some())?;
    let tls = connection.tls_settings(connection.tls, "--tls")?;
    refuse(
        connection.tls_port.is_some(),
        "--tls-port",
        "for a TLS port use --tls -p PORT",
    )?;
    // Read the certificate files before touching the network, so a missing
    // --cafile is reported as such whatever the broker's state.
    let tls_config = match &tls {
        Some(settings) => Some(crate::connection::client_config(settings)?),
        None => None,
    };
    let client_id = connection
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{prefix}-{}", nonce()));
    let target = Target::new(
        &connection.host,
        connection.port_or_default(),
        tls,
        Some(client_id),
        connection.credentials(),
        session.timeout,
        TlsSwitch::Tls,
    )
    .with_options(options);
    let (session, _connack) = connect::mqtt(&target, tls_config).await?;
    Ok(session)
}

/// A runtime for one command: single-threaded, as a client needs no more.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::QoS;

    fn parse(args: &[&str]) -> Result<SessionFlags, clap::Error> {
        crate::flag_parse::parse_flags("session", args)
    }

    #[test]
    fn defaults_are_mosquittos() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.keepalive, 60);
        assert!(!f.keep_session && f.will_topic.is_none());
        let o = f.options(false).unwrap();
        assert_eq!(o.keep_alive, Duration::from_secs(60));
        assert!(o.clean_session && o.will.is_none());
    }

    #[test]
    fn will_flags_go_together_and_build_the_will() {
        assert!(parse(&["--will-topic", "t"]).is_err(), "needs a payload");
        assert!(parse(&["--will-payload", "p"]).is_err(), "needs a topic");
        assert!(parse(&["--will-qos", "1"]).is_err(), "needs a topic");
        assert!(parse(&["--will-retain"]).is_err(), "needs a topic");
        let f = parse(&[
            "--will-topic",
            "gone",
            "--will-payload",
            "bye",
            "--will-qos",
            "2",
            "--will-retain",
        ])
        .unwrap();
        let will = f.options(false).unwrap().will.unwrap();
        assert_eq!(will.topic, "gone");
        assert_eq!(&will.message[..], b"bye");
        assert_eq!(will.qos, QoS::ExactlyOnce);
        assert!(will.retain);
        assert!(
            parse(&[
                "--will-topic",
                "t",
                "--will-payload",
                "p",
                "--will-qos",
                "3"
            ])
            .is_err()
        );
    }

    #[test]
    fn a_wildcard_will_topic_is_refused() {
        let f = parse(&["--will-topic", "a/#", "--will-payload", "p"]).unwrap();
        let err = f.options(false).unwrap_err();
        assert_eq!(crate::exit::status_of(&err), crate::exit::Status::Usage);
        assert!(err.to_string().contains("--will-topic \"a/#\""), "{err}");
    }

    #[test]
    fn keeping_the_session_needs_a_client_id() {
        let f = parse(&["-c", "-k", "5"]).unwrap();
        assert!(f.options(false).is_err());
        let o = f.options(true).unwrap();
        assert!(!o.clean_session);
        assert_eq!(o.keep_alive, Duration::from_secs(5));
        assert!(parse(&["--disable-clean-session"]).unwrap().keep_session);
        assert!(parse(&["-k", "70000"]).is_err());
    }

    #[test]
    fn timeout_is_positive_seconds() {
        assert_eq!(
            parse(&["--timeout", "2"]).unwrap().timeout,
            Duration::from_secs(2)
        );
        assert!(parse(&["--timeout", "0"]).is_err());
    }
}
