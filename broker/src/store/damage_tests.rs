//! Damaged store files: every truncation, bit flip and zeroed page of a
//! real store must open as a store or fail with a [`StoreError`], never
//! panic (issue 14: 9 of 41 damaged copies panicked the broker at start).

use super::*;
use crate::router::test_support::{msg, park_with_message_in_flight, router};
use mqtt_codec::QoS;

/// A real store file's bytes: sessions (one with a message in flight,
/// queued messages) and retained messages saved through [`Store::save`].
async fn real_store_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let r = router(0);
    for n in 0..4 {
        park_with_message_in_flight(&r, &format!("keeper-{n}")).await;
    }
    for n in 0..20 {
        r.publish(&msg("q/2", QoS::ExactlyOnce, false, "queued"));
        r.publish(&msg(&format!("r/{n}"), QoS::AtLeastOnce, true, "retained"));
    }
    {
        let store = Store::open(dir.path()).expect("opens");
        store.save(&r).expect("saves");
        // A second save leaves older pages behind, as a running broker does.
        r.publish(&msg("r/extra", QoS::AtMostOnce, true, "later"));
        store.save(&r).expect("saves again");
    }
    let bytes = std::fs::read(dir.path().join(STORE_FILE)).expect("store file");
    // The file is only useful if loading it back gives what was saved.
    let copy = tempfile::tempdir().expect("temp dir");
    std::fs::write(copy.path().join(STORE_FILE), &bytes).expect("copy");
    let counts = Store::open_and_load(copy.path(), &router(0), 10).expect("intact copy loads");
    assert_eq!(counts.1, (4, 21));
    bytes
}

/// The damaged copies: truncations, single bit flips and zeroed 4 KiB
/// pages, at offsets spread over the whole file and dense in its header.
fn damaged_copies(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let len = bytes.len();
    let mut copies = Vec::new();
    let mut offsets: Vec<usize> = (0..512).step_by(7).collect();
    offsets.extend((512..len).step_by((len / 48).max(1)));
    for &cut in &offsets {
        copies.push((format!("truncated to {cut} bytes"), bytes[..cut].to_vec()));
    }
    for (i, &at) in offsets.iter().enumerate() {
        let mut b = bytes.to_vec();
        b[at] ^= 1 << (i % 8);
        copies.push((format!("bit {} flipped at {at}", i % 8), b));
    }
    for page in (0..len).step_by(4096) {
        let mut b = bytes.to_vec();
        let end = (page + 4096).min(len);
        b[page..end].fill(0);
        copies.push((format!("page at {page} zeroed"), b));
    }
    copies
}

#[tokio::test]
async fn damaged_store_files_never_panic_the_loader() {
    let bytes = real_store_bytes().await;
    let copies = damaged_copies(&bytes);
    assert!(copies.len() > 150, "{} copies", copies.len());
    let mut panicked = Vec::new();
    let (mut loaded, mut refused) = (0, 0);
    for (what, damaged) in &copies {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(STORE_FILE), damaged).expect("write copy");
        let outcome = std::panic::catch_unwind(|| {
            Store::open_and_load(dir.path(), &router(0), 10).map(|_| ())
        });
        match outcome {
            Ok(Ok(())) => loaded += 1,
            Ok(Err(e)) => {
                let text = e.to_string();
                // Every refusal names the file and how to start anyway.
                assert!(
                    text.contains(STORE_FILE) && text.contains("move it aside: mv "),
                    "{what}: {text}"
                );
                refused += 1;
            }
            Err(_) => panicked.push(what.clone()),
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {} damaged copies panicked ({loaded} loaded, {refused} refused): {panicked:?}",
        panicked.len(),
        copies.len()
    );
    assert!(refused > 0, "no damaged copy was refused ({loaded} loaded)");
}

/// The bytes of [`real_store_bytes`], made once for the property below.
fn store_bytes_once() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(real_store_bytes())
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// Several kinds of damage at once, anywhere: a cut and up to eight
    /// flipped bytes. Opening and loading gives a store or an error.
    #[test]
    fn random_damage_never_panics_the_loader(
        cut in 0.0f64..=1.0,
        flips in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 0..8),
    ) {
        let mut bytes = store_bytes_once().to_vec();
        let len = bytes.len();
        for (at, mask) in flips {
            let i = (at * len as f64) as usize;
            bytes[i.min(len - 1)] ^= mask;
        }
        bytes.truncate((cut * len as f64) as usize);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(STORE_FILE), &bytes).expect("write copy");
        let outcome = std::panic::catch_unwind(|| {
            Store::open_and_load(dir.path(), &router(0), 10).map(|_| ())
        });
        proptest::prop_assert!(outcome.is_ok(), "the loader panicked");
    }
}
