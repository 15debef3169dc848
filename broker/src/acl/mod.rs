//! Access control: mosquitto's `acl_file` (`--acl-file`), what each client
//! may read and write.
//!
//! Once an ACL file is in force, what it does not grant is denied, as in
//! mosquitto 2.0. A client's rules are those of its `user` section (the
//! lines before the first `user` line for a client without a user name),
//! then the `pattern` lines, which apply to every client with `%c` standing
//! for its client id and `%u` for its user name. Within each of the two,
//! a matching `deny` wins; otherwise the first rule matching with the
//! access asked for grants it. A pattern with `%u` never applies to a
//! client without a user name, and a client whose id or user name holds
//! `+` or `#` gets nothing from patterns at all (it could otherwise widen
//! its own filters); a `/` in either is put in as it is, making more
//! levels, as mosquitto 2.0.11 does.
//!
//! The broker asks three things ([`Acl::allows`], [`Acl::subscription`]):
//! may this client write a PUBLISH's topic, may it read a message's topic
//! (per delivery, retained messages and `$SYS` included), and what does a
//! SUBSCRIBE's filter get. A filter no readable topic matches is refused
//! with 0x80; a filter whose every topic is readable is granted and marked
//! so, and its deliveries need no check; any other is granted and each
//! message it matches is checked (a `#` subscriber sees what it may read).
//! mosquitto 2.0.11 itself grants every SUBSCRIBE (its default ACL check
//! passes subscriptions) and filters deliveries only; docs/broker.md says
//! where the two differ.
//!
//! The file format and its errors are in `parse.rs`; how two filters
//! relate, for the SUBSCRIBE decision, in `filters.rs`.

mod filters;
mod parse;

use std::collections::HashMap;

use mqtt_codec::topic::{TopicFilter, TopicName, matches_text};

pub use parse::AclFileError;

/// The access a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    /// `deny`: matching topics are refused whatever else grants them.
    Deny,
}

impl Access {
    fn grants(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Access::ReadWrite, _) | (Access::Read, Need::Read) | (Access::Write, Need::Write)
        )
    }
}

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Receive messages published to it.
    Read,
    /// Publish to it (a will included).
    Write,
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone)]
struct Rule {
    /// The filter as written (a pattern with its `%c`/`%u`).
    filter: Box<str>,
    access: Access,
    /// A pattern holding `%c` or `%u`, filled in per client.
    substitutes: bool,
    /// A pattern holding `%u`: never applies to a client without a name.
    needs_user: bool,
}

/// One section's rules, `deny` ones apart since they are checked first.
#[derive(Debug, Clone, Default)]
struct Rules {
    deny: Vec<Rule>,
    grant: Vec<Rule>,
}

impl Rules {
    fn push(&mut self, rule: Rule) {
        if rule.access == Access::Deny {
            self.deny.push(rule);
        } else {
            self.grant.push(rule);
        }
    }

    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.grant.is_empty()
    }
}

/// Who is asking: what the ACL's sections and patterns are chosen by.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The CONNECT's user name (or the certificate's name with
    /// `--identity-as-username`); `None` for an anonymous client.
    pub username: Option<&'a str>,
    /// The client id.
    pub client_id: &'a str,
}

impl Identity<'_> {
    /// An id or name with a wildcard could widen a pattern's filter: such
    /// a client gets nothing from patterns, as in mosquitto.
    fn dangerous(&self) -> bool {
        let wild = |s: &str| s.contains(['+', '#']);
        self.username.is_some_and(wild) || wild(self.client_id)
    }
}

/// What a SUBSCRIBE's filter gets from the ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeCheck {
    /// No topic the filter matches may be read: return code 0x80.
    Denied,
    /// Every topic it matches may be read: deliveries need no check.
    Readable,
    /// Some may be read: each delivery is checked.
    PerMessage,
}

/// A parsed ACL file: see the module's documentation for its meaning.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// The lines before the first `user` line.
    anonymous: Rules,
    /// Each `user` section (a name given twice adds to one section).
    users: HashMap<Box<str>, Rules>,
    /// The `pattern` lines, wherever they stand.
    patterns: Rules,
}

/// A rule as it applies to one client: its filter with `%c`/`%u` filled
/// in, and whether it grants or denies the access asked.
struct Applied {
    filter: String,
    deny: bool,
    /// Denies every topic, `$` ones included (a client with a wildcard in
    /// its names, once patterns are reached).
    all: bool,
}

impl Applied {
    fn covers(&self, filter: &str) -> bool {
        self.all || filters::covers(&self.filter, filter)
    }

    fn intersects(&self, filter: &str) -> bool {
        self.all || filters::intersects(&self.filter, filter)
    }
}

