//! How the toolkit is installed and shipped (issue 12): `cargo install`
//! is the first thing the README says, and release binaries carry no debug
//! info while the profiling profile keeps it for benchmarks.

#![allow(clippy::unwrap_used)]

use std::path::Path;

fn workspace_file(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(name)).unwrap()
}

/// Issue 12: release binaries kept debug info (toolkit 69 MB, broker 50 MB).
#[test]
fn release_binaries_carry_no_debug_info_and_profiling_ones_do() {
    let manifest: toml::Table = workspace_file("Cargo.toml").parse().unwrap();
    let profiles = manifest["profile"].as_table().unwrap();
    let release = profiles["release"].as_table().unwrap();
    assert!(
        matches!(
            release.get("debug"),
            None | Some(toml::Value::Boolean(false)) | Some(toml::Value::Integer(0))
        ),
        "{release:?}"
    );
    assert_eq!(release["strip"].as_str(), Some("debuginfo"));
    let profiling = profiles["profiling"].as_table().unwrap();
    assert_eq!(profiling["inherits"].as_str(), Some("release"));
    assert_ne!(profiling["debug"], toml::Value::Integer(0));
    let bench = workspace_file("scripts/bench");
    assert!(bench.contains("--profile profiling"), "scripts/bench");
    assert!(!bench.contains("target/release"), "scripts/bench");
}

/// Issue 12: no documented way to install the toolkit.
#[test]
fn the_readme_says_how_to_install_before_anything_else() {
    let readme = workspace_file("README.md");
    let install = readme
        .find("cargo install --locked --path toolkit")
        .expect("README gives the cargo install line");
    let first_section = readme.find("\n## ").unwrap();
    let next_section = readme[first_section + 1..].find("\n## ").unwrap() + first_section + 1;
    assert!(
        install > first_section && install < next_section,
        "the install line is in the README's first section"
    );
}
