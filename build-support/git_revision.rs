// The build script of `toolkit` and `broker` (each `build.rs` includes this
// file): puts the git revision of the checkout into `GIT_REVISION` for
// `--version`.
//
// Runs `git rev-parse --short HEAD`; where git or the repository is missing
// (a source tarball, `cargo install` from a copy) the revision is
// `unknown` and the build goes on. Cargo reruns this script when `HEAD`
// moves: the `HEAD` file itself (a checkout), the branch ref it points to
// (a commit) and `packed-refs` (a `git gc`), each found through
// `git rev-parse --git-path`, so linked worktrees work too.
//
// One file for both: a build script cannot use a library crate of the
// workspace, so the two `build.rs` files `include!` this one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../build-support/git_revision.rs");
    println!("cargo::rerun-if-env-changed=GIT_DIR");
    let revision = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=GIT_REVISION={revision}");
    if revision == "unknown" {
        return;
    }
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git_path(name).filter(|p| p.exists()) {
            watch(&path);
        }
    }
    // On a branch, HEAD holds `ref: refs/heads/NAME` and a commit changes
    // only that ref file (with a detached HEAD, the HEAD file is enough). A
    // ref kept only in packed-refs has no file until the next commit writes
    // one into its directory, so then the directory is watched instead: a
    // path that does not exist would rerun this script on every build.
    if let Some(path) = git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git_path(&r)) {
        if path.exists() {
            watch(&path);
        } else if let Some(dir) = path.parent().filter(|d| d.exists()) {
            watch(dir);
        }
    }
}

fn watch(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}

/// Where git keeps `name` (`HEAD`, `refs/heads/main`): in a linked worktree
/// HEAD is in the worktree's git directory and refs in the common one.
/// Relative paths are relative to this package's directory, where cargo runs
/// build scripts and so where git ran.
fn git_path(name: &str) -> Option<PathBuf> {
    git(&["rev-parse", "--git-path", name]).map(PathBuf::from)
}

/// The trimmed standard output of `git ARGS`, or `None` when git is missing,
/// fails, or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
