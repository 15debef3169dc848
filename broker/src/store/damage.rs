//! Turning a damaged store file into an error instead of a panic.
//!
//! redb checks much of what it reads and reports `Corrupted`, but some
//! damage (a zeroed page, a flipped page-type byte) reaches an
//! `unreachable!` or an out-of-range index inside redb 4 (issue 14: 11 of
//! 262 damaged copies in `damage_tests`). The store wraps opening and
//! loading in [`without_panicking`]; the broker then exits with one line
//! naming the file instead of a panic message and backtrace.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::StoreError;

thread_local! {
    /// Set while this thread runs a closure under [`without_panicking`], so
    /// the panic hook stays quiet for the panics it catches.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`, turning a panic inside it into `Err` with the panic's message.
///
/// The process's panic hook is wrapped once so that a panic caught here
/// prints nothing (the caller reports it as an error instead); panics on
/// other threads, or outside `f`, reach the previous hook unchanged.
pub(super) fn without_panicking<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|q| q.replace(true));
    // The closure's state (a half-loaded router) is abandoned on a panic:
    // the caller gets an error and does not use it.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was_quiet));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the store library failed".to_owned());
        format!("the store library failed reading it ({text})")
    })
}

/// Gives a damaged file's errors the [`StoreError::Damaged`] shape (with
/// the hint to move the file aside); other errors (a locked file, no
/// permission) pass unchanged, as moving the file would not fix them.
pub(super) fn classify(e: StoreError) -> StoreError {
    match e {
        StoreError::Db { path, source } => match *source {
            redb::Error::Corrupted(reason) => StoreError::Damaged { path, reason },
            // redb reports a file that is not (or no longer) a redb file,
            // and one that ends early, as I/O errors of these kinds.
            redb::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                StoreError::Damaged {
                    path,
                    reason: io.to_string(),
                }
            }
            other => StoreError::Db {
                path,
                source: Box::new(other),
            },
        },
        other => other,
    }
}
