//! The whole built-in suite against this workspace's own broker, with NO
//! baseline: the reference broker must pass every MUST scenario, and every
//! scenario must run — none skipped for want of configuration. The broker
//! runs in this process (see `in_process`), or is the binary `$BROKER_BIN`
//! names.
//!
//! This run stands in for broker tests that repeated scenarios: the
//! scenarios in [`REPLACES_BROKER_TESTS`] must pass here, whatever their
//! level, so that behaviour stays checked against the broker.
//!
//! The broker gets everything the suite can use (see `full_reference`:
//! plain and mutual-TLS listeners, a password file), so the auth, TLS and
//! cross-listener scenarios run too.

#![allow(clippy::unwrap_used)]

mod common;
mod full_reference;
mod in_process;

use conformance::baseline::{Baseline, Evaluation, Status};
use conformance::model::Level;
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::suite::{RunReport, Suite};
use conformance::target::{Carrier, Target, WebSocketTarget};
use in_process::Reference;
use testsupport::ReferenceOptions;

/// Scenarios that replaced tests of the broker crate (`broker/tests/`)
/// checking the same behaviour against the broker; each must pass against
/// the reference broker, not merely not fail (a MAY or SHOULD scenario's
/// failure is only an observation, and "not applicable" checks nothing).
/// The comment names the broker test it replaced.
const REPLACES_BROKER_TESTS: &[&str] = &[
    // protocol.rs qos0_1_2_publish_reach_a_subscriber_at_min_qos
    "qos.qos0-delivery",
    "qos.qos1-delivery",
    "qos.qos2-delivery",
    "qos.downgrade-2-to-1",
    // protocol.rs qos2_delivery_to_subscriber_runs_the_four_steps_exactly_once
    "qos.qos2-duplicate-publish",
    // protocol.rs unsupported_protocol_level_gets_connack_0x01
    "connect.unsupported-level",
    // protocol.rs empty_client_id_rules
    "connect.empty-client-id-persistent",
    "connect.empty-client-id-assigned",
    // protocol.rs will_is_not_sent_after_disconnect_but_is_after_socket_close
    "will.not-after-disconnect",
    "will.on-drop",
    // protocol.rs keep_alive_expiry_closes_and_fires_the_will
    "keepalive.timeout-closes",
    "will.on-keepalive-timeout",
    // protocol.rs retained_messages_stored_replaced_cleared
    "retained.qos0-stored",
    "retained.cleared-by-empty-payload",
    "retained.delivered-on-subscribe",
    "retained.live-forward-clears-flag",
    // protocol.rs packets_sent_in_the_same_write_as_connect_are_handled
    "framing.connect-subscribe-one-write",
    "framing.connect-publish-qos1-one-write",
    // tls.rs require_certificate_refuses_clients_without_one
    "tls.client-cert-required",
    "tls.client-cert-accepted",
    // tls.rs tls_subscriber_gets_plain_publisher_messages
    "cross.plain-to-tls",
];

/// The edge scenarios of issue 13 (U+0000 in filters, U+FEFF leading a
/// topic or filter, 65,535-byte and over-long strings): each allows the
/// broker a choice ("not applicable" on a refused long client id, a SUBACK
/// before the close...), so a plain "no MUST failure" would let them check
/// nothing. The reference broker takes the strict branch of each, so each
/// must pass here.
const ISSUE_13_EDGES: &[&str] = &[
    "topics.bom-leading-topic-name",
    "topics.bom-leading-filter",
    "topics.long-topic",
    "subscribe.filter-65535-bytes",
    "connect.client-id-65535-bytes",
    "connect.will-topic-65535-bytes",
    "connect.will-message-65535-bytes",
    "connect.username-password-65535-bytes",
    "malformed.subscribe-filter-null",
    "malformed.unsubscribe-filter-null",
    "malformed.connect-client-id-overlong",
    "malformed.connect-will-topic-overlong",
    "malformed.connect-will-message-overlong",
    "malformed.connect-username-overlong",
    "malformed.connect-password-overlong",
    "malformed.publish-topic-overlong",
    "malformed.subscribe-filter-overlong",
    "malformed.unsubscribe-filter-overlong",
    "retained.replaced-by-newer",
];

/// The one-line summary `toolkit conformance` ends with (the last line of
/// the text report), for the test log.
fn summary(report: &RunReport, baseline: &Baseline) -> String {
    let text = common::text(report, baseline);
    text.lines().last().unwrap_or_default().to_owned()
}

