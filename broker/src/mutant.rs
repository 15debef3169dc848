//! Planted bugs for mutation testing of the conformance suite.
//!
//! With the `mutants` feature the broker can be told to break one rule on
//! purpose, so a test can check that the suite notices. Without the feature
//! (every build a user runs) [`active`] is a constant `false` and every
//! hook compiles away.
//!
//! Which bug is planted is per thread: a thread starts with the mutant
//! `$BROKER_MUTANT` names (so a broker binary started with it runs the bug
//! on every thread), and `set_for_this_thread` (with the feature) changes it, so a test can
//! run several brokers in one process, each on its own runtime whose
//! threads were given their mutant in `on_thread_start`.
//!
//! A mutant is named `NAME` or `NAME=VALUE` (a number the hook reads with
//! [`value`], e.g. `keepalive-factor=1.7`). Every name a hook asks for must
//! be listed in [`ALL`] or [`FOR_HARNESS_TESTS`], with what it breaks;
//! the mutation test runs the suite once per entry of [`ALL`].

/// Every planted bug: its name and what it breaks, in words. The mutation
/// test runs the whole suite once per entry and requires each to be caught.
pub const ALL: &[(&str, &str)] = &[
    // CONNECT rules, client ids, Session Present (session/connect, auth).
    (
        "second-connect-ignored",
        "a second CONNECT on a connection is ignored instead of closing it [MQTT-3.1.0-2]",
    ),
    (
        "unsupported-level-closed",
        "a CONNECT for an unsupported protocol level is closed without CONNACK 0x01 [MQTT-3.1.2-2]",
    ),
    (
        "empty-client-id-persistent-accepted",
        "an empty client id with Clean Session 0 gets an assigned id instead of CONNACK 0x02 [MQTT-3.1.3-8]",
    ),
    (
        "client-id-23-refused",
        "an off-by-one length check refuses 23-character client ids [MQTT-3.1.3-5]",
    ),
    (
        "password-not-checked",
        "a user's password is not verified [MQTT-3.1.4-4]",
    ),
    (
        "refusal-session-present",
        "a refusing CONNACK carries Session Present 1 [MQTT-3.2.2-4]",
    ),
    (
        "session-present-always-0",
        "CONNACK says Session Present 0 even when a stored session was resumed [MQTT-3.2.2-2]",
    ),
    // Session state across connections (router).
    (
        "clean-session-keeps-state",
        "Clean Session 1 resumes the stored session instead of discarding it [MQTT-3.1.2-6]",
    ),
    (
        "clean-session-parked",
        "a clean session is kept after its connection ends [MQTT-3.1.2-6]",
    ),
    (
        "subscriptions-dropped-on-resume",
        "resuming a persistent session drops its subscriptions from the index [MQTT-3.1.2-4]",
    ),
    (
        "offline-messages-dropped",
        "messages for a persistent session whose client is away are dropped [MQTT-3.1.2-5]",
    ),
    (
        "takeover-refused",
        "a second connection with a connected client id is refused instead of taking over [MQTT-3.1.4-2]",
    ),
    // QoS 1 and 2 flows, packet ids, DUP (session).
    (
        "puback-missing",
        "a QoS 1 PUBLISH is routed but never acknowledged [MQTT-4.3.2-2]",
    ),
    (
        "qos2-duplicate-routed",
        "a QoS 2 PUBLISH repeated before PUBREL is routed again [MQTT-4.3.3-2]",
    ),
    (
        "qos2-id-kept-after-pubrel",
        "PUBREL does not release the QoS 2 packet id, so its reuse is taken for a duplicate [MQTT-4.3.3-2]",
    ),
    (
        "pubcomp-not-sent",
        "PUBREL is not answered with PUBCOMP [MQTT-4.3.3-2]",
    ),
    (
        "pubrel-not-sent",
        "a subscriber's PUBREC is not answered with PUBREL [MQTT-4.3.3-1]",
    ),
    (
        "packet-id-not-advanced",
        "every outgoing QoS 1/2 PUBLISH gets packet id 1, in flight or not [MQTT-2.3.1-4]",
    ),
    (
        "dup-set-on-first-delivery",
        "the first delivery of a QoS 1/2 message has DUP set [MQTT-3.3.1-1]",
    ),
    (
        "dup-not-set-on-resend",
        "a PUBLISH resent on reconnect has DUP 0 [MQTT-3.3.1-1]",
    ),
    (
        "pubrel-not-resent",
        "a PUBREL still unacknowledged is not resent on reconnect [MQTT-4.4.0-1]",
    ),
    (
        "resend-reversed",
        "unacknowledged messages are resent newest first on reconnect [MQTT-4.6.0-1]",
    ),
    // Keep-alive and PINGREQ (session).
    (
        "keepalive-reset-only-by-pingreq",
        "only PINGREQ resets the keep-alive timer, other packets do not [MQTT-3.1.2-24]",
    ),
    (
        "keepalive-never-expires",
        "a client silent past 1.5x its keep-alive is never disconnected [MQTT-3.1.2-24]",
    ),
    (
        "pingreq-unanswered",
        "PINGREQ gets no PINGRESP [MQTT-3.12.4-1]",
    ),
    // Topic matching and delivery (router).
    (
        "plus-not-matching-in-middle",
        "a `+` before the last level of a filter matches nothing [MQTT-4.7.1-3]",
    ),
    (
        "hash-not-matching-parent",
        "`sport/#` does not match `sport` [MQTT-4.7.1-2]",
    ),
    (
        "dollar-matched-by-wildcards",
        "filters starting with `#` or `+` match topics starting with `$` [MQTT-4.7.2-1]",
    ),
    (
        "overlapping-lowest-qos",
        "a client whose subscriptions overlap gets the lowest of their QoS [MQTT-3.3.5-1]",
    ),
    (
        "qos-not-downgraded",
        "a message is delivered at its published QoS, above the granted one [MQTT-3.8.4-6]",
    ),
    (
        "qos-upgraded-to-granted",
        "a message is delivered at the granted QoS, above the published one [MQTT-3.8.4-6]",
    ),
    (
        "retain-kept-on-forward",
        "a retained message forwarded to current subscribers keeps RETAIN 1 [MQTT-3.3.1-9]",
    ),
    (
        "unsubscribe-not-removed",
        "UNSUBSCRIBE is acknowledged but the subscription stays [MQTT-3.10.4-2]",
    ),
    // Retained messages (router/retained).
    (
        "empty-retained-stored",
        "a retained PUBLISH with an empty payload is stored instead of clearing the topic [MQTT-3.3.1-10]",
    ),
    (
        "non-retained-replaces-retained",
        "a PUBLISH with RETAIN 0 replaces the topic's retained message [MQTT-3.3.1-12]",
    ),
    (
        "retained-qos-not-downgraded",
        "a retained message goes to a new subscriber at its stored QoS, above the granted one [MQTT-3.8.4-6]",
    ),
    (
        "retained-flag-cleared-on-subscribe",
        "a retained message sent on SUBSCRIBE has RETAIN 0 [MQTT-3.3.1-8]",
    ),
    // Will (listener).
    (
        "will-on-disconnect",
        "the will is published after a DISCONNECT [MQTT-3.1.2-10]",
    ),
    (
        "will-skipped-on-violation",
        "the will is not published when the broker closes for a protocol violation [MQTT-3.1.2-8]",
    ),
    (
        "will-retain-dropped",
        "a will with Will Retain 1 is published with RETAIN 0 [MQTT-3.1.2-17]",
    ),
    // Packet checks (listener).
    (
        "reserved-flags-ignored",
        "wrong reserved fixed-header flags are fixed up instead of closing the connection [MQTT-2.2.2-2]",
    ),
    (
        "publish-hash-topic-accepted",
        "a PUBLISH whose topic holds `#` is dropped without closing the connection [MQTT-3.3.2-2]",
    ),
    (
        "retained-leak",
        "on SUBSCRIBE also sends, as QoS 0, the retained messages that match another client's subscription but none of the subscriber's [MQTT-3.3.2-3]",
    ),
    (
        "keepalive-factor",
        "a silent client is closed after FACTOR x its keep-alive (default 1.75; `keepalive-factor=1.7`), not 1.5 x [MQTT-3.1.2-24]",
    ),
    (
        "keepalive-reset-skips",
        "the client's acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP; or, with a VALUE, packets of that type: `keepalive-reset-skips=8` for SUBSCRIBE) do not reset the keep-alive timer [MQTT-3.1.2-24]",
    ),
];

