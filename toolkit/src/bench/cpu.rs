//! The broker's CPU time, read from `/proc/<pid>/stat` (Linux).
//!
//! A rate alone cannot say who was the bottleneck: when the load tool is the
//! slower side, two brokers show the same rate however much work each did.
//! The CPU the broker spent answers both questions: how busy it was over the
//! measured time (near 100 % of its core: the broker was the limit), and
//! what one delivered message or one connection cost it, which does not
//! depend on how fast the load was.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::procfs;

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel
/// reports them in USER_HZ, which is 100 on every architecture Linux runs
/// tools like this on (it is part of the user-space ABI, unlike HZ).
const USER_HZ: f64 = 100.0;

/// The broker's CPU time over a window, from /proc: the figure a
/// bench report carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerCpu {
    /// User + system CPU seconds, all threads.
    pub cpu_seconds: f64,
    /// Wall-clock seconds they were measured over.
    pub wall_seconds: f64,
    /// CPU over wall time, in percent of one core: near 100 % for a broker
    /// on one core means the broker, not the load, set the pace.
    pub busy_percent: f64,
    /// CPU microseconds per delivered message (message scenarios) or per
    /// established connection (`connections`).
    pub us_per_item: Option<f64>,
}

/// Where to read a broker's CPU time from, if a PID was given.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock(Option<u32>);

/// The broker's CPU time (user + system, all threads) at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    ticks: u64,
}

impl CpuClock {
    /// Checks that the process can be read now, so a wrong `--broker-pid`
    /// fails before the run rather than after it.
    pub fn open(pid: Option<u32>) -> anyhow::Result<Self> {
        let clock = Self(pid);
        clock.sample()?;
        Ok(clock)
    }

    /// The broker's CPU time now, or `None` without a PID.
    pub fn sample(&self) -> anyhow::Result<Option<CpuSample>> {
        let Some(pid) = self.0 else { return Ok(None) };
        let ticks = parse_cpu_ticks(&procfs::read(pid, "stat")?)
            .with_context(|| format!("--broker-pid {pid}: /proc/{pid}/stat has no CPU times"))?;
        Ok(Some(CpuSample {
            at: Instant::now(),
            ticks,
        }))
    }
}

/// The least CPU time, in ticks, the figures are given for. The kernel
/// counts CPU time in ticks of 1/USER_HZ s and each of the two counters read
/// may be short by up to one tick, so below 20 ticks (0.2 s) a figure could
/// be off by more than 10 %: over a few milliseconds a broker seems to have
/// spent nothing, or several cores.
pub const MIN_TICKS: u64 = 20;

/// [`MIN_TICKS`] in seconds, for messages.
pub fn min_seconds() -> f64 {
    MIN_TICKS as f64 / USER_HZ
}

/// What the broker spent between two samples, spread over `items` (messages
/// delivered or connections established); `None` without samples or when
/// the broker spent less than [`MIN_TICKS`] between them.
pub fn between(from: Option<CpuSample>, to: Option<CpuSample>, items: u64) -> Option<BrokerCpu> {
    let (from, to) = (from?, to?);
    figures(
        to.ticks.saturating_sub(from.ticks),
        to.at.saturating_duration_since(from.at),
        items,
    )
}

fn figures(ticks: u64, wall: Duration, items: u64) -> Option<BrokerCpu> {
    if ticks < MIN_TICKS || wall.is_zero() {
        return None;
    }
    let wall = wall.as_secs_f64();
    let cpu = ticks as f64 / USER_HZ;
    Some(BrokerCpu {
        cpu_seconds: cpu,
        wall_seconds: wall,
        busy_percent: cpu / wall * 100.0,
        us_per_item: (items > 0).then(|| cpu * 1e6 / items as f64),
    })
}

/// utime + stime of a `/proc/<pid>/stat` text, in ticks. The command name
/// (field 2) is in parentheses and may hold spaces or parentheses itself, so
/// the fields are counted from the last `)`: utime and stime are fields 14
/// and 15, the 12th and 13th after it.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        // A command name with a space and a parenthesis, as a thread may have.
        let stat = "4242 (my (broker) x) S 1 4242 4242 0 -1 4194560 1503 0 0 0 \
                    250 75 0 0 20 0 2 0 123456 12345678 1234 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn own_process_uses_cpu() {
        let clock = CpuClock::open(Some(std::process::id())).unwrap();
        let first = clock.sample().unwrap().unwrap();
        // Burn CPU until the kernel has counted some (ticks are 10 ms), on
        // a busy machine too; bounded so a broken reading fails, not hangs.
        let mut x = 0u64;
        let last = loop {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            let last = clock.sample().unwrap().unwrap();
            if last.ticks > first.ticks || first.at.elapsed().as_secs() >= 10 {
                break last;
            }
        };
        std::hint::black_box(x);
        assert!(last.ticks > first.ticks, "{first:?} {last:?}");
    }

    #[test]
    fn figures_over_a_window() {
        let cpu = figures(75, Duration::from_millis(1500), 1000).unwrap();
        assert!((cpu.cpu_seconds - 0.75).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.wall_seconds - 1.5).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.busy_percent - 50.0).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.us_per_item.unwrap() - 750.0).abs() < 1e-9, "{cpu:?}");
        assert!(
            figures(75, Duration::from_secs(2), 0)
                .unwrap()
                .us_per_item
                .is_none()
        );
    }

    #[test]
    fn too_little_cpu_gives_no_figures() {
        // One tick in 4 ms would read as 250 % of a core.
        assert!(figures(1, Duration::from_millis(4), 2000).is_none());
        assert!(figures(MIN_TICKS - 1, Duration::from_secs(5), 2000).is_none());
        assert!(figures(MIN_TICKS, Duration::ZERO, 2000).is_none());
        assert!(figures(MIN_TICKS, Duration::from_secs(5), 2000).is_some());
    }

    #[test]
    fn no_pid_no_figures() {
        let clock = CpuClock::open(None).unwrap();
        assert!(clock.sample().unwrap().is_none());
        assert!(between(None, None, 1).is_none());
    }

    #[test]
    fn missing_process_is_a_clear_error() {
        let e = CpuClock::open(Some(u32::MAX)).unwrap_err();
        assert!(format!("{e:#}").contains("--broker-pid"));
    }
}
