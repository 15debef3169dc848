//! The broker's resident memory, read from `/proc/<pid>/status` (Linux).

use anyhow::Context;

use super::procfs;
use super::report::Memory;

/// Where to read a broker's RSS from, if a PID was given.
#[derive(Debug, Clone, Copy)]
pub struct Rss(Option<u32>);

impl Rss {
    /// Checks that the process can be read now, so a wrong `--broker-pid`
    /// fails before the run rather than after it.
    pub fn open(pid: Option<u32>) -> anyhow::Result<Self> {
        let rss = Self(pid);
        rss.read()?;
        Ok(rss)
    }

    /// The current resident set in KiB, or `None` without a PID.
    pub fn read(&self) -> anyhow::Result<Option<u64>> {
        let Some(pid) = self.0 else { return Ok(None) };
        parse_vm_rss(&procfs::read(pid, "status")?)
            .map(Some)
            .with_context(|| format!("--broker-pid {pid}: no VmRSS line in /proc/{pid}/status"))
    }

    /// The memory figures for a report.
    pub fn memory(
        &self,
        before: Option<u64>,
        after: Option<u64>,
        connections: u64,
    ) -> Option<Memory> {
        let (pid, before, after) = (self.0?, before?, after?);
        Some(Memory {
            broker_pid: pid,
            rss_before_kb: before,
            rss_after_kb: after,
            per_connection_bytes: (connections > 0)
                .then(|| (after as f64 - before as f64) * 1024.0 / connections as f64),
        })
    }
}

/// The `VmRSS:` value of a `/proc/<pid>/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(5120));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn own_process_can_be_read() {
        let rss = Rss::open(Some(std::process::id())).unwrap();
        assert!(rss.read().unwrap().unwrap() > 0);
    }

    #[test]
    fn missing_process_is_a_clear_error() {
        let e = Rss::open(Some(u32::MAX)).unwrap_err();
        assert!(format!("{e:#}").contains("--broker-pid"));
    }
}
