//! What the machine must allow before a run opens its clients: open
//! descriptors (one per client, in this process) and ephemeral ports (one
//! per client, per source address). Checked up front, so a run that cannot
//! open its connections says which limit to raise instead of failing
//! part-way with "Too many open files" or "Cannot assign requested address".

use crate::exit::{Failure, Status};

/// Descriptors kept free for the runtime, stdio and the files the run reads.
pub const SPARE_DESCRIPTORS: u64 = 64;

/// Raises this process's soft open-file limit towards its hard limit so
/// that `clients` sockets fit; refuses the run when the hard limit is too
/// low, naming `ulimit -n`.
pub fn ensure_descriptors(clients: u64) -> anyhow::Result<()> {
    let wanted = clients + SPARE_DESCRIPTORS;
    let got = rlimit::increase_nofile_limit(wanted.max(4096)).map_err(|e| {
        Failure::new(
            Status::Usage,
            format!("cannot raise the open-file limit to {wanted}: {e}"),
        )
    })?;
    if got < wanted {
        return Err(Failure::new(Status::Usage, descriptors_message(clients, got)).into());
    }
    Ok(())
}

fn descriptors_message(clients: u64, limit: u64) -> String {
    format!(
        "--clients {clients} needs {} open files but this process may open {limit}; raise the hard limit (`ulimit -n {}` as root, or LimitNOFILE= in a systemd unit) or ask for fewer clients; the broker needs as many",
        clients + SPARE_DESCRIPTORS,
        clients + SPARE_DESCRIPTORS,
    )
}

/// Warns when the broker (`--broker-pid`) may open fewer files than the
/// run has clients: past its limit a broker refuses or drops connections,
/// which is worth measuring on purpose but not by accident.
pub fn warn_broker_descriptors(pid: u32, clients: u64) {
    let Ok(limits) = super::procfs::read(pid, "limits") else {
        return;
    };
    if let Some(limit) = max_open_files(&limits)
        && limit <= clients
    {
        tracing::warn!(
            broker_pid = pid,
            limit,
            clients,
            "the broker may open fewer files than the run has clients; raise its limit (`ulimit -n` where it starts, LimitNOFILE= in a systemd unit)"
        );
    }
}

/// The soft `Max open files` of a `/proc/<pid>/limits` text; `None` when
/// unlimited or absent.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Refuses a run to one broker address that needs more ephemeral ports
/// than `sources` source addresses have (`ip_local_port_range` each).
/// Without `/proc` (not Linux) nothing is checked.
pub fn ensure_ports(clients: u64, sources: usize) -> anyhow::Result<()> {
    let Ok(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return Ok(());
    };
    let Some(per_source) = ports_in_range(&range) else {
        return Ok(());
    };
    let available = per_source * sources as u64;
    if clients > available {
        return Err(
            Failure::new(Status::Usage, ports_message(clients, per_source, sources)).into(),
        );
    }
    Ok(())
}

fn ports_message(clients: u64, per_source: u64, sources: usize) -> String {
    let needed = clients.div_ceil(per_source);
    format!(
        "--clients {clients} needs more ephemeral ports than {sources} source address(es) have ({per_source} each, net.ipv4.ip_local_port_range); give {needed} or more with --source-addrs (for example 127.0.0.1,127.0.0.2 on loopback) or widen the range"
    )
}

/// The number of ports in an `ip_local_port_range` text ("32768\t60999").
fn ports_in_range(text: &str) -> Option<u64> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (low, high) = (it.next()?.ok()?, it.next()?.ok()?);
    (high >= low).then(|| high - low + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_is_counted_inclusively() {
        assert_eq!(ports_in_range("32768\t60999\n"), Some(28_232));
        assert_eq!(ports_in_range("1024 1024"), Some(1));
        assert_eq!(ports_in_range("60999 32768"), None);
        assert_eq!(ports_in_range("garbage"), None);
    }

    #[test]
    fn too_few_descriptors_names_ulimit() {
        let m = descriptors_message(19_000, 1_024);
        assert!(m.contains("ulimit -n 19064"), "{m}");
        assert!(m.contains("may open 1024"), "{m}");
    }

    #[test]
    fn too_few_ports_names_source_addrs() {
        let m = ports_message(60_000, 28_232, 1);
        assert!(m.contains("give 3 or more with --source-addrs"), "{m}");
    }

    #[test]
    fn the_brokers_open_file_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 20000                files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files("Max open files unlimited unlimited files\n"),
            None
        );
        assert!(max_open_files(&std::fs::read_to_string("/proc/self/limits").unwrap()).is_some());
    }

    #[test]
    fn a_run_within_the_limits_passes() {
        ensure_descriptors(10).unwrap();
        ensure_ports(10, 1).unwrap();
    }
}
