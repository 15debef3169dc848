//! `toolkit passwd`: files mosquitto and the reference broker both accept.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use assert_cmd::Command;
use credentials::password::PasswordFile;
use testsupport::{Mosquitto, MosquittoOptions};

/// `toolkit passwd FILE ARGS…`.
fn passwd(file: &Path, args: &[&str]) -> Command {
    let mut c = common::toolkit();
    c.arg("passwd").arg(file).args(args);
    c
}

#[test]
fn adds_changes_and_deletes_users() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    passwd(&file, &["alice", "--password", "one"])
        .assert()
        .success()
        .stdout(format!("added alice in {}\n", file.display()));
    // The password may come on standard input, as from a script.
    passwd(&file, &["bob"])
        .write_stdin("two\n")
        .assert()
        .success();
    passwd(&file, &["alice", "-b", "three"])
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
    // The temporary file it was written through was renamed into place.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pw"]);

    passwd(&file, &["-D", "bob"]).assert().success();
    assert_eq!(PasswordFile::load(&file).unwrap().len(), 1);
    passwd(&file, &["-D", "bob"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("bob is not in"));
}

#[test]
fn bad_user_names_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    passwd(&file, &["a:b", "-b", "x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no ':'"));
    assert!(!file.exists());
}

#[test]
fn mosquitto_accepts_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    passwd(&file, &["-c", "carol", "-b", "s3cret"])
        .assert()
        .success();
    // mosquitto may run as another user than the file's owner.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = Mosquitto::start(MosquittoOptions {
        password_file: Some(file.clone()),
        ..MosquittoOptions::default()
    });
    let publish = |password: &str| {
        common::mosquitto_pub(
            m.port(),
            &["-u", "carol", "-P", password, "-t", "t", "-m", "m"],
        )
        .status
        .success()
    };
    assert!(publish("s3cret"), "{}", m.log());
    assert!(!publish("wrong"));
}
