//! What `--version` must print: `NAME VERSION (git REVISION)`, the revision
//! being `git rev-parse --short HEAD` of the checkout, or `unknown` without
//! git or a repository, as `build-support/git_revision.rs` falls back.

use std::path::Path;
use std::process::Command;

/// The line `NAME --version` must print for the package at `manifest_dir`
/// (pass `env!("CARGO_MANIFEST_DIR")` and `env!("CARGO_PKG_VERSION")`).
pub fn expected_version_line(name: &str, version: &str, manifest_dir: &Path) -> String {
    let revision = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(manifest_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{name} {version} (git {revision})\n")
}
