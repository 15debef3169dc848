//! `toolkit --version`: the package version and the git revision it was
//! built from (build-support/git_revision.rs), so a CI log says exactly what
//! ran.

mod common;

use std::path::Path;

#[test]
fn version_names_the_git_revision() {
    common::toolkit()
        .arg("--version")
        .assert()
        .success()
        .stdout(testsupport::expected_version_line(
            "toolkit",
            env!("CARGO_PKG_VERSION"),
            Path::new(env!("CARGO_MANIFEST_DIR")),
        ));
}
