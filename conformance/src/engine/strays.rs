//! Stray deliveries: a PUBLISH that reaches a client none of whose
//! subscriptions matches its topic [MQTT-3.3.2-3], or the same QoS 2 message
//! delivered again as new (DUP 0, same packet id, while the first is still
//! unacknowledged) [MQTT-3.3.1-1].
//!
//! The engine learns each client's subscriptions from the bytes the harness
//! itself sends (every SUBSCRIBE, whichever step wrote it), keyed by client
//! id so a persistent session keeps the filters of its earlier connections.
//! A stray is set aside when it arrives: marked consumed, so no expectation
//! sees it and it cannot fail a check about something else; it is noted in
//! the transcript and reported once, under its own statement. A stray on
//! the scenario's own topics (`{t}`, `{u}`) fails that scenario, which alone
//! can have caused it; one on another scenario's topics fails nothing and is
//! listed in the run summary, so no verdict depends on what ran beside it.
//!
//! The check errs on the side of silence, since a false stray report is
//! worse than a missed one: filters are matched leniently (wildcards also
//! match `$` topics), filters and unsubscriptions are never forgotten, a
//! client whose bytes the harness cannot decode (malformed and split
//! packets) or that asks for a shared subscription is not judged, and
//! `exclusive` scenarios, which see the whole broker, are not judged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use mqtt_codec::{Packet, Publish, QoS};

use super::Run;
use crate::model::Location;
use crate::outcome::{Direction, Line};

/// The statement a PUBLISH on a topic no subscription matches breaks.
pub const STRAY_STATEMENT: &str = "MQTT-3.3.2-3";

/// The statement a QoS 2 message delivered again as new (DUP 0) breaks.
pub const DUPLICATE_STATEMENT: &str = "MQTT-3.3.1-1";

/// What the harness knows of one session's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    /// Every filter subscribed to in this scenario (never removed).
    filters: Vec<String>,
    /// The session sent something the harness could not follow: its
    /// deliveries are not judged.
    unknown: bool,
}

/// How the harness watches one connection's deliveries.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The session (client id) whose subscriptions apply, once a CONNECT
    /// was sent; `None`: not judged.
    session: Option<Vec<u8>>,
    /// QoS 2 deliveries on this connection not yet completed by the
    /// harness's PUBCOMP: packet id to topic and payload.
    qos2_in_flight: BTreeMap<u16, (String, bytes::Bytes)>,
    /// Indexes in the connection's log of the arrivals set aside as strays.
    pub(super) set_aside: BTreeSet<usize>,
}

/// One stray delivery, as reports show it.
#[derive(Debug, Clone)]
pub(crate) struct Stray {
    /// The statement it breaks.
    pub(crate) statement: &'static str,
    /// The client it reached.
    pub(crate) client: String,
    /// What arrived and why it is a stray.
    pub(crate) text: String,
    /// Its topic is the scenario's own, so the scenario caused it.
    pub(crate) own: bool,
    /// The step running when it arrived.
    pub(crate) at: Option<(Location, &'static str)>,
}

/// Records QoS 2 delivery `p` under `id`; whether it is the message still
/// in flight under that id again, as new (DUP 0). Another message under an
/// id in flight is a packet-id fault the scenarios on [MQTT-2.3.1-4] check,
/// not a duplicate, and is left to them.
fn is_again(in_flight: &mut BTreeMap<u16, (String, bytes::Bytes)>, id: u16, p: &Publish) -> bool {
    let this = (p.topic().as_str().to_owned(), p.payload().clone());
    match in_flight.get(&id) {
        Some(first) => *first == this && !p.dup,
        None => {
            in_flight.insert(id, this);
            false
        }
    }
}

/// Whether `filter` could match `topic`: the MQTT rules without the one
/// that keeps wildcards off `$` topics, so that a broker breaking that rule
/// is left to the scenarios that check it rather than set aside.
fn may_match(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl Run<'_> {
    /// Learns from `bytes`, about to be sent for `client`: a CONNECT ties
    /// the connection to its session, a SUBSCRIBE adds filters, a PUBCOMP
    /// completes a QoS 2 delivery. Bytes that do not decode as whole
    /// packets stop the judging of this client.
    pub(crate) fn watch_sent(&mut self, client: &str, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match mqtt_codec::decode_slice(rest) {
                Ok(Some((packet, used))) if used > 0 => {
                    rest = rest.get(used..).unwrap_or_default();
                    self.watch_packet(client, packet);
                }
                _ => {
                    self.unwatch(client);
                    return;
                }
            }
        }
    }

