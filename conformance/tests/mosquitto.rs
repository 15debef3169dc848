//! The whole built-in suite against a real mosquitto 2.0, judged against
//! `fixtures/baselines/mosquitto-2.0.toml`: every MUST scenario passes or
//! fails exactly as the baseline says, and no baseline entry passes.

#![allow(clippy::unwrap_used)]

mod common;

use conformance::outcome::Verdict;
use conformance::suite::Suite;
use testsupport::Mosquitto;

#[test]
fn builtin_suite_matches_mosquitto_baseline_plain_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (m, target) = common::mosquitto_with_tls(dir.path());
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    common::assert_matches_baseline(&report, &baseline, &m);
    // Only the auth scenarios (no credentials here), the mutual-TLS ones
    // (no client certificate) and the restart area (no restart command;
    // tests/restart.rs runs it) may be skipped: TLS ran.
    for r in &report.results {
        if let Verdict::Skipped { reason } = &r.verdict {
            assert!(
                r.tags.contains(&"auth".to_owned())
                    || reason.contains("--cert")
                    || r.area == "restart",
                "{} was skipped: {reason}",
                r.name
            );
        }
    }
    assert!(
        report
            .results
            .iter()
            .any(|r| r.tags.contains(&"tls".to_owned()) && r.passed())
    );
}

#[test]
fn builtin_suite_matches_mosquitto_baseline_with_the_shared_conf() {
    // mosquitto started from the mosquitto.conf the reference broker reads
    // in reference_broker.rs (common::everything; only the ports differ):
    // a password file, so the auth scenarios run, and a TLS listener with
    // require_certificate, so every TLS scenario runs with the client
    // certificate and the client-cert ones also check that a client
    // without one is refused at the TLS layer.
    let dir = tempfile::tempdir().unwrap();
    let everything = common::everything::everything_conf(dir.path());
    let m = Mosquitto::start(everything.conf.clone());
    let target = everything.target(m.port(), m.require_tls_port());
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    common::assert_matches_baseline(&report, &baseline, &m);
    // Only the restart area may be skipped (no restart command;
    // tests/restart.rs runs it).
    for r in &report.results {
        if let Verdict::Skipped { reason } = &r.verdict {
            assert_eq!(r.area, "restart", "{} was skipped: {reason}", r.name);
        }
    }
    let auth: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.tags.contains(&"auth".to_owned()))
        .collect();
    assert!(!auth.is_empty());
    for r in auth {
        assert!(r.passed(), "{} did not pass: {:?}", r.name, r.verdict);
    }
    let mutual: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.name.contains("client-cert"))
        .collect();
    assert!(mutual.len() >= 2, "no client-cert scenarios ran");
    for r in mutual {
        assert!(r.passed(), "{} did not pass: {:?}", r.name, r.verdict);
    }
}

#[test]
fn client_cert_refusal_fails_on_a_listener_that_does_not_require_one() {
    // The run presents a client certificate, but the listener does not
    // require one: a client without a certificate gets in, and the harness
    // must say so, while the scenario with the certificate still passes.
    let dir = tempfile::tempdir().unwrap();
    let (_m, target) = common::mosquitto_tls(dir.path(), false, true);
    let names = [
        "tls.client-cert-required".to_owned(),
        "tls.client-cert-accepted".to_owned(),
    ];
    let suite = Suite::builtin().unwrap().filter(&[], &names);
    let report = common::run(&suite, &target);
    let by_name = |n: &str| report.results.iter().find(|r| r.name == n).unwrap();
    let refused = by_name("tls.client-cert-required");
    let Verdict::Fail { failure } = &refused.verdict else {
        panic!("expected a failure, got {:?}", refused.verdict);
    };
    assert!(
        failure.observed.contains("CONNACK") || failure.observed.contains("still open"),
        "{failure:?}"
    );
    assert!(by_name("tls.client-cert-accepted").passed());
}

#[test]
fn client_cert_refusal_is_seen_when_tls_1_2_refuses_the_handshake() {
    // With TLS 1.3 the server refuses a client without a certificate by an
    // alert after the client's side of the handshake is done; with TLS 1.2
    // the handshake itself fails. Both are a refusal at the TLS layer. The
    // client without a certificate is limited to TLS 1.2 here (mosquitto's
    // tls_version only sets a minimum).
    let dir = tempfile::tempdir().unwrap();
    let (m, mut target) = common::mosquitto_with_mutual_tls(dir.path());
    let roots = credentials::tls::load_roots(&dir.path().join("ca.pem"), "--cafile").unwrap();
    let tls12_only = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    target.tls.as_mut().unwrap().config_without_cert = std::sync::Arc::new(tls12_only);
    let names = [
        "tls.client-cert-required".to_owned(),
        "tls.client-cert-accepted".to_owned(),
    ];
    let suite = Suite::builtin().unwrap().filter(&[], &names);
    let report = common::run(&suite, &target);
    for r in &report.results {
        assert!(r.passed(), "{}: {:?}\n{}", r.name, r.verdict, m.log());
    }
    let refused = report
        .results
        .iter()
        .find(|r| r.name == "tls.client-cert-required")
        .unwrap();
    assert!(
        refused
            .transcript
            .iter()
            .any(|l| l.text.contains("refused during the TLS handshake")),
        "{:?}",
        refused.transcript
    );
}
