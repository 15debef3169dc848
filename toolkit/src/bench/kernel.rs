//! What open connections cost the kernel, from `/proc/net/sockstat` (TCP
//! sockets in use, pages in their buffers) and `/proc/meminfo` (slab: the
//! socket, file and epoll objects themselves). Machine-wide figures: other
//! work on the machine shows in them too, and on loopback both ends of each
//! connection are counted.

use serde::{Deserialize, Serialize};

/// One reading of the kernel's socket figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// TCP sockets in use (`TCP: inuse`).
    pub tcp_sockets: u64,
    /// Memory in TCP socket buffers, in KiB (`TCP: mem`, pages).
    pub tcp_buffers_kb: u64,
    /// Kernel slab memory, in KiB (`Slab:`).
    pub slab_kb: u64,
}

/// The kernel's socket figures before and after a run opened its clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelSockets {
    /// TCP sockets in use before.
    pub tcp_sockets_before: u64,
    /// TCP sockets in use with the clients open.
    pub tcp_sockets_after: u64,
    /// TCP buffer memory before, in KiB.
    pub tcp_buffers_before_kb: u64,
    /// TCP buffer memory with the clients open, in KiB.
    pub tcp_buffers_after_kb: u64,
    /// Slab memory before, in KiB.
    pub slab_before_kb: u64,
    /// Slab memory with the clients open, in KiB.
    pub slab_after_kb: u64,
    /// Growth of slab plus TCP buffers per established connection, in
    /// bytes; on loopback this holds both ends' sockets.
    pub per_connection_bytes: Option<f64>,
}

/// Reads the figures now; `None` where `/proc` does not have them.
pub fn sample() -> Option<Sample> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse(&sockstat, &meminfo, page_kb())
}

/// The figures between two samples, per `connections`.
pub fn between(
    before: Option<Sample>,
    after: Option<Sample>,
    connections: u64,
) -> Option<KernelSockets> {
    let (b, a) = (before?, after?);
    let grown = (a.slab_kb + a.tcp_buffers_kb) as f64 - (b.slab_kb + b.tcp_buffers_kb) as f64;
    Some(KernelSockets {
        tcp_sockets_before: b.tcp_sockets,
        tcp_sockets_after: a.tcp_sockets,
        tcp_buffers_before_kb: b.tcp_buffers_kb,
        tcp_buffers_after_kb: a.tcp_buffers_kb,
        slab_before_kb: b.slab_kb,
        slab_after_kb: a.slab_kb,
        per_connection_bytes: (connections > 0).then(|| grown * 1024.0 / connections as f64),
    })
}

/// The page size in KiB: 4 on the machines this runs on (`TCP: mem` counts
/// pages). Read from `/proc/self/smaps`' first `KernelPageSize` when there.
fn page_kb() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("KernelPageSize:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(4)
}

fn parse(sockstat: &str, meminfo: &str, page_kb: u64) -> Option<Sample> {
    let tcp = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let field = |name: &str| -> Option<u64> {
        let mut words = tcp.split_whitespace();
        words.find(|w| *w == name)?;
        words.next()?.parse().ok()
    };
    let slab = meminfo.lines().find(|l| l.starts_with("Slab:"))?;
    Some(Sample {
        tcp_sockets: field("inuse")?,
        tcp_buffers_kb: field("mem")? * page_kb,
        slab_kb: slab.split_whitespace().nth(1)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKSTAT: &str = "sockets: used 120\nTCP: inuse 20005 orphan 0 tw 3 alloc 20010 mem 12\nUDP: inuse 2 mem 1\n";
    const MEMINFO: &str =
        "MemTotal:       16000000 kB\nSlab:             250000 kB\nSReclaimable:      90000 kB\n";

    #[test]
    fn sockstat_and_meminfo_are_read() {
        assert_eq!(
            parse(SOCKSTAT, MEMINFO, 4),
            Some(Sample {
                tcp_sockets: 20_005,
                tcp_buffers_kb: 48,
                slab_kb: 250_000,
            })
        );
        assert_eq!(parse("UDP: inuse 2\n", MEMINFO, 4), None);
    }

    #[test]
    fn growth_is_shared_out_per_connection() {
        let before = Sample {
            tcp_sockets: 5,
            tcp_buffers_kb: 8,
            slab_kb: 1_000,
        };
        let after = Sample {
            tcp_sockets: 2_005,
            tcp_buffers_kb: 8,
            slab_kb: 5_000,
        };
        let k = between(Some(before), Some(after), 1_000).unwrap();
        assert_eq!(k.per_connection_bytes, Some(4_096.0));
        assert!(between(None, Some(after), 1_000).is_none());
    }

    #[test]
    fn this_machine_can_be_read() {
        if std::path::Path::new("/proc/net/sockstat").exists() {
            assert!(sample().is_some());
        }
    }
}
