//! The built-in suite, spec files and shipped baselines, embedded at build
//! time by `build.rs` from `fixtures/`.

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
