//! `--interactive`: a small shell for trying a broker by hand (or from a
//! script on standard input). Messages are printed as they arrive, one line
//! each, starting with `<`.
//!
//! Commands: `connect`, `disconnect`, `sub FILTER [QOS]`, `unsub FILTER`,
//! `pub [-q QOS] [-r] TOPIC [PAYLOAD…]`, `wait [N] [SECONDS]`, `status`,
//! `help`, `quit`. The exit status is 0 when every command worked, else that
//! of the last failure.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mqtt_codec::topic::{TopicFilter, TopicName};
use rumqttc::QoS;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::session::{Message, Session};
use super::{Target, connect, ms, qos_digit};
use crate::exit::{Failure, Status};

const HELP: &str = "commands:
  connect                     connect with the flags given to toolkit probe
  disconnect                  send DISCONNECT and close
  sub FILTER [QOS]            subscribe (QoS 0 unless given)
  unsub FILTER                unsubscribe
  pub [-q QOS] [-r] TOPIC [PAYLOAD...]
                              publish (QoS 0, not retained, unless given)
  wait [N] [SECONDS]          wait until N more messages arrived (default 1,
                              at most --timeout seconds unless given)
  status                      connection, subscriptions, messages received
  help                        this text
  quit                        disconnect and leave (end of input does too)";

/// One parsed command line.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Connect,
    Disconnect,
    Sub(TopicFilter, QoS),
    Unsub(TopicFilter),
    Pub {
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: String,
    },
    Wait(usize, Option<Duration>),
    Status,
    Help,
    Quit,
}

fn parse_qos(text: &str) -> Result<QoS, String> {
    match text {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(format!("QoS must be 0, 1 or 2, not '{text}'")),
    }
}

/// Parses a line; `Ok(None)` for blank lines and `#` comments.
fn parse(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    let args: Vec<&str> = rest.split_whitespace().collect();
    let filter = |text: &str| TopicFilter::new(text).map_err(|e| format!("'{text}': {e}"));
    let command = match (word, args.as_slice()) {
        ("connect", []) => Command::Connect,
        ("disconnect", []) => Command::Disconnect,
        ("sub" | "subscribe", [f]) => Command::Sub(filter(f)?, QoS::AtMostOnce),
        ("sub" | "subscribe", [f, q]) => Command::Sub(filter(f)?, parse_qos(q)?),
        ("unsub" | "unsubscribe", [f]) => Command::Unsub(filter(f)?),
        ("pub" | "publish", _) => parse_pub(rest)?,
        ("wait", []) => Command::Wait(1, None),
        ("wait", [n]) => Command::Wait(parse_count(n)?, None),
        ("wait", [n, secs]) => Command::Wait(parse_count(n)?, Some(parse_secs(secs)?)),
        ("status", []) => Command::Status,
        ("help" | "?", _) => Command::Help,
        ("quit" | "exit", []) => Command::Quit,
        (
            "connect" | "disconnect" | "sub" | "subscribe" | "unsub" | "unsubscribe" | "wait"
            | "status" | "quit" | "exit",
            _,
        ) => {
            return Err(format!("wrong arguments for {word}; type help"));
        }
        _ => return Err(format!("unknown command '{word}'; type help")),
    };
    Ok(Some(command))
}

fn parse_pub(rest: &str) -> Result<Command, String> {
    let mut qos = QoS::AtMostOnce;
    let mut retain = false;
    let mut rest = rest.trim_start();
    loop {
        let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match word {
            "-q" => {
                let after = after.trim_start();
                let (q, after) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
                qos = parse_qos(q)?;
                rest = after.trim_start();
            }
            "-r" => {
                retain = true;
                rest = after.trim_start();
            }
            _ => break,
        }
    }
    let (topic, payload) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if topic.is_empty() {
        return Err("pub needs a topic: pub [-q QOS] [-r] TOPIC [PAYLOAD...]".to_owned());
    }
    let topic = TopicName::new(topic).map_err(|e| format!("'{topic}': {e}"))?;
    Ok(Command::Pub {
        topic,
        qos,
        retain,
        payload: payload.trim_start().to_owned(),
    })
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a positive number of messages")),
    }
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "'{text}' is not a number of seconds between 0 and 3600"
        )),
    }
}

/// How a received message is shown.
fn message_line(m: &Message) -> String {
    let payload = match std::str::from_utf8(&m.payload) {
        Ok(text) => text.to_owned(),
        Err(_) => format!(
            "0x{} ({} bytes)",
            conformance::describe::hex(&m.payload),
            m.payload.len()
        ),
    };
    let retained = if m.retain { ", retained" } else { "" };
    format!(
        "< {} (qos {}{retained}) {payload}",
        m.topic,
        qos_digit(m.qos)
    )
}