    fn watch_packet(&mut self, client: &str, packet: Packet) {
        match packet {
            Packet::Connect(c) => {
                // An empty client id gets a session of its own per connection.
                let key = if c.client_id.is_empty() {
                    self.anonymous += 1;
                    format!("\0{client}\0{}", self.anonymous).into_bytes()
                } else {
                    c.client_id.into_bytes()
                };
                self.subscriptions.entry(key.clone()).or_default();
                self.client_mut(client).watch.session = Some(key);
            }
            Packet::Subscribe(s) => {
                let Some(key) = self.client_mut(client).watch.session.clone() else {
                    return;
                };
                let subs = self.subscriptions.entry(key).or_default();
                for f in &s.filters {
                    let filter = f.filter.as_str();
                    // A shared subscription's topic is not its filter's.
                    if filter.starts_with("$share/") || filter.starts_with("$queue/") {
                        subs.unknown = true;
                    }
                    subs.filters.push(filter.to_owned());
                }
            }
            Packet::PubComp(id) => {
                self.client_mut(client)
                    .watch
                    .qos2_in_flight
                    .remove(&id.get());
            }
            _ => {}
        }
    }

    fn unwatch(&mut self, client: &str) {
        if let Some(key) = self.client_mut(client).watch.session.take()
            && let Some(subs) = self.subscriptions.get_mut(&key)
        {
            subs.unknown = true;
        }
    }

    /// Whether `packet`, just arrived for `client` at `arrived` (since the
    /// scenario started), is a stray; if so it is recorded, noted in the
    /// transcript, and the caller sets it aside (see [`Run::set_aside`]).
    pub(crate) fn judge_arrival(
        &mut self,
        client: &str,
        packet: &Packet,
        arrived: Duration,
    ) -> bool {
        let Packet::Publish(p) = packet else {
            return false;
        };
        if self.exclusive {
            return false;
        }
        let Some(state) = self.clients.get_mut(client) else {
            return false;
        };
        let Some(key) = &state.watch.session else {
            return false;
        };
        let Some(subs) = self.subscriptions.get(key) else {
            return false;
        };
        let topic = p.topic().as_str();
        let (statement, why) = if !subs.unknown && !subs.filters.iter().any(|f| may_match(f, topic))
        {
            let filters = if subs.filters.is_empty() {
                "it has none".to_owned()
            } else {
                subs.filters.join(", ")
            };
            (
                STRAY_STATEMENT,
                format!("no subscription of this client matches its topic ({filters})"),
            )
        } else if p.qos() == QoS::ExactlyOnce
            && let Some(id) = p.packet_id().map(|i| i.get())
            && is_again(&mut state.watch.qos2_in_flight, id, p)
        {
            (
                DUPLICATE_STATEMENT,
                format!(
                    "QoS 2 packet id {id} is still unacknowledged, and DUP is 0: the same message delivered again as new"
                ),
            )
        } else {
            return false;
        };
        let t = &self.ph.topic;
        let own = topic == t
            || topic
                .strip_prefix(t.as_str())
                .is_some_and(|r| r.starts_with('/'))
            || topic.contains(self.ph.unique.as_str());
        let text = format!(
            "stray delivery [{statement}]: {}: {why}{}",
            crate::describe::packet(packet),
            if own {
                ""
            } else {
                "; another scenario's topic, set aside"
            }
        );
        self.transcript.push(Line {
            at: arrived,
            client: client.to_owned(),
            direction: Direction::Note,
            text: text.clone(),
        });
        self.strays.push(Stray {
            statement,
            client: client.to_owned(),
            text,
            own,
            at: self.current.clone(),
        });
        true
    }
}