/// Misbehaviours for the harness's own tests (a broker that stops
/// answering, one that forgets state across a restart): not rule breaks the
/// plain suite could see, so the mutation test does not run them.
pub const FOR_HARNESS_TESTS: &[(&str, &str)] = &[
    (
        "qos2-redeliver-after-restart",
        "QoS 2 messages a client completed while connected are saved as still queued, so they come back after a restart",
    ),
    (
        "forget-connected-session",
        "the persistent session of a client connected at shutdown is dropped instead of saved",
    ),
    (
        "stall-after-topic",
        "=TEXT: after routing a PUBLISH whose topic contains TEXT, every later client is held without a CONNACK (the process stays up)",
    ),
    (
        "abort-on-topic",
        "=TEXT: a PUBLISH whose topic contains TEXT aborts the process (a crash for `toolkit fuzz` to find)",
    ),
];

#[cfg(feature = "mutants")]
mod imp {
    use std::cell::RefCell;

    thread_local! {
        static CURRENT: RefCell<Option<String>> =
            RefCell::new(std::env::var("BROKER_MUTANT").ok().filter(|m| !m.is_empty()));
    }

    pub(super) fn current() -> Option<String> {
        CURRENT.with(|c| c.borrow().clone())
    }

    pub(super) fn set(mutant: Option<String>) {
        CURRENT.with(|c| *c.borrow_mut() = mutant);
    }
}

