//! Puts the git revision into `--version`: see build-support/git_revision.rs,
//! shared with the other binary's build script.

include!("../build-support/git_revision.rs");
