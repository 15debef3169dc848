//! Any two strings as a topic filter and a topic name: validating and
//! matching them must keep the rules `mqtt_codec::check::check_topics` checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (filter, name) = input;
    if let Err(disagreement) = mqtt_codec::check::check_topics(filter, name) {
        panic!("{disagreement}");
    }
});
