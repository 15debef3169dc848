//! `broker --version`: the package version and the git revision it was
//! built from (build-support/git_revision.rs), so a CI log says exactly what
//! ran.

#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn version_names_the_git_revision() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_broker"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        testsupport::expected_version_line(
            "broker",
            env!("CARGO_PKG_VERSION"),
            Path::new(env!("CARGO_MANIFEST_DIR"))
        )
    );
}
