//! A broker process seen from outside through `/proc` (Linux): its open
//! descriptors and resident memory, and its descriptor limit lowered, for
//! the tests of what it does under hostile load.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testsupport::ReferenceBroker;

/// The broker's process id as `prlimit` takes it.
fn pid(b: &ReferenceBroker) -> i32 {
    let pid = b.pid().expect("the broker is running");
    i32::try_from(pid).expect("a process id fits in pid_t")
}

/// The broker's open descriptors: their numbers and what they are
/// (`socket:[...]`, `/dev/null`, ...).
fn descriptors(b: &ReferenceBroker) -> Vec<(u64, PathBuf)> {
    let dir = format!("/proc/{}/fd", pid(b));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            Some((fd, std::fs::read_link(e.path()).unwrap_or_default()))
        })
        .collect()
}

/// How many descriptors the broker has open now.
pub fn open_descriptors(b: &ReferenceBroker) -> u64 {
    descriptors(b).len() as u64
}

/// How many sockets the broker has open now (listeners and connections):
/// what a test of its connections counts, whatever else it has open.
pub fn open_sockets(b: &ReferenceBroker) -> u64 {
    descriptors(b)
        .iter()
        .filter(|(_, what)| what.to_string_lossy().starts_with("socket:"))
        .count() as u64
}

/// Waits (at most `timeout`) until `count` (of the broker's descriptors or
/// sockets) satisfies `done`; panics naming `what` with the descriptors
/// and the log's last lines otherwise.
pub fn wait_for_count(
    b: &ReferenceBroker,
    what: &str,
    count: fn(&ReferenceBroker) -> u64,
    done: impl Fn(u64) -> bool,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let n = count(b);
        if done(n) {
            return;
        }
        if Instant::now() >= deadline {
            let mut kinds: Vec<String> = descriptors(b)
                .iter()
                .map(|(_, w)| {
                    w.to_string_lossy()
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect();
            kinds.sort();
            kinds.dedup();
            panic!(
                "{what}: the broker has {n} after {timeout:?} (kinds open: {kinds:?}); its log ends:\n{}",
                b.log()
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most `timeout`) until the broker has at most `most`
/// descriptors open.
pub fn wait_for_descriptors_at_most(b: &ReferenceBroker, most: u64, timeout: Duration) {
    let what = format!("at most {most} descriptors");
    wait_for_count(b, &what, open_descriptors, |n| n <= most, timeout);
}

/// Lowers the broker's limit on open descriptors so that exactly `room`
/// more fit. The limit bounds descriptor numbers, not their count, and a
/// process may hold one numbered far above the rest (inherited from the
/// test runner), so the limit is `room` plus the open descriptors below it.
pub fn leave_room_for(b: &ReferenceBroker, room: u64) {
    let mut open: Vec<u64> = descriptors(b).into_iter().map(|(fd, _)| fd).collect();
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