struct Shell<'a> {
    target: &'a Target,
    session: Option<Session>,
    subscriptions: BTreeMap<String, QoS>,
    /// Messages printed but not yet consumed by `wait`.
    unwaited: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
    last_failure: Option<Failure>,
}

/// Runs the shell until `quit` or the end of input.
pub(super) async fn run(target: &Target) -> anyhow::Result<()> {
    let prompt = std::io::stdin().is_terminal();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut shell = Shell {
        target,
        session: None,
        subscriptions: BTreeMap::new(),
        unwaited: Arc::default(),
        received: Arc::default(),
        last_failure: None,
    };
    println!(
        "toolkit probe shell for {}; type help for commands",
        target.addr()
    );
    loop {
        if prompt {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let line = tokio::select! {
            line = lines.next_line() => line,
            lost = next_event(&mut shell.session) => {
                if let Err(failure) = lost {
                    shell.lost(failure);
                }
                continue;
            }
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: reading standard input: {e}");
                break;
            }
        };
        match parse(&line) {
            Ok(None) => {}
            Ok(Some(Command::Quit)) => break,
            Ok(Some(command)) => {
                if let Err(failure) = shell.execute(command).await {
                    eprintln!("error: {failure}");
                    shell.last_failure = Some(failure);
                }
            }
            Err(reason) => {
                eprintln!("error: {reason}");
                shell.last_failure = Some(Failure::new(Status::Usage, reason));
            }
        }
    }
    if let Some(session) = shell.session.take() {
        session.disconnect().await;
        println!("disconnected");
    }
    match shell.last_failure {
        Some(failure) => Err(Failure::new(
            failure.status,
            format!("the last failed command: {failure}"),
        )
        .into()),
        None => Ok(()),
    }
}

/// The session's next event, or never when there is no session.
async fn next_event(session: &mut Option<Session>) -> Result<(), Failure> {
    match session {
        Some(s) if !s.is_closed() => s.next_event().await.map(|_| ()),
        _ => std::future::pending().await,
    }
}

