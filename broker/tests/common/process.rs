//! A broker process seen from outside through `/proc` (Linux): its open
//! descriptors and resident memory, and its descriptor limit lowered, for
//! the tests of what it does under hostile load.

use std::time::{Duration, Instant};

use testsupport::ReferenceBroker;

/// The broker's process id as `prlimit` takes it.
fn pid(b: &ReferenceBroker) -> i32 {
    let pid = b.pid().expect("the broker is running");
    i32::try_from(pid).expect("a process id fits in pid_t")
}

/// The numbers of the descriptors the broker has open now.
fn descriptors(b: &ReferenceBroker) -> Vec<u64> {
    let dir = format!("/proc/{}/fd", pid(b));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// How many descriptors the broker has open now.
pub fn open_descriptors(b: &ReferenceBroker) -> u64 {
    descriptors(b).len() as u64
}

/// Waits (at most `timeout`) until the broker has at most `most`
/// descriptors open; panics with the count and the log otherwise.
pub fn wait_for_descriptors_at_most(b: &ReferenceBroker, most: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let open = open_descriptors(b);
        if open <= most {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the broker still has {open} descriptors open after {timeout:?} (expected at most {most}):\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `timeout`) until the broker has at least `least`
/// descriptors open; panics with the count and the log's last lines
/// otherwise.
pub fn wait_for_descriptors_at_least(b: &ReferenceBroker, least: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let open = open_descriptors(b);
        if open >= least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the broker has {open} descriptors open after {timeout:?} (expected at least {least}); its log ends:\n{}",
            b.log()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lowers the broker's limit on open descriptors so that exactly `room`
/// more fit. The limit bounds descriptor numbers, not their count, and a
/// process may hold one numbered far above the rest (inherited from the
/// test runner), so the limit is `room` plus the open descriptors below it.
pub fn leave_room_for(b: &ReferenceBroker, room: u64) {
    let mut open = descriptors(b);
    open.sort_unstable();
    let mut limit = room;
    for fd in open {
        if fd < limit {
            limit += 1;
        }
    }
    limit_descriptors(b, limit);
}

/// Lowers the broker's soft limit on open descriptors (`RLIMIT_NOFILE`) to
/// `soft`, keeping its hard limit, as `prlimit --nofile` would.
fn limit_descriptors(b: &ReferenceBroker, soft: u64) {
    let (mut old_soft, mut hard) = (0, 0);
    rlimit::prlimit(
        pid(b),
        rlimit::Resource::NOFILE,
        None,
        Some((&mut old_soft, &mut hard)),
    )
    .expect("reading the broker's descriptor limit");
    rlimit::prlimit(pid(b), rlimit::Resource::NOFILE, Some((soft, hard)), None)
        .expect("lowering the broker's descriptor limit");
}

/// The broker's resident memory (`VmRSS`), in bytes.
pub fn resident_bytes(b: &ReferenceBroker) -> u64 {
    let path = format!("/proc/{}/status", pid(b));
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in {path}"));
    kib * 1024
}