/// Plants `mutant` (`NAME` or `NAME=VALUE`, a name from [`ALL`]) for the
/// broker code this thread runs from now on; `None` removes it.
#[cfg(feature = "mutants")]
pub fn set_for_this_thread(mutant: Option<&str>) {
    imp::set(mutant.map(str::to_owned));
}

/// The bug planted on this thread, to plant on a thread it starts (the
/// store's committer) with [`set_for_this_thread`].
#[cfg(feature = "mutants")]
pub fn on_this_thread() -> Option<String> {
    imp::current()
}

/// The name part of `NAME=VALUE`.
#[cfg(feature = "mutants")]
fn split(mutant: &str) -> (&str, Option<&str>) {
    match mutant.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (mutant, None),
    }
}

/// Whether the bug `name` is planted on this thread.
#[cfg(feature = "mutants")]
pub fn active(name: &str) -> bool {
    debug_assert!(
        ALL.iter().chain(FOR_HARNESS_TESTS).any(|(n, _)| *n == name),
        "mutant {name} is not listed in mutant::ALL or mutant::FOR_HARNESS_TESTS"
    );
    imp::current().is_some_and(|m| split(&m).0 == name)
}

/// Without the `mutants` feature no bug is ever planted.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn active(_name: &str) -> bool {
    false
}

/// The number given to the planted bug `name` (`NAME=VALUE`), if it is
/// planted on this thread and has one.
#[cfg(feature = "mutants")]
pub fn value(name: &str) -> Option<f64> {
    let current = imp::current()?;
    let (n, v) = split(&current);
    if n != name {
        return None;
    }
    v?.parse().ok()
}

/// Without the `mutants` feature no bug is ever planted.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn value(_name: &str) -> Option<f64> {
    None
}

/// The text given to the planted bug `name` (`NAME=TEXT`), if it is
/// planted on this thread and has one.
#[cfg(feature = "mutants")]
pub fn text(name: &str) -> Option<String> {
    let current = imp::current()?;
    let (n, v) = split(&current);
    if n != name {
        return None;
    }
    v.map(str::to_owned)
}

/// Without the `mutants` feature no bug is ever planted.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn text(_name: &str) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::{ALL, FOR_HARNESS_TESTS};

    /// The names the broker's sources ask for: every string literal passed
    /// to `mutant::active`, `mutant::value` or `mutant::text`, read from the files under
    /// `src/` (all of them, so a new file's hooks count too), this one
    /// excepted.
    fn hooked_names() -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("the broker's src/ is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("mutant.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
                for call in ["mutant::active(", "mutant::value(", "mutant::text("] {
                    for (at, _) in text.match_indices(call) {
                        // rustfmt may put the literal on the next line.
                        let rest = text[at + call.len()..].trim_start();
                        let Some(literal) = rest.strip_prefix('"') else {
                            continue;
                        };
                        let end = literal.find('"').expect("the literal is closed");
                        names.insert(literal[..end].to_owned());
                    }
                }
            }
        }
        names
    }

    fn listed() -> impl Iterator<Item = &'static str> {
        ALL.iter().chain(FOR_HARNESS_TESTS).map(|(name, _)| *name)
    }

    #[test]
    fn every_listed_mutant_has_a_hook() {
        let hooked = hooked_names();
        let unused: Vec<&str> = listed().filter(|n| !hooked.contains(*n)).collect();
        assert!(
            unused.is_empty(),
            "listed in mutant::ALL or FOR_HARNESS_TESTS but no hook asks for them: {unused:?}"
        );
    }

    #[test]
    fn every_hook_is_listed() {
        let listed: BTreeSet<&str> = listed().collect();
        let unlisted: Vec<String> = hooked_names()
            .into_iter()
            .filter(|n| !listed.contains(n.as_str()))
            .collect();
        assert!(
            unlisted.is_empty(),
            "hooks ask for mutants missing from mutant::ALL and FOR_HARNESS_TESTS: {unlisted:?}"
        );
    }

    #[test]
    fn names_are_unique_described_and_plain() {
        let mut seen = BTreeSet::new();
        for (name, description) in ALL.iter().chain(FOR_HARNESS_TESTS) {
            assert!(seen.insert(*name), "{name} is listed twice");
            assert!(!description.is_empty(), "{name} has no description");
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name:?}: names are lowercase words joined by '-'"
            );
        }
        assert!(
            ALL.len() >= 25,
            "the mutation test wants at least 25 planted bugs"
        );
    }
}
