//! The built-in suite and spec files, embedded at build time by `build.rs`
//! from `fixtures/`.

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
