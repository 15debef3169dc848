//! Any bytes, as a stream cut into reads anywhere: the first two bytes of the
//! input choose the split point, the rest is the stream.
//! `mqtt_codec::check::check_stream` does the work.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [lo, hi, stream @ ..] = data else { return };
    let split = usize::from(u16::from_le_bytes([*lo, *hi]));
    if let Err(disagreement) = mqtt_codec::check::check_stream(stream, split) {
        panic!("{disagreement}");
    }
});
