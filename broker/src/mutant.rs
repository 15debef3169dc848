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
    (
        "keepalive-factor",
        "a silent client is closed after FACTOR x its keep-alive (default 1.75; `keepalive-factor=1.7`), not 1.5 x [MQTT-3.1.2-24]",
    ),
    (
        "keepalive-reset-skips",
        "a packet of type VALUE (default 4, PUBACK; `keepalive-reset-skips=8` for SUBSCRIBE) does not reset the keep-alive timer [MQTT-3.1.2-24]",
    ),
];

/// Misbehaviours for the harness's own tests (a broker that stops
/// answering, one that forgets state across a restart): not rule breaks the
/// plain suite could see, so the mutation test does not run them.
pub const FOR_HARNESS_TESTS: &[(&str, &str)] = &[];

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
