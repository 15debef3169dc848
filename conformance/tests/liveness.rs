//! Issue 13, item 1: a broker that stops answering mid-run. The in-process
//! reference broker is given the planted bug `stall-after-topic=TEXT`: once
//! it routes a PUBLISH whose topic holds TEXT (a scenario's topics hold its
//! name), no new client gets a CONNACK. The run must stop within seconds,
//! name that scenario as the likely cause and mark the rest "not run"; with
//! `continue_after_crash` it must wait for a broker restarted on the same
//! port and finish the suite.

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use conformance::baseline::{Baseline, Evaluation, Outcome, Status};
use conformance::outcome::Verdict;
use conformance::select::Selection;
use conformance::suite::{OutageHook, RunOptions, Suite};
use conformance::target::Target;
use in_process::InProcessBroker;
use testsupport::ReferenceOptions;

/// The scenario after which the broker stalls: it publishes on
/// `{t}/x`, and no other scenario's topic holds `/qos.qos1-delivery/`.
const CULPRIT: &str = "qos.qos1-delivery";
const STALL: &str = "stall-after-topic=/qos.qos1-delivery/";

/// The `qos` area of the built-in suite: the culprit is its second
/// scenario, so a run that did not stop would run some twenty more.
fn qos_suite() -> Suite {
    let suite = Suite::builtin().unwrap().select(&Selection {
        only: vec!["qos".to_owned()],
        skip: Vec::new(),
    });
    assert!(suite.scenarios.len() > 10);
    assert_eq!(suite.scenarios[1].name, CULPRIT);
    suite
}

fn stalling_broker(port: Option<u16>) -> InProcessBroker {
    InProcessBroker::start_mutant(
        ReferenceOptions {
            port,
            ..ReferenceOptions::default()
        },
        Some(STALL),
    )
}

#[test]
fn a_broker_that_stops_answering_stops_the_run_naming_the_scenario() {
    let broker = stalling_broker(None);
    let suite = qos_suite();
    let target = Target::plain("127.0.0.1", broker.addr().port());
    let started = Instant::now();
    let report = common::run_with(
        &suite,
        &target,
        &RunOptions {
            jobs: 1,
            ..RunOptions::default()
        },
    );
    let took = started.elapsed();
    // The scenario itself, one probe timeout (5 s), and nothing else.
    assert!(took < Duration::from_secs(15), "the run took {took:?}");
    assert_eq!(report.outages.len(), 1, "{:?}", report.outages);
    let outage = &report.outages[0];
    assert_eq!(outage.suspects, [CULPRIT]);
    assert!(outage.came_back_after.is_none());
    assert!(outage.probe.contains("CONNACK"), "{}", outage.probe);

    let eval = Evaluation::of(&report, &Baseline::default());
    assert_eq!(eval.status(), Status::BrokerUnavailable);
    assert_eq!(eval.outcome("qos.qos0-delivery"), Outcome::Passed);
    let Verdict::Error { message } = &report.results[1].verdict else {
        panic!("{:?}", report.results[1].verdict);
    };
    assert!(message.contains("broker became unavailable during this scenario"));
    // Everything after it: not run, not failed, not skipped.
    assert_eq!(eval.not_run.len(), suite.scenarios.len() - 2);
    assert!(eval.failures.len() == 1 && eval.skipped.is_empty());
    assert!(report.results[2..].iter().all(|r| r.not_run()));

    let text = common::text(&report, &Baseline::default());
    assert!(
        text.contains(&format!(
            "likely cause (running, or finished since the last good probe): {CULPRIT}"
        )),
        "{text}"
    );
    assert!(text.contains("BROKER UNAVAILABLE:"), "{text}");
    assert!(
        text.contains(&format!("{} not run", suite.scenarios.len() - 2)),
        "{text}"
    );
    let json = conformance::report::json(&report, &eval, &Baseline::default());
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["status"], "broker_unavailable");
    assert_eq!(json["summary"]["outages"][0]["suspects"][0], CULPRIT);
    assert_eq!(json["results"][2]["verdict"], "not_run");
    assert_eq!(json["results"][2]["outcome"], "not-run");
    let junit = conformance::report::junit(&report, &Baseline::default());
    assert!(junit.contains("not run: broker unavailable"), "{junit}");
    assert!(
        junit.contains(&format!("likely cause: {CULPRIT}")),
        "{junit}"
    );
}

