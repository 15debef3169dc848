//! The store file as the real binary meets it: created private on the
//! first run, and a damaged one refused at start with one line naming the
//! file and how to start anyway, never a panic (issue 14).

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use mqtt_codec::QoS;

const STORE: &str = "broker.redb";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs the broker once in `dir` (a new data directory), leaving a retained
/// message and a stored session in its store; returns the store file.
async fn first_run(dir: &Path) -> PathBuf {
    let mut b = start_with(with_data_dir(dir));
    let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("keeper", false)).await;
    sub.subscribe(&[("k/#", QoS::AtLeastOnce)], 1).await;
    sub.send(&mqtt_codec::Packet::Disconnect).await;
    assert_eq!(sub.try_recv().await, None);
    let mut p = RawClient::connected(b.addr(), "p").await;
    publish_acked(&mut p, "k/r", 1, "kept").await;
    let status = b.terminate(WAIT).expect("exits");
    assert!(status.success(), "{status}\n{}", b.log());
    dir.join(STORE)
}

#[tokio::test]
async fn the_first_run_creates_a_private_data_dir_and_store() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let store = first_run(&dir).await;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&store), 0o600);
}

#[tokio::test]
async fn a_store_readable_by_others_is_kept_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let store = first_run(&dir).await;
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut b = start_with(with_data_dir(&dir));
    let log = b.log();
    assert!(
        log.contains("WARN") && log.contains("chmod 600"),
        "no warning about the mode:\n{log}"
    );
    assert!(log.contains("sessions=1"), "{log}");
    b.terminate(WAIT).expect("exits");
    assert_eq!(mode(&store), 0o644, "the operator's mode is kept");
}

/// Damages the store with `damage`, starts the broker on it and checks it
/// refuses with one line naming the file and how to move it aside.
async fn refused_after(damage: impl FnOnce(&mut Vec<u8>)) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let store = first_run(&dir).await;
    let mut bytes = std::fs::read(&store).unwrap();
    damage(&mut bytes);
    std::fs::write(&store, &bytes).unwrap();

    let out = run_until_exit(&with_data_dir(&dir));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = format!("broker: store {} is damaged: ", store.display());
    let hint = format!(
        "to start anyway with an empty store, move it aside: mv {0} {0}.damaged",
        store.display()
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("broker: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(&line) && lines[0].ends_with(&hint),
        "{stderr}"
    );
    // Following the hint starts the broker, empty.
    std::fs::rename(&store, dir.join(format!("{STORE}.damaged"))).unwrap();
    let mut b = start_with(with_data_dir(&dir));
    assert!(b.log().contains("sessions=0"), "{}", b.log());
    b.terminate(WAIT).expect("exits");
}

#[tokio::test]
async fn a_truncated_store_is_refused_with_one_line() {
    refused_after(|bytes| bytes.truncate(bytes.len() / 3)).await;
}

#[tokio::test]
async fn a_store_with_a_zeroed_page_is_refused_with_one_line() {
    // The page after the header: zeroing it made redb panic (issue 14).
    refused_after(|bytes| bytes[4096..8192].fill(0)).await;
}
