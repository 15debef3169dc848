//! The broker's CPU time, read from `/proc/<pid>/stat` (Linux).
//!
//! A rate alone cannot say who was the bottleneck: when the load tool is the
//! slower side, two brokers show the same rate however much work each did.
//! The CPU the broker spent answers both questions: how busy it was over the
//! measured time (near 100 % of its core: the broker was the limit), and
//! what one delivered message or one connection cost it, which does not
//! depend on how fast the load was.

use std::time::Instant;

use anyhow::Context;

use super::procfs;
use super::report::BrokerCpu;

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel
/// reports them in USER_HZ, which is 100 on every architecture Linux runs
/// tools like this on (it is part of the user-space ABI, unlike HZ).
const USER_HZ: f64 = 100.0;

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

/// What the broker spent between two samples, spread over `items` (messages
/// delivered or connections established).
pub fn between(from: Option<CpuSample>, to: Option<CpuSample>, items: u64) -> Option<BrokerCpu> {
    let (from, to) = (from?, to?);
    let wall = to.at.saturating_duration_since(from.at).as_secs_f64();
    let cpu = to.ticks.saturating_sub(from.ticks) as f64 / USER_HZ;
    Some(BrokerCpu {
        cpu_seconds: cpu,
        wall_seconds: wall,
        busy_percent: if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 },
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
#[allow(clippy::unwrap_used)]
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
        let a = clock.sample().unwrap();
        // Burn CPU until the kernel has counted some (ticks are 10 ms), on
        // a busy machine too; bounded so a broken reading fails, not hangs.
        let started = Instant::now();
        let mut x = 0u64;
        let b = loop {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            let b = clock.sample().unwrap();
            if b.unwrap().ticks > a.unwrap().ticks || started.elapsed().as_secs() >= 10 {
                break b;
            }
        };
        std::hint::black_box(x);
        let cpu = between(a, b, 10).unwrap();
        assert!(cpu.cpu_seconds > 0.0, "{cpu:?}");
        assert!(cpu.wall_seconds > 0.0, "{cpu:?}");
        assert!(cpu.busy_percent > 0.0, "{cpu:?}");
        let per_item = cpu.us_per_item.unwrap();
        assert!((per_item - cpu.cpu_seconds * 1e5).abs() < 1e-6, "{cpu:?}");
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
