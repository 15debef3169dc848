//! `toolkit certs`: generation, refusal to overwrite, client certificates,
//! inspection in text and JSON, and agreement with openssl.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command as StdCommand;

use common::{make_certs, make_client_cert, stderr_of, stdout_of, toolkit};
use predicates::str::contains;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn info_json(file: &Path) -> serde_json::Value {
    let out = toolkit()
        .args(["certs", "info", "--json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Dates, serials, fingerprints, key-dependent names and the temporary
/// folder change on every run; everything else must not.
fn redacted(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&dir.display().to_string()), "[DIR]");
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[DATE]");
    s.add_filter(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", "[SHA256]");
    s.add_filter(r#"(serial:\s+|"serial": ")[0-9a-f:]+"#, "$1[SERIAL]");
    s.add_filter(r"MQTT toolkit CA [0-9a-f]{8}", "MQTT toolkit CA [ID]");
    s
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

#[test]
fn no_flags_writes_ca_and_server_pair_for_localhost_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    toolkit()
        .arg("certs")
        .current_dir(dir.path())
        .assert()
        .success()
        .stdout(contains("wrote ./ca.pem"))
        .stdout(contains("server certificate for localhost, 127.0.0.1, ::1"));
    for file in ["ca.pem", "ca.key", "mqtt_server.pem", "mqtt_server.key"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
    assert_eq!(mode(&dir.path().join("mqtt_server.key")), 0o600);
    assert_eq!(mode(&dir.path().join("mqtt_server.pem")), 0o644);

    let server = info_json(&dir.path().join("mqtt_server.pem"));
    let cert = &server[0]["certificates"][0];
    assert_eq!(cert["subject"], "CN=localhost");
    assert_eq!(
        cert["sans"],
        serde_json::json!(["DNS:localhost", "IP:127.0.0.1", "IP:::1"])
    );
    assert_eq!(cert["is_ca"], false);
    assert_eq!(
        cert["key_usage"],
        serde_json::json!(["digitalSignature", "keyEncipherment"])
    );
    assert_eq!(
        cert["extended_key_usage"],
        serde_json::json!(["serverAuth"])
    );
    assert_eq!(cert["days_left"], 364);

    let ca = info_json(&dir.path().join("ca.pem"));
    let ca = &ca[0]["certificates"][0];
    assert_eq!(ca["is_ca"], true);
    assert_eq!(
        ca["key_usage"],
        serde_json::json!(["keyCertSign", "cRLSign"])
    );
    assert_eq!(ca["extended_key_usage"], serde_json::json!([]));
    assert_eq!(ca["subject"], cert["issuer"]);
}

#[test]
fn ca_days_sets_the_ca_validity_apart_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &["--ca-days", "20", "--days", "10"]);
    let ca = info_json(&dir.path().join("ca.pem"));
    assert_eq!(ca[0]["certificates"][0]["days_left"], 19);
    let server = info_json(&dir.path().join("mqtt_server.pem"));
    assert_eq!(server[0]["certificates"][0]["days_left"], 9);
}

#[test]
fn help_documents_subcommands_and_exit_statuses() {
    let out = toolkit().args(["certs", "--help"]).output().unwrap();
    let text = stdout_of(&out);
    for needle in [
        "--hostname",
        "--self-signed",
        "--force",
        "--info",
        "client",
        "Exit status",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let out = toolkit().args(["probe", "--help"]).output().unwrap();
    let text = stdout_of(&out);
    for needle in [
        "--cafile",
        "--insecure",
        "--cross",
        "--interactive",
        "5  server certificate rejected",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let out = toolkit().arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn existing_files_are_never_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &[]);
    let before = std::fs::read(dir.path().join("ca.key")).unwrap();
    let out = toolkit()
        .arg("certs")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read(dir.path().join("ca.key")).unwrap(), before);

    make_certs(dir.path(), &["--force"]);
    assert_ne!(std::fs::read(dir.path().join("ca.key")).unwrap(), before);
    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
}

/// Issue 12: `--hostname 192.0.2.2` wrote a DNS SAN, which no TLS client
/// matches against an address; probe's own hint recommended that command.
#[test]
fn addresses_given_to_hostname_become_ip_sans() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(
        dir.path(),
        &[
            "--hostname",
            "192.0.2.2",
            "--hostname",
            "2001:db8::2",
            "--no-default-names",
        ],
    );
    let text = openssl_text(&dir.path().join("mqtt_server.pem"));
    assert_eq!(
        openssl_sans(&text),
        ["IP:192.0.2.2", "IP:2001:db8::2"],
        "{text}"
    );
    assert!(
        text.contains("Subject: CN=192.0.2.2") || text.contains("Subject: CN = 192.0.2.2"),
        "{text}"
    );
}

#[test]
fn hostnames_and_ips_become_sans_and_the_first_hostname_the_common_name() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(
        dir.path(),
        &[
            "--hostname",
            "broker.example.com",
            "--hostname",
            "mqtt.example.com",
            "--ip",
            "10.0.0.7",
            "--ip",
            "fd00::7",
        ],
    );
    let v = info_json(&dir.path().join("mqtt_server.pem"));
    let cert = &v[0]["certificates"][0];
    assert_eq!(cert["subject"], "CN=broker.example.com");
    assert_eq!(
        cert["sans"],
        serde_json::json!([
            "DNS:broker.example.com",
            "DNS:mqtt.example.com",
            "DNS:localhost",
            "IP:10.0.0.7",
            "IP:fd00::7",
            "IP:127.0.0.1",
            "IP:::1"
        ])
    );

    let only = tempfile::tempdir().unwrap();
    make_certs(
        only.path(),
        &["--hostname", "broker.example.com", "--no-default-names"],
    );
    let v = info_json(&only.path().join("mqtt_server.pem"));
    assert_eq!(
        v[0]["certificates"][0]["sans"],
        serde_json::json!(["DNS:broker.example.com"])
    );
}

