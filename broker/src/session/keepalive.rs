//! [`KeepAlive`]: when a silent client is given up on.
//!
//! A client that sends nothing for one and a half times its Keep Alive is
//! disconnected as if the network had failed, so its will is published
//! [MQTT-3.1.2-24]. A Keep Alive of 0 turns the mechanism off.

use std::time::{Duration, Instant};

/// The keep-alive deadline of one connection. Time is passed in, so a test
/// drives it with a fake clock.
#[derive(Debug, Clone, Copy)]
pub struct KeepAlive {
    last_heard: Instant,
    /// 1.5× the Keep Alive in milliseconds; 0 when off. (Not an
    /// `Option<Duration>`: every session holds one, so it is kept small.)
    grace_ms: u32,
}

impl KeepAlive {
    /// The deadline for a CONNECT with `keep_alive` seconds, heard at `now`.
    pub fn new(keep_alive: u16, now: Instant) -> Self {
        let mut grace_ms = u32::from(keep_alive) * 1500;
        if crate::mutant::active("keepalive-factor") {
            let factor = crate::mutant::value("keepalive-factor").unwrap_or(1.75);
            // Saturating float-to-int cast: a planted factor, never input.
            grace_ms = (f64::from(keep_alive) * factor * 1000.0) as u32;
        }
        Self {
            last_heard: now,
            grace_ms,
        }
    }

    /// Records that a packet arrived at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// When the client will have been silent too long; `None` when
    /// keep-alive is off.
    pub fn deadline(&self) -> Option<Instant> {
        (self.grace_ms > 0)
            .then(|| self.last_heard + Duration::from_millis(u64::from(self.grace_ms)))
    }

    /// Whether the client has been silent too long at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        if crate::mutant::active("keepalive-never-expires") {
            return false;
        }
        self.deadline().is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_client_expires_after_one_and_a_half_intervals() {
        let t0 = Instant::now();
        let mut ka = KeepAlive::new(10, t0);
        assert!(!ka.expired(t0 + Duration::from_millis(14_999)));
        assert!(ka.expired(t0 + Duration::from_secs(15)));
        ka.heard(t0 + Duration::from_secs(10));
        assert!(!ka.expired(t0 + Duration::from_secs(24)));
        assert!(ka.expired(t0 + Duration::from_secs(25)));
    }

    #[test]
    fn zero_turns_keep_alive_off() {
        let t0 = Instant::now();
        let ka = KeepAlive::new(0, t0);
        assert_eq!(ka.deadline(), None);
        assert!(!ka.expired(t0 + Duration::from_secs(1_000_000)));
    }
}