/// The names of the scenarios in `report` that `pick` picks.
fn names_where(report: &RunReport, pick: impl Fn(&ScenarioResult) -> bool) -> Vec<&str> {
    report
        .results
        .iter()
        .filter(|r| pick(r))
        .map(|r| r.name.as_str())
        .collect()
}

/// Asserts what the reference broker owes the suite: no MUST failure, no
/// harness error, nothing skipped; the failure message carries the text
/// report (every failure with its transcript) and the broker's log.
fn assert_reference_passes(report: &RunReport, broker: &Reference) {
    let baseline = Baseline::default();
    let eval = Evaluation::of(report, &baseline);
    println!("reference broker: {}", summary(report, &baseline));
    let explain = || {
        format!(
            "{}\n--- broker log (last 200 lines) ---\n{}",
            common::text(report, &baseline),
            tail(&broker.log(), 200)
        )
    };
    let must_failures = names_where(report, |r| r.level == Level::Must && r.failed());
    assert!(
        must_failures.is_empty(),
        "MUST scenarios failed against the reference broker: {must_failures:?}\n{}",
        explain()
    );
    let errors = names_where(report, |r| matches!(r.verdict, Verdict::Error { .. }));
    assert!(
        errors.is_empty(),
        "the harness could not carry out {errors:?}\n{}",
        explain()
    );
    let skipped: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Skipped { reason } => Some(format!("{}: {reason}", r.name)),
            _ => None,
        })
        .collect();
    assert!(
        skipped.is_empty(),
        "scenarios were skipped; the run must provide what they need:\n{}",
        skipped.join("\n")
    );
    assert_eq!(eval.status(), Status::Pass, "{}", explain());
    common::assert_no_strays(report, &baseline);
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn whole_suite_passes_against_the_reference_broker_with_no_baseline() {
    let _turn = whole_suite_turn();
    let dir = tempfile::tempdir().unwrap();
    let (broker, target) = full_reference::reference_with_everything(dir.path(), None);
    // The restart area needs a broker this test can restart: it runs in
    // tests/restart.rs, against the same broker restarted on its port.
    let suite = whole_suite();
    let report = common::run(&suite, &target);
    assert_eq!(report.results.len(), suite.scenarios.len());
    assert_reference_passes(&report, &broker);
    // The broker read the mosquitto.conf mosquitto.rs starts mosquitto
    // with: its notes name that file's lines.
    assert!(
        broker.log().contains("log_dest is ignored"),
        "the mosquitto.conf was not read:\n{}",
        broker.log()
    );
    assert_required_scenarios_pass(&report);
}

/// Held by each whole-suite run (over TCP, ws, wss) for its duration: the
/// three take turns, so that the timing scenarios of one are not judged on
/// a machine the other two keep busy.
static WHOLE_SUITE_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for this test's turn at a whole-suite run.
fn whole_suite_turn() -> std::sync::MutexGuard<'static, ()> {
    // A run that panicked still ends its turn.
    WHOLE_SUITE_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The whole built-in suite but the restart area, which needs a broker the
/// test can restart (tests/restart.rs runs it).
fn whole_suite() -> Suite {
    Suite::builtin()
        .unwrap()
        .select(&conformance::select::Selection {
            only: Vec::new(),
            skip: vec!["restart".to_owned()],
        })
}

/// The whole suite over the broker's WebSocket listener (issue 16, item
/// 3): `ws://`, or `wss://` with the run's one TLS client set-up; the TLS
/// scenarios still run on the TLS listener. Same bar as over TCP.
fn whole_suite_passes_over_websocket(secure: bool) {
    let _turn = whole_suite_turn();
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut target) = full_reference::reference_with_websockets(dir.path());
    let (addr, ws) = if secure {
        let tls = target.tls.as_ref().unwrap();
        (
            broker.wss_addr().unwrap(),
            WebSocketTarget::secure("/mqtt", tls),
        )
    } else {
        (broker.ws_addr().unwrap(), WebSocketTarget::plain("/mqtt"))
    };
    target.port = addr.port();
    let url = ws.url("127.0.0.1", addr.port());
    target.carrier = Carrier::WebSocket(ws);
    let suite = whole_suite();
    let report = common::run(&suite, &target);
    assert_eq!(report.results.len(), suite.scenarios.len());
    assert_eq!(
        report.broker_target.websocket.as_deref(),
        Some(url.as_str())
    );
    assert_reference_passes(&report, &broker);
    assert_required_scenarios_pass(&report);
}