#[test]
fn bad_names_and_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["--hostname", "bad name"][..], "not a valid DNS name"),
        (&["--ip", "300.1.1.1"], "invalid value"),
        (&["--days", "many"], "invalid value"),
        (&["--no-default-names"], "--hostname or --ip"),
        (&["--json"], "--info"),
    ] {
        let out = toolkit()
            .arg("certs")
            .arg("--out")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains(needle),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn self_signed_writes_one_pair_that_is_its_own_issuer() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(
        dir.path(),
        &["--self-signed", "--days", "30", "--ca-days", "5"],
    );
    assert!(!dir.path().join("ca.pem").exists());
    let v = info_json(&dir.path().join("mqtt_server.pem"));
    let cert = &v[0]["certificates"][0];
    assert_eq!(cert["subject"], cert["issuer"]);
    assert_eq!(cert["self_issued"], true);
    assert_eq!(cert["is_ca"], false);
    assert_eq!(cert["days_left"], 29);
    assert_eq!(mode(&dir.path().join("mqtt_server.key")), 0o600);
}

#[test]
fn client_certificate_is_signed_by_the_ca_in_out() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &[]);
    make_client_cert(dir.path(), "sensor-1");
    let v = info_json(&dir.path().join("sensor-1.pem"));
    let cert = &v[0]["certificates"][0];
    assert_eq!(cert["subject"], "CN=sensor-1");
    assert_eq!(
        cert["extended_key_usage"],
        serde_json::json!(["clientAuth"])
    );
    let ca = info_json(&dir.path().join("ca.pem"));
    assert_eq!(cert["issuer"], ca[0]["certificates"][0]["subject"]);
    assert_eq!(mode(&dir.path().join("sensor-1.key")), 0o600);

    // openssl agrees the chain holds.
    let out = StdCommand::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.path().join("ca.pem"))
        .arg(dir.path().join("sensor-1.pem"))
        .arg(dir.path().join("mqtt_server.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );

    let again = toolkit()
        .args(["certs", "client", "--name", "sensor-1", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr_of(&again).contains("--force"));
}

#[test]
fn client_certificate_without_a_ca_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = toolkit()
        .args(["certs", "client", "--name", "c", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("ca.pem not found"), "{err}");
    assert!(err.contains("toolkit certs --out"), "{err}");

    // A leaf is not a CA.
    make_certs(dir.path(), &[]);
    let out = toolkit()
        .args(["certs", "client", "--name", "c", "--ca-cert"])
        .arg(dir.path().join("mqtt_server.pem"))
        .arg("--ca-key")
        .arg(dir.path().join("mqtt_server.key"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("not a CA certificate"),
        "{}",
        stderr_of(&out)
    );

    let out = toolkit()
        .args(["certs", "client", "--name", "../evil", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn info_text_and_json_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(
        dir.path(),
        &["--hostname", "broker.example.com", "--ip", "10.0.0.7"],
    );
    let chain = dir.path().join("chain.pem");
    let text = std::fs::read_to_string(dir.path().join("mqtt_server.pem")).unwrap()
        + &std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    std::fs::write(&chain, text).unwrap();

    let out = toolkit()
        .arg("certs")
        .arg("--info")
        .arg(&chain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let via_subcommand = toolkit()
        .args(["certs", "info"])
        .arg(&chain)
        .output()
        .unwrap();
    assert_eq!(out.stdout, via_subcommand.stdout);
    let json = toolkit()
        .args(["certs", "--json", "--info"])
        .arg(&chain)
        .output()
        .unwrap();
    assert!(json.status.success());

    redacted(dir.path()).bind(|| {
        insta::assert_snapshot!("info_text_chain", stdout_of(&out));
        insta::assert_snapshot!("info_json_chain", stdout_of(&json));
    });
}

#[test]
fn expired_and_backdated_certificates_say_so() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &["--days", "1", "--backdate", "10"]);
    let out = toolkit()
        .args(["certs", "info"])
        .arg(dir.path().join("mqtt_server.pem"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stdout_of(&out).contains("EXPIRED 9 days ago"),
        "{}",
        stdout_of(&out)
    );

    let zero = tempfile::tempdir().unwrap();
    make_certs(zero.path(), &["--days", "0"]);
    let v = info_json(&zero.path().join("mqtt_server.pem"));
    assert_eq!(v[0]["certificates"][0]["status"], "expired");
}

#[test]
fn info_on_missing_key_or_junk_files_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), &[]);
    std::fs::write(dir.path().join("junk.pem"), "hello").unwrap();
    for (file, needle) in [
        ("missing.pem", "cannot read"),
        ("ca.key", "only PRIVATE KEY"),
        ("junk.pem", "neither PEM nor"),
    ] {
        let out = toolkit()
            .args(["certs", "--info"])
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = stderr_of(&out);
        assert!(err.contains(needle), "{file}: {err}");
        assert!(err.contains(file), "{file}: {err}");
    }
}

/// Parses openssl's `Mon DD HH:MM:SS YYYY GMT` into RFC 3339.
fn openssl_date(text: &str) -> String {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[0])
    .unwrap()
        + 1;
    let day: u32 = parts[1].parse().unwrap();
    format!("{}-{month:02}-{day:02}T{}Z", parts[3], parts[2])
}

/// SANs as openssl prints them, normalised to our `DNS:`/`IP:` form.
fn openssl_sans(text: &str) -> Vec<String> {
    let Some(at) = text.find("X509v3 Subject Alternative Name:") else {
        return Vec::new();
    };
    let line = text[at..].lines().nth(1).unwrap().trim();
    line.split(", ")
        .map(|item| match item.strip_prefix("IP Address:") {
            Some(ip) => format!("IP:{}", ip.parse::<std::net::IpAddr>().unwrap()),
            None => item.to_owned(),
        })
        .collect()
}

fn openssl_text(file: &Path) -> String {
    let out = StdCommand::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out)
}

