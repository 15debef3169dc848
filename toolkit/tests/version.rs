//! `toolkit --version`: the package version and the git revision it was
//! built from (toolkit/build.rs), so a CI log says exactly what ran.

#![allow(clippy::unwrap_used)]

mod common;

/// `git rev-parse --short HEAD` here, or `unknown` without git or a
/// repository, as the build script falls back.
fn revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[test]
fn version_names_the_git_revision() {
    common::toolkit()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!(
            "toolkit {} (git {})\n",
            env!("CARGO_PKG_VERSION"),
            revision()
        ));
}
