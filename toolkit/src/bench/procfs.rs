//! Reading a broker's files under `/proc/<pid>/` (Linux), for its memory and
//! CPU figures.

use anyhow::Context;

/// The text of `/proc/<pid>/<file>`, or an error that names `--broker-pid`.
pub fn read(pid: u32, file: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read_to_string(&path).with_context(|| {
        format!("--broker-pid {pid}: cannot read {path}; is the broker running with that PID?")
    })
}
