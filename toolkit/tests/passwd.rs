//! `toolkit passwd`: files mosquitto and the reference broker both accept.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use assert_cmd::Command as Cmd;
use credentials::password::PasswordFile;
use testsupport::{Mosquitto, MosquittoOptions};

fn toolkit() -> Cmd {
    Cmd::cargo_bin("toolkit").unwrap()
}

#[test]
fn adds_changes_and_deletes_users() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    toolkit()
        .args([
            "passwd",
            file.to_str().unwrap(),
            "alice",
            "--password",
            "one",
        ])
        .assert()
        .success()
        .stdout(format!("added alice in {}\n", file.display()));
    // The password may come on standard input, as from a script.
    toolkit()
        .args(["passwd", file.to_str().unwrap(), "bob"])
        .write_stdin("two\n")
        .assert()
        .success();
    toolkit()
        .args(["passwd", file.to_str().unwrap(), "alice", "-b", "three"])
        .assert()
        .success()
        .stdout(format!("changed alice in {}\n", file.display()));
    let parsed = PasswordFile::load(&file).unwrap();
    assert_eq!(parsed.len(), 2);
    assert!(parsed.verify("alice", b"three") && !parsed.verify("alice", b"one"));
    assert!(parsed.verify("bob", b"two"));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().all(|l| l.contains(":$7$101$")), "{text}");

    toolkit()
        .args(["passwd", "-D", file.to_str().unwrap(), "bob"])
        .assert()
        .success();
    assert_eq!(PasswordFile::load(&file).unwrap().len(), 1);
    toolkit()
        .args(["passwd", "-D", file.to_str().unwrap(), "bob"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("bob is not in"));
}

#[test]
fn bad_user_names_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    toolkit()
        .args(["passwd", file.to_str().unwrap(), "a:b", "-b", "x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no ':'"));
    assert!(!file.exists());
}

#[test]
fn mosquitto_accepts_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    toolkit()
        .args([
            "passwd",
            "-c",
            file.to_str().unwrap(),
            "carol",
            "-b",
            "s3cret",
        ])
        .assert()
        .success();
    // mosquitto may run as another user than the file's owner.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = Mosquitto::start(MosquittoOptions {
        password_file: Some(file.clone()),
        ..MosquittoOptions::default()
    });
    let publish = |password: &str| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &m.port().to_string()])
            .args(["-u", "carol", "-P", password, "-t", "t", "-m", "m"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(publish("s3cret"), "{}", m.log());
    assert!(!publish("wrong"));
}