impl Shell<'_> {
    fn lost(&mut self, failure: Failure) {
        eprintln!("error: connection lost: {failure}");
        self.session = None;
        self.subscriptions.clear();
        self.last_failure = Some(failure);
    }

    fn connected(&mut self) -> Result<&mut Session, Failure> {
        match &mut self.session {
            Some(s) if !s.is_closed() => Ok(s),
            _ => Err(Failure::new(
                Status::Usage,
                "not connected: type connect first",
            )),
        }
    }

    async fn execute(&mut self, command: Command) -> Result<(), Failure> {
        match command {
            Command::Connect => {
                if self.session.as_ref().is_some_and(|s| !s.is_closed()) {
                    return Err(Failure::new(Status::Usage, "already connected"));
                }
                let mut session = connect::open(self.target, Some("")).await.map_err(|e| {
                    let status = crate::exit::status_of(&e);
                    Failure::new(status, format!("{e:#}"))
                })?;
                let unwaited = self.unwaited.clone();
                let received = self.received.clone();
                session.set_on_message(move |m| {
                    println!("{}", message_line(m));
                    received.fetch_add(1, Ordering::SeqCst);
                    unwaited.fetch_add(1, Ordering::SeqCst);
                });
                self.session = Some(session);
                println!("connected");
            }
            Command::Disconnect => {
                let session = self
                    .session
                    .take()
                    .ok_or_else(|| Failure::new(Status::Usage, "not connected"))?;
                session.disconnect().await;
                self.subscriptions.clear();
                println!("disconnected");
            }
            Command::Sub(filter, qos) => {
                let started = Instant::now();
                let granted = self.connected()?.subscribe(filter.as_str(), qos).await?;
                self.subscriptions
                    .insert(filter.as_str().to_owned(), granted);
                println!(
                    "subscribed to {filter} (granted QoS {}) in {}",
                    qos_digit(granted),
                    ms(started.elapsed())
                );
            }
            Command::Unsub(filter) => {
                self.connected()?.unsubscribe(filter.as_str()).await?;
                self.subscriptions.remove(filter.as_str());
                println!("unsubscribed from {filter}");
            }
            Command::Pub {
                topic,
                qos,
                retain,
                payload,
            } => {
                let took = self
                    .connected()?
                    .publish(topic.as_str(), qos, retain, payload.into_bytes())
                    .await?;
                let ack = match qos {
                    QoS::AtMostOnce => "sent".to_owned(),
                    QoS::AtLeastOnce => format!("PUBACK in {}", ms(took)),
                    QoS::ExactlyOnce => format!("PUBCOMP in {}", ms(took)),
                };
                println!(
                    "published to {topic} at QoS {}{} ({ack})",
                    qos_digit(qos),
                    if retain { ", retained" } else { "" }
                );
            }
            Command::Wait(n, secs) => self.wait(n, secs).await?,
            Command::Status => self.status(),
            Command::Help => println!("{HELP}"),
            Command::Quit => {}
        }
        Ok(())
    }

    async fn wait(&mut self, n: usize, secs: Option<Duration>) -> Result<(), Failure> {
        let limit = secs.unwrap_or(self.target.timeout);
        let deadline = tokio::time::Instant::now() + limit;
        let unwaited = self.unwaited.clone();
        let session = self.connected()?;
        while unwaited.load(Ordering::SeqCst) < n {
            match tokio::time::timeout_at(deadline, session.next_event()).await {
                Ok(Ok(_)) => {}
                Ok(Err(failure)) => {
                    self.lost(Failure::new(failure.status, failure.to_string()));
                    return Err(failure);
                }
                Err(_) => {
                    let got = unwaited.swap(0, Ordering::SeqCst);
                    return Err(Failure::new(
                        Status::Lost,
                        format!(
                            "only {got} of {n} messages arrived within {:.1} s",
                            limit.as_secs_f64()
                        ),
                    ));
                }
            }
        }
        unwaited.fetch_sub(n, Ordering::SeqCst);
        println!("waited for {n} message{}", if n == 1 { "" } else { "s" });
        Ok(())
    }

    fn status(&self) {
        match &self.session {
            Some(s) if !s.is_closed() => println!(
                "connected to {} as {} ({})",
                self.target.addr(),
                self.target.client_id,
                if s.endpoint().tls.is_some() {
                    "TLS"
                } else {
                    "plain TCP"
                }
            ),
            _ => println!("not connected (target {})", self.target.addr()),
        }
        if self.subscriptions.is_empty() {
            println!("subscriptions: none");
        } else {
            let subs: Vec<String> = self
                .subscriptions
                .iter()
                .map(|(f, q)| format!("{f} (QoS {})", qos_digit(*q)))
                .collect();
            println!("subscriptions: {}", subs.join(", "));
        }
        println!(
            "messages received: {}",
            self.received.load(Ordering::SeqCst)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("connect").unwrap(), Some(Command::Connect));
        assert_eq!(parse("  # comment").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("sub a/+/c 2").unwrap(),
            Some(Command::Sub(
                TopicFilter::new("a/+/c").unwrap(),
                QoS::ExactlyOnce
            ))
        );
        assert_eq!(
            parse("unsub a/#").unwrap(),
            Some(Command::Unsub(TopicFilter::new("a/#").unwrap()))
        );
        assert_eq!(
            parse("pub -q 1 -r t/x hello  world").unwrap(),
            Some(Command::Pub {
                topic: TopicName::new("t/x").unwrap(),
                qos: QoS::AtLeastOnce,
                retain: true,
                payload: "hello  world".to_owned()
            })
        );
        assert_eq!(
            parse("pub t").unwrap(),
            Some(Command::Pub {
                topic: TopicName::new("t").unwrap(),
                qos: QoS::AtMostOnce,
                retain: false,
                payload: String::new()
            })
        );
        assert_eq!(parse("wait").unwrap(), Some(Command::Wait(1, None)));
        assert_eq!(
            parse("wait 3 0.5").unwrap(),
            Some(Command::Wait(3, Some(Duration::from_millis(500))))
        );
        assert_eq!(parse("quit").unwrap(), Some(Command::Quit));
        assert_eq!(parse("status").unwrap(), Some(Command::Status));
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        assert!(parse("frobnicate").unwrap_err().contains("unknown command"));
        assert!(parse("sub a 3").unwrap_err().contains("QoS must be"));
        assert!(parse("sub a/#/b").unwrap_err().contains("MQTT-4.7.1-2"));
        assert!(parse("pub a/+ x").unwrap_err().contains("wildcard"));
        assert!(parse("pub -q 1").unwrap_err().contains("needs a topic"));
        assert!(parse("wait 0").is_err());
        assert!(
            parse("connect now")
                .unwrap_err()
                .contains("wrong arguments")
        );
    }

    #[test]
    fn binary_payloads_are_shown_in_hex() {
        let m = Message {
            topic: "t".into(),
            payload: vec![0xff, 0x00],
            qos: QoS::AtLeastOnce,
            retain: true,
            packet_id: 1,
            at: Instant::now(),
        };
        assert_eq!(message_line(&m), "< t (qos 1, retained) 0xff00 (2 bytes)");
    }
}
