//! The ACL file's parser and the three questions asked of it.

use std::path::Path;

use super::*;

fn acl(text: &str) -> Acl {
    Acl::parse(text, Path::new("acl")).expect("valid ACL")
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).expect("valid topic")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("valid filter")
}

const ANON: Identity<'static> = Identity {
    username: None,
    client_id: "anon",
};

fn user(name: &'static str) -> Identity<'static> {
    Identity {
        username: Some(name),
        client_id: "c1",
    }
}

fn reads(acl: &Acl, who: Identity<'_>, t: &str) -> bool {
    acl.allows(who, &topic(t), Need::Read)
}

fn writes(acl: &Acl, who: Identity<'_>, t: &str) -> bool {
    acl.allows(who, &topic(t), Need::Write)
}

const FILE: &str = "\
# anonymous clients
topic read public/#
topic public/chat

topic deny public/secret
user alice
topic readwrite alice/#
topic write alerts
topic deny alice/private/#
user bob
topic read  bob/in
pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny devices/%c/locked
";

#[test]
fn anonymous_section_is_the_lines_before_the_first_user() {
    let acl = acl(FILE);
    assert!(reads(&acl, ANON, "public/news"));
    assert!(!writes(&acl, ANON, "public/news"), "read only");
    // No access word: readwrite.
    assert!(writes(&acl, ANON, "public/chat"));
    assert!(reads(&acl, ANON, "public/chat"));
    // deny wins over the earlier read of public/#.
    assert!(!reads(&acl, ANON, "public/secret"));
    // A user's lines do not apply to anonymous clients, nor theirs to users.
    assert!(!reads(&acl, ANON, "alice/x"));
    assert!(!reads(&acl, user("alice"), "public/news"));
}

#[test]
fn user_sections() {
    let acl = acl(FILE);
    let alice = user("alice");
    assert!(reads(&acl, alice, "alice/a/b") && writes(&acl, alice, "alice/a/b"));
    assert!(writes(&acl, alice, "alerts"));
    assert!(!reads(&acl, alice, "alerts"), "write only");
    assert!(!reads(&acl, alice, "alice/private/diary"), "deny wins");
    assert!(
        !writes(&acl, alice, "alice/private"),
        "deny covers the parent"
    );
    // Blanks between the access word and the filter are skipped.
    assert!(reads(&acl, user("bob"), "bob/in"));
    assert!(!reads(&acl, user("bob"), "alice/a"));
    // A user with no section gets patterns only; nothing else is granted.
    assert!(!reads(&acl, user("carol"), "public/news"));
}

#[test]
fn patterns_fill_in_client_id_and_user_name() {
    let acl = acl(FILE);
    let dev = Identity {
        username: None,
        client_id: "d7",
    };
    assert!(writes(&acl, dev, "devices/d7/temp"));
    assert!(!writes(&acl, dev, "devices/d8/temp"));
    assert!(!writes(&acl, dev, "devices/d7/locked"), "pattern deny");
    // %u applies only with a user name.
    assert!(reads(&acl, user("carol"), "users/carol/inbox"));
    assert!(!reads(&acl, user("carol"), "users/dave/inbox"));
    assert!(!reads(&acl, dev, "users/%u/inbox"));
    // Patterns apply after a user's own section, to users too.
    assert!(writes(&acl, user("alice"), "devices/c1/x"));
}

/// As mosquitto 2.0.11 (checked by hand against it): a `/` in a user
/// name or client id is put in as it is, making more levels; a `+` or `#`
/// in either denies everything patterns would grant.
#[test]
fn names_with_separators_and_wildcards() {
    let acl = acl(FILE);
    let slash = Identity {
        username: Some("a/b"),
        client_id: "x/y",
    };
    assert!(reads(&acl, slash, "users/a/b/inbox"));
    assert!(writes(&acl, slash, "devices/x/y/z"));
    for who in [
        Identity {
            username: Some("a+b"),
            client_id: "c",
        },
        Identity {
            username: None,
            client_id: "#",
        },
    ] {
        assert!(!writes(&acl, who, "devices/c/x"));
        assert_eq!(
            acl.subscription(who, &filter("devices/c/#")),
            SubscribeCheck::Denied
        );
    }
}

#[test]
fn sys_topics_need_a_rule_naming_them() {
    let acl = acl("topic read #\nuser admin\ntopic read $SYS/#\n");
    assert!(!reads(&acl, ANON, "$SYS/broker/uptime"));
    assert!(reads(&acl, ANON, "a/b"));
    assert!(reads(&acl, user("admin"), "$SYS/broker/uptime"));
    assert_eq!(
        acl.subscription(ANON, &filter("$SYS/#")),
        SubscribeCheck::Denied
    );
    assert_eq!(
        acl.subscription(ANON, &filter("#")),
        SubscribeCheck::Readable
    );
}

#[test]
fn subscriptions_are_denied_readable_or_checked_per_message() {
    let acl = acl(FILE);
    let check = |who, f| acl.subscription(who, &filter(f));
    assert_eq!(check(ANON, "public/news"), SubscribeCheck::Readable);
    assert_eq!(check(ANON, "public/+/x"), SubscribeCheck::Readable);
    // public/# holds the denied public/secret.
    assert_eq!(check(ANON, "public/#"), SubscribeCheck::PerMessage);
    // `#` meets readable topics, and others.
    assert_eq!(check(ANON, "#"), SubscribeCheck::PerMessage);
    assert_eq!(check(ANON, "public/secret"), SubscribeCheck::Denied);
    assert_eq!(check(ANON, "nowhere/#"), SubscribeCheck::Denied);
    let alice = user("alice");
    // Write access alone grants no subscription.
    assert_eq!(check(alice, "alerts"), SubscribeCheck::Denied);
    assert_eq!(check(alice, "alice/private/#"), SubscribeCheck::Denied);
    assert_eq!(check(alice, "alice/a/#"), SubscribeCheck::Readable);
    // alice/+ matches alice/private, which the deny covers.
    assert_eq!(check(alice, "alice/+"), SubscribeCheck::PerMessage);
    assert_eq!(check(alice, "devices/c1/#"), SubscribeCheck::PerMessage);
    assert_eq!(check(alice, "devices/c1/temp"), SubscribeCheck::Readable);
    assert_eq!(check(alice, "devices/c1/locked"), SubscribeCheck::Denied);
}

/// The decision for a subscription agrees with per-topic checks: a
/// refused filter matches no readable topic, a readable one only readable
/// topics.
#[test]
fn subscription_decisions_agree_with_per_topic_checks() {
    let acl = acl(FILE);
    let topics = [
        "public/news",
        "public/secret",
        "public/chat",
        "alice/a",
        "alice/private/x",
        "alerts",
        "devices/c1/t",
        "devices/c1/locked",
        "devices/c2/t",
        "users/alice/inbox",
        "bob/in",
        "$SYS/x",
        "x",
    ];
    let filters = [
        "#",
        "public/#",
        "public/+",
        "alice/#",
        "alice/private/+",
        "devices/+/t",
        "devices/c1/#",
        "users/+/inbox",
        "+",
        "+/+",
        "$SYS/#",
        "bob/in",
        "alerts",
    ];
    for who in [ANON, user("alice"), user("bob"), user("nobody")] {
        for f in filters {
            let fl = filter(f);
            let readable: Vec<bool> = topics
                .iter()
                .filter(|t| fl.matches(&topic(t)))
                .map(|t| reads(&acl, who, t))
                .collect();
            match acl.subscription(who, &fl) {
                SubscribeCheck::Denied => assert!(!readable.contains(&true), "{who:?} {f}"),
                SubscribeCheck::Readable => assert!(!readable.contains(&false), "{who:?} {f}"),
                SubscribeCheck::PerMessage => {}
            }
        }
    }
}

#[test]
fn an_access_word_counts_only_with_a_filter_after_it() {
    // `topic read` alone names the topic `read`, readwrite.
    let acl = acl("topic read\n");
    assert!(writes(&acl, ANON, "read"));
}

#[test]
fn bad_lines_name_the_file_and_line() {
    for (text, line, says) in [
        (
            "topic read a\ntopic sometimes a/b\n",
            2,
            "access \"sometimes\"",
        ),
        ("\n\nuser\n", 3, "`user` without a name"),
        ("topic\n", 1, "`topic` without a filter"),
        ("# ok\nallow a/b\n", 2, "unknown keyword \"allow\""),
        ("topic read a/#/b\n", 1, "not a valid topic filter"),
        ("pattern write x%c/+y\n", 1, "not a valid topic filter"),
        // Quoted as written, not escaped as Rust's Debug would.
        ("C:\\acl a/b\n", 1, "unknown keyword \"C:\\acl\""),
        ("topic read a\\b/#/c\n", 1, "\"a\\b/#/c\" is not a valid"),
    ] {
        let err = Acl::parse(text, Path::new("/etc/acl")).expect_err(text);
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("ACL file /etc/acl line {line}: ")),
            "{shown}"
        );
        assert!(shown.contains(says), "{shown}");
    }
}

#[test]
fn fill_puts_names_in_whole() {
    let mut out = String::new();
    let who = Identity {
        username: Some("u/1"),
        client_id: "c",
    };
    fill("a/%c/%u/%x/%", who, &mut out);
    assert_eq!(out, "a/c/u/1/%x/%");
    fill("%u", ANON, &mut out);
    assert_eq!(out, "%u");
}
