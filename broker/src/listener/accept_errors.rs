//! What the accept loop does when `accept` fails or a new socket is turned
//! away: the spare descriptor that lets it close a connection it has no
//! descriptor for, and the log line per interval (not per socket) that
//! counts the refusals.
//!
//! Out of descriptors (`EMFILE`, `ENFILE`), `accept` fails and leaves the
//! connection in the listen backlog, where its client waits with no answer
//! and the next `accept` fails again at once. Mature servers (libuv,
//! nginx, haproxy) keep one descriptor in reserve: on `EMFILE` they close
//! it, accept the waiting connection on the number it freed, close that
//! connection at once (the client sees a close, not a hang), and take the
//! reserve again. [`Spare`] is that reserve.
//!
//! A flood of refusals must not flood the log: [`Report`] lets one line
//! through per [`REPORT_INTERVAL`] with how many were refused since the
//! last line, and a last line with the total once sockets are let in again.

use std::fs::File;
use std::io;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;

/// At most one log line per cause this often while refusals go on.
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Whether `accept` failed because descriptors ran out, in this process
/// (`EMFILE`) or system-wide (`ENFILE`).
pub(super) fn out_of_descriptors(e: &io::Error) -> bool {
    // The errno values are the same on Linux, the BSDs and macOS.
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}

/// Whether `accept` failed for the one connection it was taking (the
/// client gave up before it was accepted): nothing to wait out, the next
/// connection may be fine.
pub(super) fn lost_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// What [`Spare::shed`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Shed {
    /// A waiting connection was accepted and closed.
    Closed,
    /// No connection was waiting: Linux reserves the descriptor before it
    /// looks at the backlog, so `accept` fails with `EMFILE` even when no
    /// client is there. The listener waits for the next one as usual.
    NoneWaiting,
    /// There was no reserve to free, or `accept` failed even with it freed
    /// (the system-wide table refilled at once): back off.
    Failed,
}

/// One descriptor held in reserve (an open `/dev/null`), given up for a
/// moment to close a connection that came when no other was left.
#[derive(Debug)]
pub(super) struct Spare(Option<File>);

impl Spare {
    /// Takes the reserve. Without it (no `/dev/null`, or no descriptor
    /// even now) the accept loop can only back off when descriptors run
    /// out; [`Spare::shed`] tries to take it again each time.
    pub(super) fn reserve() -> Self {
        Self(File::open("/dev/null").ok())
    }

    /// Frees the reserve, accepts the connection waiting in `listener` and
    /// closes it at once, then takes the reserve again.
    pub(super) fn shed(&mut self, listener: &TcpListener) -> Shed {
        if self.0.take().is_none() {
            *self = Self::reserve();
            return Shed::Failed;
        }
        // One look, no wait. A no-op waker: the accept loop registers its
        // own when it next waits (tokio keeps the last waker given).
        let mut cx = Context::from_waker(Waker::noop());
        let shed = match listener.poll_accept(&mut cx) {
            Poll::Ready(Ok((tcp, _peer))) => {
                drop(tcp);
                Shed::Closed
            }
            Poll::Ready(Err(e)) if lost_connection(&e) => Shed::NoneWaiting,
            Poll::Ready(Err(_)) => Shed::Failed,
            Poll::Pending => Shed::NoneWaiting,
        };
        *self = Self::reserve();
        shed
    }
}

/// Refusals of one cause, counted between log lines: see the module doc.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// When the last line was let through; `None` while nothing is refused.
    last_line: Option<Instant>,
    /// Refusals since that line.
    unreported: u64,
    /// Refusals since this run of them began.
    run: u64,
}

impl Report {
    /// Counts one refusal at `now`. Returns the refusals to log (this one
    /// and those since the last line) when a line is due: the first of a
    /// run of refusals, then one per [`REPORT_INTERVAL`].
    pub(super) fn refused(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        self.run += 1;
        let due = self
            .last_line
            .is_none_or(|t| now.duration_since(t) >= REPORT_INTERVAL);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// A socket was let in. Returns, once per run of refusals, how many
    /// there were in all, for the line saying that the run is over.
    pub(super) fn recovered(&mut self) -> Option<u64> {
        self.last_line.take()?;
        self.unreported = 0;
        Some(std::mem::take(&mut self.run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_one_when_over() {
        let start = Instant::now();
        let mut r = Report::default();
        assert_eq!(r.recovered(), None, "nothing refused, nothing to say");
        assert_eq!(r.refused(start), Some(1), "the first refusal is logged");
        for i in 1..1_000 {
            let at = start + REPORT_INTERVAL * i / 1_000;
            assert_eq!(r.refused(at), None, "refusal {i} within the interval");
        }
        assert_eq!(r.refused(start + REPORT_INTERVAL), Some(1_000));
        assert_eq!(r.refused(start + REPORT_INTERVAL * 3 / 2), None);
        assert_eq!(r.recovered(), Some(1_002), "the run's total");
        assert_eq!(r.recovered(), None, "said once");
        assert_eq!(
            r.refused(start + REPORT_INTERVAL * 2),
            Some(1),
            "a new run starts with a line"
        );
    }

    #[test]
    fn errors_are_told_apart() {
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(24)));
        assert!(out_of_descriptors(&io::Error::from_raw_os_error(23)));
        assert!(!out_of_descriptors(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(lost_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(!lost_connection(&io::Error::from_raw_os_error(24)));
    }

    #[tokio::test]
    async fn shed_closes_the_waiting_connection_and_keeps_the_reserve() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut spare = Spare::reserve();
        assert!(spare.0.is_some(), "/dev/null opened");
        // The connection may reach the backlog a moment after `connect`
        // returns; wait for the listener to see it.
        tokio::time::timeout(Duration::from_secs(10), async {
            while spare.shed(&listener) != Shed::Closed {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the waiting connection was shed");
        assert!(spare.0.is_some(), "the reserve is taken again");
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .expect("the client sees the close");
        assert!(matches!(read, Ok(0) | Err(_)), "closed, got {read:?}");
        assert_eq!(spare.shed(&listener), Shed::NoneWaiting);
        assert!(spare.0.is_some(), "the reserve is taken again");

        // Without a reserve (it could not be taken back), the accept loop
        // is told to back off, and the reserve is tried for again.
        let mut lost = Spare(None);
        assert_eq!(lost.shed(&listener), Shed::Failed);
        assert!(lost.0.is_some(), "the reserve is taken again");
    }
}