fn assert_openssl_agrees(file: &Path) {
    let text = openssl_text(file);
    let ours = info_json(file);
    let cert = &ours[0]["certificates"][0];
    let line = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(str::trim))
            .unwrap()
            .to_owned()
    };
    assert_eq!(cert["not_before"], openssl_date(&line("Not Before:")));
    assert_eq!(cert["not_after"], openssl_date(&line("Not After :")));
    let sans: Vec<String> = serde_json::from_value(cert["sans"].clone()).unwrap();
    assert_eq!(sans, openssl_sans(&text));
}

#[test]
fn openssl_agrees_on_sans_and_validity_of_our_certificates() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(
        dir.path(),
        &[
            "--hostname",
            "a.example",
            "--ip",
            "192.0.2.1",
            "--ip",
            "2001:db8::1",
        ],
    );
    assert_openssl_agrees(&dir.path().join("mqtt_server.pem"));
    assert_openssl_agrees(&dir.path().join("ca.pem"));
}

#[test]
fn info_reads_certificates_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("rsa.pem");
    let out = StdCommand::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
        ])
        .args(["-subj", "/CN=openssl.example/O=Test Org"])
        .args(["-addext", "subjectAltName=DNS:openssl.example,IP:192.0.2.9"])
        .args(["-addext", "extendedKeyUsage=serverAuth,clientAuth"])
        .arg("-keyout")
        .arg(dir.path().join("rsa.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v = info_json(&cert);
    let c = &v[0]["certificates"][0];
    assert_eq!(c["key_algorithm"], "RSA");
    assert_eq!(c["key_bits"], 2048);
    assert_eq!(c["subject"], "CN=openssl.example, O=Test Org");
    assert_eq!(
        c["extended_key_usage"],
        serde_json::json!(["serverAuth", "clientAuth"])
    );
    assert_eq!(c["days_left"], 9);
    assert_openssl_agrees(&cert);

    let fp = StdCommand::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let fp = stdout_of(&fp);
    let fp = fp.trim().rsplit('=').next().unwrap();
    assert_eq!(c["sha256_fingerprint"], fp);
}
