//! `broker --version`: the package version and the git revision it was
//! built from (broker/build.rs), so a CI log says exactly what ran.

#![allow(clippy::unwrap_used)]

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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "broker {} (git {})\n",
            env!("CARGO_PKG_VERSION"),
            revision()
        )
    );
}