/// The subscriptions known per session (client id) in one scenario run.
pub(crate) type Sessions = HashMap<Vec<u8>, Subscriptions>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use mqtt_codec::raw::{RawConnect, RawSubscribe};
    use mqtt_codec::topic::TopicName;
    use mqtt_codec::{PacketId, Publish};

    use super::*;
    use crate::script::Placeholders;
    use crate::target::Target;

    fn placeholders() -> Placeholders {
        Placeholders {
            topic: "mqc/r/s".into(),
            unique: "r007".into(),
            client_id: "qr007".into(),
            iteration: 0,
        }
    }

    /// Client "a" connected as `client_id` and subscribed to `filters`, as
    /// the harness would have sent it.
    fn subscribed(run: &mut Run<'_>, client_id: &str, clean: bool, filters: &[&str]) {
        let connect = RawConnect {
            client_id: Some(client_id.as_bytes().to_vec()),
            clean_session: clean,
            ..RawConnect::default()
        };
        run.client_mut("a").watch = Watch::default();
        run.watch_sent("a", &connect.to_packet().to_bytes());
        if !filters.is_empty() {
            let subscribe = RawSubscribe {
                packet_id: 1,
                filters: filters.iter().map(|f| (f.as_bytes().to_vec(), 1)).collect(),
            };
            run.watch_sent("a", &subscribe.to_packet().to_bytes());
        }
    }

    fn publish(topic: &str) -> Packet {
        Packet::Publish(Publish::at_most_once(TopicName::new(topic).unwrap(), "x"))
    }

    fn qos2(topic: &str, id: u16, dup: bool) -> Packet {
        let p = Publish::at_qos(
            TopicName::new(topic).unwrap(),
            QoS::ExactlyOnce,
            PacketId::new(id).unwrap(),
            "x",
        );
        Packet::Publish(p.with_dup(dup))
    }

    fn judged(run: &mut Run<'_>, packet: &Packet) -> Option<(&'static str, bool)> {
        let before = run.strays.len();
        let stray = run.judge_arrival("a", packet, Duration::ZERO);
        assert_eq!(stray, run.strays.len() > before);
        stray.then(|| run.strays.last().map(|s| (s.statement, s.own)).unwrap())
    }

    #[test]
    fn a_publish_no_subscription_matches_is_a_stray_owned_by_its_topic() {
        let target = Target::plain("127.0.0.1", 1);
        let mut run = Run::new(&target, placeholders(), "s".into());
        subscribed(&mut run, "qr007a", true, &["mqc/r/s/x", "r007/+"]);
        assert_eq!(judged(&mut run, &publish("mqc/r/s/x")), None);
        assert_eq!(judged(&mut run, &publish("r007/y")), None);
        assert_eq!(
            judged(&mut run, &publish("mqc/r/s/y")),
            Some((STRAY_STATEMENT, true))
        );
        assert_eq!(
            judged(&mut run, &publish("mqc/r/other/x")),
            Some((STRAY_STATEMENT, false)),
            "another scenario's topic"
        );
        // `mqc/r/s2` only shares a prefix with `{t}` = `mqc/r/s`.
        assert_eq!(
            judged(&mut run, &publish("mqc/r/s2/x")),
            Some((STRAY_STATEMENT, false))
        );
    }

    #[test]
    fn a_persistent_session_keeps_its_filters_across_connections() {
        let target = Target::plain("127.0.0.1", 1);
        let mut run = Run::new(&target, placeholders(), "s".into());
        subscribed(&mut run, "qr007a", false, &["mqc/r/s/x"]);
        // A new connection of the same client id, subscribing to nothing.
        subscribed(&mut run, "qr007a", false, &[]);
        assert_eq!(judged(&mut run, &publish("mqc/r/s/x")), None);
        // Another client id has no subscription at all.
        subscribed(&mut run, "qr007b", true, &[]);
        assert_eq!(
            judged(&mut run, &publish("mqc/r/s/x")),
            Some((STRAY_STATEMENT, true))
        );
    }

    #[test]
    fn clients_the_harness_cannot_follow_are_not_judged() {
        let target = Target::plain("127.0.0.1", 1);
        let mut run = Run::new(&target, placeholders(), "s".into());
        // Before any CONNECT.
        assert_eq!(judged(&mut run, &publish("mqc/r/s/y")), None);
        // After bytes that do not decode (a SUBSCRIBE without filters).
        subscribed(&mut run, "qr007a", true, &["mqc/r/s/x"]);
        run.watch_sent("a", &[0x82, 0x02, 0x00, 0x01]);
        assert_eq!(judged(&mut run, &publish("mqc/r/s/y")), None);
        // A shared subscription.
        subscribed(&mut run, "qr007c", true, &["$share/g/mqc/r/s/x"]);
        assert_eq!(judged(&mut run, &publish("mqc/r/s/x")), None);
        // An exclusive scenario.
        subscribed(&mut run, "qr007d", true, &["mqc/r/s/x"]);
        run.exclusive = true;
        assert_eq!(judged(&mut run, &publish("mqc/r/s/y")), None);
    }

    #[test]
    fn a_qos2_message_again_as_new_is_a_duplicate_until_pubcomp() {
        let target = Target::plain("127.0.0.1", 1);
        let mut run = Run::new(&target, placeholders(), "s".into());
        subscribed(&mut run, "qr007a", true, &["mqc/r/s/#"]);
        assert_eq!(judged(&mut run, &qos2("mqc/r/s/x", 5, false)), None);
        assert_eq!(
            judged(&mut run, &qos2("mqc/r/s/x", 5, true)),
            None,
            "a resend"
        );
        assert_eq!(
            judged(&mut run, &qos2("mqc/r/s/x", 5, false)),
            Some((DUPLICATE_STATEMENT, true))
        );
        // Another message under the id in flight is not a duplicate.
        assert_eq!(judged(&mut run, &qos2("mqc/r/s/y", 5, false)), None);
        // Once the harness completed the flow, the id is free again.
        run.watch_sent("a", &[0x70, 0x02, 0x00, 0x05]);
        assert_eq!(judged(&mut run, &qos2("mqc/r/s/x", 5, false)), None);
    }

    #[test]
    fn a_stray_stays_set_aside_when_a_one_of_branch_is_undone() {
        let target = Target::plain("127.0.0.1", 1);
        let mut run = Run::new(&target, placeholders(), "s".into());
        run.client_mut("a").consumed = vec![false];
        let marks = run.consumed_marks();
        // In the branch: arrival 0 consumed, arrival 1 a stray, 2 unread.
        run.client_mut("a").consumed = vec![true, false];
        run.set_aside("a");
        run.client_mut("a").consumed.push(false);
        run.restore_consumed(&marks);
        assert_eq!(run.clients["a"].consumed, [false, true, false]);
    }

    #[test]
    fn matching_is_lenient_only_about_dollar_topics() {
        for (filter, topic, want) in [
            ("a/b", "a/b", true),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "$SYS/x", true),
            ("+/x", "$SYS/x", true),
            ("a/b", "a/c", false),
            ("a/b", "a", false),
            ("A/b", "a/b", false),
        ] {
            assert_eq!(may_match(filter, topic), want, "{filter} vs {topic}");
        }
    }
}
