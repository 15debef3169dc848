//! The window in which a certificate is valid.

use time::{Duration, OffsetDateTime};

use super::CertError;

/// How far before "now" a fresh certificate's window starts, so that a peer
/// whose clock runs a little behind ours still accepts it.
const CLOCK_SKEW_MARGIN: Duration = Duration::hours(1);

/// The `notBefore`..`notAfter` window of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from an hour ago until `days` days from now. `days == 0` gives a
    /// certificate that expired a second before it was made, useful to test
    /// how clients react to an expired certificate.
    pub fn days_from_now(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        // Whole seconds: X.509 times carry no fractions, and a window that
        // round-trips exactly makes tests simpler.
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let not_after = if days == 0 {
            // Verifiers accept the notAfter second itself (RFC 5280 4.1.2.5),
            // so "now" would still be valid for up to a second.
            now - Duration::seconds(1)
        } else {
            now + Duration::days(i64::from(days))
        };
        Self {
            not_before: now - CLOCK_SKEW_MARGIN,
            not_after,
        }
    }

    /// An explicit window; refused when it ends before it starts.
    pub fn between(
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, CertError> {
        if not_after < not_before {
            return Err(CertError::InvertedValidity {
                not_before,
                not_after,
            });
        }
        Ok(Self {
            not_before,
            not_after,
        })
    }

    /// The same window moved `days` days into the past: with `days` larger
    /// than the window's length the certificate is already expired, which is
    /// how tests make expired certificates.
    pub fn backdated(self, days: u32) -> Self {
        let shift = Duration::days(i64::from(days));
        Self {
            not_before: self.not_before - shift,
            not_after: self.not_after - shift,
        }
    }

    /// Start of the window.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the window.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_before_now_and_lasts_the_days_asked() {
        let v = Validity::days_from_now(10);
        let now = OffsetDateTime::now_utc();
        assert!(v.not_before() < now);
        let length = v.not_after() - v.not_before();
        assert_eq!(length, Duration::days(10) + CLOCK_SKEW_MARGIN);
    }

    #[test]
    fn zero_days_is_already_expired() {
        let v = Validity::days_from_now(0);
        assert!(v.not_after() < OffsetDateTime::now_utc());
        assert!(v.not_before() < v.not_after());
    }

    #[test]
    fn backdating_past_the_length_expires_it() {
        let v = Validity::days_from_now(1).backdated(3);
        assert!(v.not_after() < OffsetDateTime::now_utc());
    }

    #[test]
    fn inverted_window_is_refused() {
        let now = OffsetDateTime::now_utc();
        let err = Validity::between(now, now - Duration::days(1)).unwrap_err();
        assert!(matches!(err, CertError::InvertedValidity { .. }));
    }
}
