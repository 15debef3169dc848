//! Shared set-up for the conformance crate's integration tests: TLS files
//! made with `credentials::certs`, a mosquitto with plain and TLS listeners (one
//! variant requiring client certificates), and a run of the built-in suite
//! judged against mosquitto's baseline.

#![allow(dead_code, clippy::unwrap_used)]

pub mod everything;
pub mod restart;

use std::path::{Path, PathBuf};

use conformance::baseline::{Baseline, Evaluation, Status};
use conformance::suite::{RunOptions, RunReport, Suite};
use conformance::target::{ClientIdentity, Target};
use credentials::certs::{CertificateAuthority, SubjectNames, Validity};
use testsupport::{Mosquitto, MosquittoOptions, MosquittoTls};

pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Where [`tls_files`] writes its files in `dir`.
pub fn tls_files_in(dir: &Path) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}

/// A CA, a server certificate for `localhost` / 127.0.0.1 and a client
/// certificate for mutual TLS, written to `dir` (made by `credentials::certs`,
/// the code behind `toolkit certs`).
pub fn tls_files(dir: &Path) -> TlsFiles {
    let validity = Validity::days_from_now(2);
    let ca = CertificateAuthority::generate("conformance test CA", validity).unwrap();
    let server = ca
        .issue_server(&SubjectNames::localhost(), validity)
        .unwrap();
    let client = ca.issue_client("conformance-client", validity).unwrap();
    let files = tls_files_in(dir);
    std::fs::write(&files.ca, ca.cert_pem()).unwrap();
    std::fs::write(&files.cert, &server.cert_pem).unwrap();
    std::fs::write(&files.key, &server.key_pem).unwrap();
    std::fs::write(&files.client_cert, &client.cert_pem).unwrap();
    std::fs::write(&files.client_key, &client.key_pem).unwrap();
    files
}

/// A mosquitto with a plain and a TLS listener, and the target reaching both.
pub fn mosquitto_with_tls(dir: &Path) -> (Mosquitto, Target) {
    mosquitto_tls(dir, false, false)
}

/// A mosquitto whose TLS listener requires client certificates
/// (`require_certificate true`), and a target presenting one.
pub fn mosquitto_with_mutual_tls(dir: &Path) -> (Mosquitto, Target) {
    mosquitto_tls(dir, true, true)
}

/// A mosquitto with a plain and a TLS listener (which, with
/// `require_certificate`, requires client certificates), and the target
/// reaching both; with `present_cert` the target presents the client
/// certificate of [`tls_files`].
pub fn mosquitto_tls(
    dir: &Path,
    require_certificate: bool,
    present_cert: bool,
) -> (Mosquitto, Target) {
    let files = tls_files(dir);
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(MosquittoTls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            cafile: files.ca.clone(),
            require_certificate,
        }),
        ..MosquittoOptions::default()
    });
    let identity =
        present_cert.then(|| ClientIdentity::load(&files.client_cert, &files.client_key).unwrap());
    let mut target = Target::plain("127.0.0.1", m.port());
    target.tls = Some(
        conformance::target::tls_with_ca("127.0.0.1", m.tls_port().unwrap(), &files.ca, identity)
            .unwrap(),
    );
    (m, target)
}

/// The repository's mosquitto baseline.
pub fn mosquitto_baseline(suite: &Suite) -> Baseline {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/baselines/mosquitto-2.0.toml");
    Baseline::load(&path, suite).unwrap()
}

/// Runs `suite` on a fresh runtime, 8 scenarios at a time.
pub fn run(suite: &Suite, target: &Target) -> RunReport {
    run_with(
        suite,
        target,
        &RunOptions {
            jobs: 8,
            ..RunOptions::default()
        },
    )
}

/// Runs `suite` on a fresh runtime with `options`.
pub fn run_with(suite: &Suite, target: &Target, options: &RunOptions) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(conformance::suite::run(suite, target, options, |_| {}))
}

/// Asserts that `report` is what `baseline` expects of mosquitto `m`, and
/// that no scenario saw a stray delivery (mosquitto makes none, so one would
/// be a false report of the harness), showing the text report and
/// mosquitto's log when it is not.
pub fn assert_matches_baseline(report: &RunReport, baseline: &Baseline, m: &Mosquitto) {
    assert_eq!(
        Evaluation::of(report, baseline).status(),
        Status::Pass,
        "{}\n--- mosquitto log ---\n{}",
        text(report, baseline),
        m.log()
    );
    assert_no_strays(report, baseline);
}

/// Asserts that no scenario of `report` saw a stray delivery.
pub fn assert_no_strays(report: &RunReport, baseline: &Baseline) {
    let seen: Vec<&str> = report
        .results
        .iter()
        .filter(|r| !r.strays.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        seen.is_empty(),
        "stray deliveries in {seen:?}\n{}",
        text(report, baseline)
    );
}

/// The text report, for assertion messages.
pub fn text(report: &RunReport, baseline: &Baseline) -> String {
    let eval = Evaluation::of(report, baseline);
    conformance::report::text(report, &eval, baseline)
}

/// Runs the named built-in scenarios, `jobs` at a time, against plain MQTT
/// on 127.0.0.1:`port` (a proxy in front of a broker, in the fault tests),
/// on `rt`; panics if a name matches no scenario.
pub fn run_named(
    rt: &tokio::runtime::Runtime,
    port: u16,
    names: &[&str],
    jobs: usize,
) -> Vec<conformance::outcome::ScenarioResult> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let suite = Suite::builtin().unwrap().filter(&[], &names);
    assert_eq!(
        suite.scenarios.len(),
        names.len(),
        "a scenario name is wrong"
    );
    let target = Target::plain("127.0.0.1", port);
    let report = rt.block_on(conformance::suite::run(
        &suite,
        &target,
        &RunOptions {
            jobs,
            ..RunOptions::default()
        },
        |_| {},
    ));
    report.results
}