impl Acl {
    /// How many rules the file holds, for the log line on loading.
    pub fn rule_count(&self) -> usize {
        let count = |r: &Rules| r.deny.len() + r.grant.len();
        count(&self.anonymous)
            + count(&self.patterns)
            + self.users.values().map(count).sum::<usize>()
    }

    /// The section that applies to `who`, if the file has one.
    fn section(&self, who: Identity<'_>) -> Option<&Rules> {
        match who.username {
            Some(name) => self.users.get(name),
            None => Some(&self.anonymous),
        }
    }

    /// Whether `who` may `need` `topic`.
    pub fn allows(&self, who: Identity<'_>, topic: &TopicName, need: Need) -> bool {
        let topic = topic.as_str();
        if let Some(rules) = self.section(who) {
            if rules.deny.iter().any(|r| matches_text(&r.filter, topic)) {
                return false;
            }
            if rules
                .grant
                .iter()
                .any(|r| r.access.grants(need) && matches_text(&r.filter, topic))
            {
                return true;
            }
        }
        if self.patterns.is_empty() || who.dangerous() {
            return false;
        }
        let mut filled = String::new();
        let mut hits = |r: &Rule| {
            if r.needs_user && who.username.is_none() {
                return false;
            }
            if !r.substitutes {
                return matches_text(&r.filter, topic);
            }
            fill(&r.filter, who, &mut filled);
            matches_text(&filled, topic)
        };
        if self.patterns.deny.iter().any(&mut hits) {
            return false;
        }
        self.patterns
            .grant
            .iter()
            .filter(|r| r.access.grants(need))
            .any(hits)
    }

    /// What `who`'s SUBSCRIBE to `filter` gets.
    ///
    /// The rules that decide a read, in the order they are tried (first
    /// match wins), are laid out with their filters filled in; then:
    /// denied when every readable rule meeting the filter comes after a
    /// `deny` that covers it whole (or none meets it), readable when a
    /// readable rule covers it whole with no `deny` before it touching it,
    /// checked per message otherwise.
    pub fn subscription(&self, who: Identity<'_>, filter: &TopicFilter) -> SubscribeCheck {
        let filter = filter.as_str();
        let order = self.read_order(who);
        let denied_from = order
            .iter()
            .position(|a| a.deny && a.covers(filter))
            .unwrap_or(order.len());
        let reachable = order[..denied_from]
            .iter()
            .any(|a| !a.deny && a.intersects(filter));
        if !reachable {
            return SubscribeCheck::Denied;
        }
        for a in &order {
            if a.deny {
                if a.intersects(filter) {
                    break;
                }
            } else if a.covers(filter) {
                return SubscribeCheck::Readable;
            }
        }
        SubscribeCheck::PerMessage
    }

    /// The rules deciding a read for `who`, in the order [`Acl::allows`]
    /// tries them, patterns filled in. A client whose names hold a wildcard
    /// ends its list with a deny of everything, standing for the refusal of
    /// all patterns.
    fn read_order(&self, who: Identity<'_>) -> Vec<Applied> {
        let mut order = Vec::new();
        let plain = |r: &Rule, deny| Applied {
            filter: r.filter.to_string(),
            deny,
            all: false,
        };
        if let Some(rules) = self.section(who) {
            order.extend(rules.deny.iter().map(|r| plain(r, true)));
            order.extend(
                rules
                    .grant
                    .iter()
                    .filter(|r| r.access.grants(Need::Read))
                    .map(|r| plain(r, false)),
            );
        }
        if self.patterns.is_empty() {
            return order;
        }
        if who.dangerous() {
            order.push(Applied {
                filter: String::new(),
                deny: true,
                all: true,
            });
            return order;
        }
        let applies = |r: &&Rule| !(r.needs_user && who.username.is_none());
        let filled = |r: &Rule, deny| {
            let mut filter = String::new();
            fill(&r.filter, who, &mut filter);
            Applied {
                filter,
                deny,
                all: false,
            }
        };
        order.extend(
            self.patterns
                .deny
                .iter()
                .filter(applies)
                .map(|r| filled(r, true)),
        );
        order.extend(
            self.patterns
                .grant
                .iter()
                .filter(applies)
                .filter(|r| r.access.grants(Need::Read))
                .map(|r| filled(r, false)),
        );
        order
    }
}

/// Writes `pattern` into `out` with `%c` replaced by the client id and `%u`
/// by the user name (left as it is without one), as mosquitto does: the
/// text is put in whole, `/` included.
fn fill(pattern: &str, who: Identity<'_>, out: &mut String) {
    out.clear();
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match (after.as_bytes().first(), who.username) {
            (Some(b'c'), _) => out.push_str(who.client_id),
            (Some(b'u'), Some(name)) => out.push_str(name),
            _ => {
                out.push('%');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests;