#[test]
fn whole_suite_passes_over_ws_against_the_reference_broker() {
    whole_suite_passes_over_websocket(false);
}

#[test]
fn whole_suite_passes_over_wss_against_the_reference_broker() {
    whole_suite_passes_over_websocket(true);
}

/// The scenarios a whole-suite run must see pass, not merely not fail:
/// those needing the extra configuration, a mutual-TLS one, the edges of
/// issue 13 and those standing in for dropped broker tests.
fn assert_required_scenarios_pass(report: &RunReport) {
    // The areas that need the extra configuration did run and pass.
    for tag in ["auth", "tls", "cross"] {
        let ran: Vec<_> = report
            .results
            .iter()
            .filter(|r| r.tags.iter().any(|t| t == tag))
            .collect();
        assert!(!ran.is_empty(), "no {tag} scenario in the suite");
        for r in ran {
            assert!(
                r.passed() || r.level != Level::Must,
                "{} did not pass: {:?}",
                r.name,
                r.verdict
            );
        }
    }
    assert!(
        report
            .results
            .iter()
            .any(|r| r.name.contains("client-cert") && r.passed()),
        "no mutual-TLS scenario passed"
    );
    let not_passed: Vec<String> = ISSUE_13_EDGES
        .iter()
        .map(|name| {
            report
                .results
                .iter()
                .find(|r| r.name == *name)
                .unwrap_or_else(|| panic!("{name} is not in the suite"))
        })
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {:?}", r.name, r.verdict))
        .collect();
    assert!(
        not_passed.is_empty(),
        "edge scenarios of issue 13 did not pass:\n{}",
        not_passed.join("\n")
    );
    for name in REPLACES_BROKER_TESTS {
        let r = report
            .results
            .iter()
            .find(|r| r.name == *name)
            .unwrap_or_else(|| panic!("{name} is not in the suite; broker tests relied on it"));
        assert!(
            r.passed(),
            "{name} stands in for a dropped broker test and must pass: {:?}",
            r.verdict
        );
    }
}

#[test]
fn tls_scenarios_pass_against_the_reference_broker_with_its_generated_certificate() {
    // The broker's out-of-the-box TLS listener: the certificate it generates
    // on first run, no client certificates asked for. Only the mutual-TLS
    // scenarios have nothing to check here (they need a listener that
    // requires client certificates) and are skipped; the rest must pass.
    let broker = Reference::start(ReferenceOptions {
        tls: true,
        ..ReferenceOptions::default()
    });
    let mut target = Target::plain("127.0.0.1", broker.addr().port());
    target.tls = Some(
        conformance::target::tls_with_ca(
            "127.0.0.1",
            broker.tls_addr().unwrap().port(),
            &broker.ca_file(),
            None,
        )
        .unwrap(),
    );
    let suite = Suite::builtin()
        .unwrap()
        .filter(&["tls".to_owned(), "cross".to_owned()], &[]);
    let report = common::run(&suite, &target);
    let baseline = Baseline::default();
    let eval = Evaluation::of(&report, &baseline);
    println!(
        "reference broker, generated certificate: {}",
        summary(&report, &baseline)
    );
    assert_eq!(
        eval.status(),
        Status::Pass,
        "{}\n--- broker log ---\n{}",
        common::text(&report, &baseline),
        broker.log()
    );
    for r in &report.results {
        match &r.verdict {
            Verdict::Pass => {}
            Verdict::Skipped { reason } => assert!(
                r.name.contains("client-cert") && reason.contains("--cert"),
                "{} was skipped: {reason}",
                r.name
            ),
            other => panic!("{}: {other:?}", r.name),
        }
    }
    assert!(
        eval.passed.len() >= 5,
        "too few TLS scenarios ran: {eval:?}"
    );
}

#[test]
fn the_broker_log_is_captured_for_failure_messages() {
    // The failure messages above carry the broker's log; in-process, it is
    // captured from the broker's own threads. The listeners log once the
    // broker runs, just after it reports its addresses.
    let broker = Reference::start(ReferenceOptions::default());
    let line = format!("listening transport=plain addr={}", broker.addr());
    assert!(
        broker.wait_for_log(&line, std::time::Duration::from_secs(10)),
        "no {line:?} in:\n{}",
        broker.log()
    );
}
