//! Any text as a scenario file: the parser must answer with scenarios or a
//! located error, never panic.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(conformance::spec::statement_ids);

fuzz_target!(|text: &str| {
    let _ = conformance::script::parse_file("fuzz.toml", text, &KNOWN);
});