#[test]
fn with_concurrent_scenarios_the_running_ones_are_all_suspects() {
    let broker = stalling_broker(None);
    let suite = qos_suite();
    let target = Target::plain("127.0.0.1", broker.addr().port());
    let report = common::run_with(&suite, &target, &RunOptions::default());
    assert_eq!(report.outages.len(), 1, "{:?}", report.outages);
    let suspects = &report.outages[0].suspects;
    assert!(suspects.iter().any(|s| s == CULPRIT), "{suspects:?}");
    assert!(suspects.len() <= 8 + 1, "{suspects:?}");
    let eval = Evaluation::of(&report, &Baseline::default());
    assert_eq!(eval.status(), Status::BrokerUnavailable);
    // Every scenario is accounted for, once.
    assert_eq!(report.results.len(), suite.scenarios.len());
}

#[test]
fn a_baselined_scenario_that_did_not_run_is_not_stale() {
    let broker = stalling_broker(None);
    let suite = qos_suite();
    let last = suite.scenarios.last().unwrap().name.clone();
    let baseline = Baseline::parse(
        "b.toml",
        &format!(
            "[[deviation]]\nscenario = \"{last}\"\nstatements = [\"MQTT-4.3.2-1\"]\nreason = \"r\"\n"
        ),
        &suite,
    )
    .unwrap();
    let target = Target::plain("127.0.0.1", broker.addr().port());
    let report = common::run_with(
        &suite,
        &target,
        &RunOptions {
            jobs: 1,
            ..RunOptions::default()
        },
    );
    let eval = Evaluation::of(&report, &baseline);
    assert!(eval.stale.is_empty(), "{:?}", eval.stale);
    assert_eq!(eval.outcome(&last), Outcome::NotRun);
}

#[test]
fn continue_after_crash_resumes_on_a_broker_restarted_on_the_same_port() {
    let broker = stalling_broker(None);
    let port = broker.addr().port();
    let suite = qos_suite();
    let target = Target::plain("127.0.0.1", port);
    let (outage_tx, outage_rx) = mpsc::channel();
    let outage_tx = std::sync::Mutex::new(outage_tx);
    let options = RunOptions {
        jobs: 1,
        continue_after_crash: Some(Duration::from_secs(30)),
        on_outage: Some(OutageHook(Arc::new(move |o| {
            let _ = outage_tx.lock().unwrap().send(o.suspects.clone());
        }))),
        ..RunOptions::default()
    };
    let run = {
        let suite = suite.clone();
        std::thread::spawn(move || common::run_with(&suite, &target, &options))
    };
    // The supervisor: once the run reports the outage, stop the stalled
    // broker and start a healthy one on the same port.
    let suspects = outage_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(suspects, [CULPRIT]);
    drop(broker);
    let healthy = InProcessBroker::start(ReferenceOptions {
        port: Some(port),
        ..ReferenceOptions::default()
    });
    let report = run.join().unwrap();
    drop(healthy);

    assert_eq!(report.outages.len(), 1, "{:?}", report.outages);
    assert!(report.outages[0].came_back_after.is_some());
    let eval = Evaluation::of(&report, &Baseline::default());
    assert_eq!(eval.status(), Status::BrokerUnavailable);
    assert!(eval.not_run.is_empty(), "{:?}", eval.not_run);
    let Verdict::Error { message } = &report.results[1].verdict else {
        panic!("{:?}", report.results[1].verdict);
    };
    assert!(message.contains("broker became unavailable during this scenario"));
    // The rest ran against the healthy broker: no failure but the culprit.
    assert_eq!(
        eval.failures,
        [CULPRIT],
        "{}",
        common::text(&report, &Baseline::default())
    );
    assert!(
        eval.passed.len() >= suite.scenarios.len() - 4,
        "{:?}",
        eval.passed
    );
}

/// The probe itself: a live broker passes; a server that accepts but never
/// answers fails it within the limit, saying what did not come; a port
/// nothing listens on fails it at once.
#[test]
fn the_probe_passes_a_live_broker_and_says_what_a_silent_one_did_not_send() {
    use conformance::liveness::probe;
    let broker = InProcessBroker::start(ReferenceOptions::default());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let closed_port = testsupport::free_port();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limit = Duration::from_millis(300);
    rt.block_on(async {
        let live = Target::plain("127.0.0.1", broker.addr().port());
        probe(&live, "t0", 1, Duration::from_secs(5)).await.unwrap();

        let started = Instant::now();
        let err = probe(&Target::plain("127.0.0.1", silent_port), "t0", 2, limit)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(err.to_string(), "no CONNACK within 0.3s");

        let err = probe(&Target::plain("127.0.0.1", closed_port), "t0", 3, limit)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    });
    drop(silent);
}
