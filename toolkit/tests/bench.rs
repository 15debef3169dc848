//! `toolkit bench` against a real mosquitto: small runs whose counts must add
//! up exactly, a run where every message is lost, TLS, authentication, the
//! connections scenario, the HDR output and `compare`. Nothing here is timed;
//! speed is measured by `just bench`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command as StdCommand;

use common::toolkit;
use serde_json::Value;
use testsupport::{Mosquitto, MosquittoOptions};

/// Mosquitto's default queue (1000 QoS 1/2 messages per client) drops
/// messages a publisher sends faster than the subscribers acknowledge them;
/// these tests check our counting, not that limit, so the queue is made
/// large. Its in-flight limit stays at the default 20, which is also
/// `--inflight`'s default.
fn options() -> MosquittoOptions {
    MosquittoOptions {
        extra_config: "max_queued_messages 100000\n".into(),
        ..MosquittoOptions::default()
    }
}

fn mosquitto() -> Mosquitto {
    Mosquitto::start(options())
}

/// Runs `toolkit bench <args> --json --quiet` and returns the exit status
/// (0 passed, 7 delivery broken, 3 connections failed) and the parsed report.
/// A command line written as one string, split at whitespace.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn bench(port: u16, args: &[&str]) -> (i32, Value) {
    let out = toolkit()
        .arg("bench")
        .args(args)
        .args(["--port", &port.to_string(), "--json", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

fn totals(r: &Value) -> &Value {
    &r["delivery"]["totals"]
}

#[test]
fn fan_in_qos1_counts_add_up() {
    let m = mosquitto();
    let (code, r) = bench(m.port(), &["fan-in", "-c", "3", "-n", "200", "-q", "1"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["passed"], true);
    assert_eq!(r["scenario"], "fan-in");
    assert_eq!(r["settings"]["publishers"], 3);
    assert_eq!(r["settings"]["subscribers"], 1);
    assert_eq!(r["throughput"]["sent"]["messages"], 600);
    assert_eq!(r["throughput"]["delivered"]["messages"], 600);
    let t = totals(&r);
    assert_eq!(
        (t["expected"].as_u64(), t["delivered"].as_u64()),
        (Some(600), Some(600))
    );
    assert_eq!(
        (t["lost"].as_u64(), t["duplicated"].as_u64()),
        (Some(0), Some(0))
    );
    for p in r["delivery"]["per_publisher"].as_array().unwrap() {
        assert_eq!(p["sent"], 200);
        assert_eq!(p["counts"]["delivered"], 200);
    }
    // Equal counts: each publisher's share is the fair one, 1/3.
    let shares = &r["delivery"]["shares"];
    for k in ["min", "max", "fair"] {
        let share = shares[k].as_f64().unwrap();
        assert!((share - 1.0 / 3.0).abs() < 1e-9, "{k} share {share}");
    }
    assert_eq!(r["latency"]["samples"], 600);
    assert_eq!(r["connections"]["established"], 4);
    // No --broker-pid: nothing is said about the broker's CPU or memory.
    assert!(r["broker_cpu"].is_null() && r["memory"].is_null(), "{r:#}");
}

#[test]
fn fan_out_qos2_delivers_each_message_to_every_subscriber_once() {
    let m = mosquitto();
    let (code, r) = bench(m.port(), &["fan-out", "-c", "3", "-n", "150", "-q", "2"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["throughput"]["sent"]["messages"], 150);
    let t = totals(&r);
    assert_eq!(t["expected"], 450);
    assert_eq!(t["delivered"], 450);
    assert_eq!(t["duplicated"], 0);
    assert_eq!(r["delivery"]["unacknowledged"], 0);
}

#[test]
fn pairs_qos0_with_small_window_and_rate_counts_add_up() {
    let m = mosquitto();
    let (code, r) = bench(
        m.port(),
        &[
            "pairs", "-c", "4", "-n", "100", "--window", "5", "--rate", "4000", "-s", "100",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(totals(&r)["expected"], 400);
    assert_eq!(totals(&r)["delivered"], 400);
    assert_eq!(r["settings"]["payload_bytes"], 100);
}

#[test]
fn subscriber_on_a_topic_nobody_publishes_to_reports_loss_and_fails() {
    let m = mosquitto();
    let (code, r) = bench(
        m.port(),
        &words("pairs -c 2 -n 50 -q 1 --sub-topic nobody/{run}/{i} --drain-timeout 200ms"),
    );
    assert_eq!(code, 7, "{r:#}");
    assert_eq!(r["passed"], false);
    let t = totals(&r);
    assert_eq!(t["expected"], 100);
    assert_eq!(t["delivered"], 0);
    assert_eq!(t["lost"], 100);
    let v = r["violations"][0].as_str().unwrap();
    assert!(v.contains("100 of 100 messages lost at QoS 1"), "{v}");
}

#[test]
fn loss_at_qos0_is_reported_but_not_a_failure() {
    let m = mosquitto();
    let (code, r) = bench(
        m.port(),
        &words("fan-in -c 1 -n 20 --sub-topic nobody/{i} --drain-timeout 100ms"),
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(totals(&r)["lost"], 20);
}

#[test]
fn table_output_names_every_figure() {
    let m = mosquitto();
    let out = toolkit()
        .args([
            "bench", "latency", "-n", "50", "--rate", "1000", "-q", "1", "--quiet",
        ])
        .args(["-p", &m.port().to_string(), "--label", "mosquitto"])
        .args(["--broker-pid", &m.pid().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "latency against mosquitto",
        "msgs/s",
        "MB/s",
        "p50",
        "p99.9",
        "max",
        "lost 0",
        "broker RSS",
        // 50 messages cost mosquitto too little CPU to count.
        "broker CPU  not measured",
        "result: passed",
    ] {
        assert!(text.contains(word), "{word:?} missing from:\n{text}");
    }
}

#[test]
fn tls_with_cafile_and_with_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::write_server_certs(dir.path());
    let cafile = tls.cafile.display().to_string();
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(tls),
        ..options()
    });
    let port = m.tls_port().unwrap();
    let (code, r) = bench(
        port,
        &[
            "fan-in", "-c", "2", "-n", "100", "-q", "1", "--tls", "--cafile", &cafile,
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["tls"], true);
    assert_eq!(totals(&r)["delivered"], 200);
    let (code, r) = bench(
        port,
        &["fan-out", "-c", "2", "-n", "50", "--tls", "--insecure"],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(totals(&r)["delivered"], 100);
}

#[test]
fn tls_with_the_wrong_ca_fails_to_connect_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::write_server_certs(dir.path());
    let other = tempfile::tempdir().unwrap();
    let wrong_ca = common::write_server_certs(other.path()).cafile;
    let m = Mosquitto::start(MosquittoOptions {
        tls: Some(tls),
        ..options()
    });
    let out = toolkit()
        .args(["bench", "fan-in", "-n", "1", "--quiet", "--tls", "--cafile"])
        .arg(&wrong_ca)
        .args([
            "-p",
            &m.tls_port().unwrap().to_string(),
            "--connect-timeout",
            "5s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "certificate rejected");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("subscriber 0 could not connect"), "{err}");
}

#[test]
fn user_name_and_password_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let status = StdCommand::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["bench", "s3cret"])
        .status()
        .unwrap();
    assert!(status.success());
    let m = Mosquitto::start(MosquittoOptions {
        password_file: Some(passwd),
        ..options()
    });
    let (code, r) = bench(
        m.port(),
        &[
            "pairs", "-c", "1", "-n", "10", "-u", "bench", "-P", "s3cret",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(totals(&r)["delivered"], 10);

    let out = toolkit()
        .args([
            "bench", "pairs", "-n", "1", "--quiet", "-u", "bench", "-P", "wrong",
        ])
        .args(["-p", &m.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "CONNACK refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn connections_are_held_and_broker_memory_is_read() {
    let m = mosquitto();
    let pid = m.pid().to_string();
    let (code, r) = bench(
        m.port(),
        &[
            "connections",
            "-c",
            "200",
            "-d",
            "200ms",
            "--broker-pid",
            &pid,
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    let c = &r["connections"];
    assert_eq!(
        (c["attempted"].as_u64(), c["established"].as_u64()),
        (Some(200), Some(200))
    );
    assert_eq!(c["failed"], 0);
    assert_eq!(c["closed_during_hold"], 0);
    assert!(c["per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(r["memory"]["broker_pid"].as_u64(), Some(u64::from(m.pid())));
    assert!(r["memory"]["rss_after_kb"].as_u64().unwrap() > 0);
    // 200 connections cost mosquitto a few ms of CPU: too little to count
    // in 10 ms ticks, so no CPU figures rather than wrong ones.
    assert!(r["broker_cpu"].is_null(), "{r:#}");
}

#[test]
fn connections_to_a_closed_port_are_counted_as_failures() {
    let port = testsupport::free_port();
    let (code, r) = bench(port, &["connections", "-c", "5", "-d", "10ms"]);
    assert_eq!(code, 3, "{r:#}");
    assert_eq!(r["connections"]["failed"], 5);
    assert_eq!(r["connections"]["failures"]["i/o: connection refused"], 5);
}

#[test]
fn hdr_histogram_is_written() {
    let m = mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let hdr = dir.path().join("latency.hlog");
    let hdr_arg = hdr.display().to_string();
    let (code, _) = bench(
        m.port(),
        &["fan-in", "-c", "1", "-n", "100", "--hdr-out", &hdr_arg],
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&hdr).unwrap();
    assert!(text.contains("Tag=latency_ns,"), "{text}");
}

#[test]
fn compare_puts_reports_side_by_side_with_ratios() {
    let m = mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for label in ["ours", "theirs"] {
        let out = toolkit()
            .args([
                "bench", "fan-in", "-c", "2", "-n", "30000", "--json", "--quiet", "--label", label,
            ])
            .args(["-p", &m.port().to_string()])
            .args(["--broker-pid", &m.pid().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let f = dir.path().join(format!("{label}.json"));
        std::fs::write(&f, out.stdout).unwrap();
        files.push(f);
    }
    let json_out = dir.path().join("cmp.json");
    let out = toolkit()
        .args(["bench", "compare", "--ours", "ours", "--json-out"])
        .arg(&json_out)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ours/theirs"), "{text}");
    assert!(text.contains("fan-in QoS 0 2x1 64B"), "{text}");
    assert!(text.contains("CPU µs/msg ↓"), "{text}");
    assert!(text.contains("broker busy % ·"), "{text}");
    let cmp: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    let row = &cmp["rows"][0];
    assert_eq!(row["figure"], "delivered msgs/s");
    assert!(row["ratios"]["ours/theirs"].as_f64().unwrap() > 0.0);
    assert_eq!(cmp["reports"].as_array().unwrap().len(), 2);
    // 60,000 messages cost mosquitto about 0.6 s of CPU, over the 0.2 s the
    // figures need.
    for r in cmp["reports"].as_array().unwrap() {
        let cpu = &r["broker_cpu"];
        assert!(cpu["cpu_seconds"].as_f64().unwrap() >= 0.2, "{cpu:#}");
        assert!(cpu["busy_percent"].as_f64().unwrap() > 0.0, "{cpu:#}");
        assert!(cpu["us_per_item"].as_f64().unwrap() > 0.0, "{cpu:#}");
    }
}

#[test]
fn a_file_that_is_not_a_report_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.json");
    std::fs::write(&f, "{\"hello\": 1}").unwrap();
    let out = toolkit()
        .args(["bench", "compare"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.json is not a report"), "{err}");
}

/// A run that needs more descriptors than the hard limit allows is refused
/// before it opens anything, naming `ulimit -n` (issue 15).
#[test]
fn connections_beyond_the_descriptor_limit_name_ulimit() {
    let bin = assert_cmd::cargo::cargo_bin("toolkit");
    let out = StdCommand::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256 && ulimit -Hn 256 && exec {} bench connections -c 1000 --port 1 --quiet",
            bin.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ulimit -n 1064"), "{err}");
    assert!(err.contains("--clients 1000"), "{err}");
}

/// `--source-addrs` spreads clients over loopback source addresses; a
/// broker of the other family is refused with the flag's name.
#[test]
fn connections_from_several_source_addresses() {
    let m = mosquitto();
    let (code, r) = bench(
        m.port(),
        &words("connections -c 40 -d 10ms --source-addrs 127.0.0.2,127.0.0.3"),
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["connections"]["established"], 40);
    let out = toolkit()
        .args(words("bench connections -c 1 --source-addrs ::1 --port 1"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--source-addrs ::1"), "{err}");
}
