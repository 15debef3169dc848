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

/// Issue 12: `toolkit passwd -b FILE USER PASSWORD`, mosquitto_passwd's
/// order, wrote a file named after the user. Now it writes FILE, `-U`
/// hashes a plain file in place, and mosquitto reads the result.
#[test]
fn mosquitto_passwd_arguments_write_a_file_mosquitto_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "# users\ndave:plain-one\nerin:plain-two\n").unwrap();
    common::toolkit()
        .args(["passwd", "-U"])
        .arg(&file)
        .assert()
        .success()
        .stdout(format!("hashed 2 passwords in {}\n", file.display()));
    common::toolkit()
        .args(["passwd", "-b"])
        .arg(&file)
        .args(["alice", "s3cret"])
        .assert()
        .success()
        .stdout(format!("added alice in {}\n", file.display()));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pw"], "no file named after the user");
    let parsed = PasswordFile::load(&file).unwrap();
    assert_eq!(parsed.len(), 3);
    assert!(parsed.verify("dave", b"plain-one") && parsed.verify("erin", b"plain-two"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("plain-"), "{text}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = Mosquitto::start(MosquittoOptions {
        password_file: Some(file.clone()),
        ..MosquittoOptions::default()
    });
    let publish = |user: &str, password: &str| {
        common::mosquitto_pub(
            m.port(),
            &["-u", user, "-P", password, "-t", "t", "-m", "m"],
        )
        .status
        .success()
    };
    assert!(publish("alice", "s3cret"), "{}", m.log());
    assert!(publish("dave", "plain-one"), "{}", m.log());
    assert!(!publish("alice", "wrong"));
    assert!(!publish("erin", "plain-one"));
}

/// Issue 12: arguments in an order that could name the wrong file are an
/// error, and nothing is written.
#[test]
fn a_password_without_b_or_b_without_a_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    passwd(&file, &["alice", "s3cret"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("needs -b"));
    passwd(&file, &["-b", "alice"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("-b needs the password"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `-U` on a file that already holds a hash would lock that user out
/// (mosquitto_passwd hashes the hash): refused, the file unchanged.
#[test]
fn converting_an_already_hashed_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    passwd(&file, &["-b", "alice", "one"]).assert().success();
    std::fs::write(
        &file,
        format!("{}bob:two\n", std::fs::read_to_string(&file).unwrap()),
    )
    .unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    common::toolkit()
        .args(["passwd", "-U"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("line 1: already hashed"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}
