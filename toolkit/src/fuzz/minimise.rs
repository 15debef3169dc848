//! Making a failing batch small: keep one session if one alone still
//! brings the failure about, then drop its steps one by one, then chunks of
//! bytes (halving the chunk down to one byte), then its slow writes, keeping
//! each cut after which the failure still happens. Every try replays the
//! candidate against a healthy broker (brought back after each failure by
//! [`Health::recover`]) and runs the liveness check; a try counts only if it
//! fails the same way (crash or hang) as the original.

use super::drive::{Pace, play_all};
use super::generate::Session;
use super::health::{FailureKind, Health};
use crate::bench::transport::Target;

/// A way to cut `n` bytes at `at` out of a step: the shorter bytes (`None`
/// when that cut cannot be made) and the length `at` counts in.
type Cut = fn(&[u8], usize, usize) -> (Option<Vec<u8>>, usize);

/// Raw bytes: any cut that leaves something.
fn cut_bytes(bytes: &[u8], at: usize, n: usize) -> (Option<Vec<u8>>, usize) {
    if n == 0 || at >= bytes.len() {
        return (None, bytes.len());
    }
    let mut v = bytes.to_vec();
    v.drain(at..(at + n).min(bytes.len()));
    ((!v.is_empty()).then_some(v), bytes.len())
}

/// Inside the body of a step that is one whole packet (its Remaining
/// Length true), rewriting the length to match, so a long payload can go
/// without the packet turning into a truncated one.
fn cut_body(bytes: &[u8], at: usize, n: usize) -> (Option<Vec<u8>>, usize) {
    let Ok(Some(header)) = mqtt_codec::parse_fixed_header(bytes) else {
        return (None, 0);
    };
    if header.packet_len() != bytes.len() {
        return (None, 0);
    }
    let body = &bytes[header.header_len..];
    if n == 0 || at >= body.len() {
        return (None, body.len());
    }
    let mut rest = body.to_vec();
    rest.drain(at..(at + n).min(body.len()));
    let mut out = bytes::BytesMut::with_capacity(rest.len() + 5);
    out.extend_from_slice(&bytes[..1]);
    mqtt_codec::write_remaining_length(&mut out, rest.len());
    out.extend_from_slice(&rest);
    (Some(out.to_vec()), body.len())
}

/// Why minimising stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The broker did not come back within `--restart-wait`.
    BrokerGone,
    /// The try budget ran out.
    OutOfTries,
}

/// The smallest sessions found, how many tries it took, and why it stopped
/// early, if it did.
#[derive(Debug)]
pub struct Minimised {
    /// Sessions that still fail.
    pub sessions: Vec<Session>,
    /// Replays run.
    pub tries: u32,
    /// Set when it stopped before trying every cut.
    pub stopped: Option<Stopped>,
}

/// Everything a try needs.
pub struct Minimiser<'a> {
    /// Where the sessions go.
    pub target: &'a Target,
    /// Session timing.
    pub pace: Pace,
    /// The liveness probe and how to bring the broker back.
    pub health: &'a Health,
    /// The failure to reproduce.
    pub kind: FailureKind,
    /// Most replays to run.
    pub max_tries: u32,
    /// Probe sequence number (shared with the run's probes).
    pub seq: &'a mut u32,
    /// Called after each try that reproduced, with the sessions so far
    /// (progress for the user).
    pub on_progress: &'a mut dyn FnMut(&[Session]),
}

impl Minimiser<'_> {
    /// Minimises `sessions`, which just failed (the broker is assumed down
    /// or hung: it is recovered before the first try).
    pub async fn run(mut self, sessions: Vec<Session>) -> Minimised {
        let mut state = Minimised {
            sessions,
            tries: 0,
            stopped: None,
        };
        // The broker just failed: bring it back before any try.
        if !self.health.recover(self.seq).await {
            state.stopped = Some(Stopped::BrokerGone);
            return state;
        }
        if state.sessions.len() > 1 {
            for one in state.sessions.clone() {
                match self
                    .reproduces(&mut state, std::slice::from_ref(&one))
                    .await
                {
                    Some(true) => {
                        state.sessions = vec![one];
                        break;
                    }
                    Some(false) => {}
                    None => return state,
                }
            }
        }
        if state.sessions.len() != 1 {
            return state;
        }
        // Drop whole steps, last first.
        let mut i = state.sessions[0].steps.len();
        while i > 0 {
            i -= 1;
            let mut candidate = state.sessions[0].clone();
            if candidate.steps.len() <= 1 {
                break;
            }
            candidate.steps.remove(i);
            if !self.keep_if_fails(&mut state, candidate).await {
                return state;
            }
        }
        // Shorten packet bodies (their Remaining Length rewritten to
        // match, so the packet stays whole), then drop raw bytes.
        for cut in [cut_body as Cut, cut_bytes] {
            for step in 0..state.sessions[0].steps.len() {
                if !self.shrink_step(&mut state, step, cut).await {
                    return state;
                }
            }
        }
        // Plain writes instead of slow ones.
        for step in 0..state.sessions[0].steps.len() {
            if state.sessions[0].steps[step].slow {
                let mut candidate = state.sessions[0].clone();
                candidate.steps[step].slow = false;
                if !self.keep_if_fails(&mut state, candidate).await {
                    return state;
                }
            }
        }
        state
    }

    /// Cuts chunks out of step `step` with `cut`, halving the chunk from
    /// half the length down to one byte. `false` when minimising must stop.
    async fn shrink_step(&mut self, state: &mut Minimised, step: usize, cut: Cut) -> bool {
        let len = |state: &Minimised| cut(&state.sessions[0].steps[step].bytes, 0, 0).1;
        let mut chunk = len(state) / 2;
        while chunk >= 1 {
            let mut at = 0;
            while at < len(state) {
                let (cut_bytes, _) = cut(&state.sessions[0].steps[step].bytes, at, chunk);
                let Some(bytes) = cut_bytes else {
                    at += chunk;
                    continue;
                };
                let mut candidate = state.sessions[0].clone();
                candidate.steps[step].bytes = bytes;
                let before = len(state);
                if !self.keep_if_fails(state, candidate).await {
                    return false;
                }
                if len(state) == before {
                    at += chunk;
                }
            }
            chunk /= 2;
        }
        true
    }

    /// Tries `candidate`; keeps it when the failure reproduces. `false`
    /// when minimising must stop (see [`Minimised::stopped`]).
    async fn keep_if_fails(&mut self, state: &mut Minimised, candidate: Session) -> bool {
        match self
            .reproduces(state, std::slice::from_ref(&candidate))
            .await
        {
            Some(true) => {
                state.sessions = vec![candidate];
                true
            }
            Some(false) => true,
            None => false,
        }
    }

    /// Replays `candidate` and checks the broker: `Some(true)` when it
    /// failed the same way (the broker is then brought back), `None` when
    /// minimising must stop.
    async fn reproduces(&mut self, state: &mut Minimised, candidate: &[Session]) -> Option<bool> {
        if state.tries >= self.max_tries {
            state.stopped = Some(Stopped::OutOfTries);
            return None;
        }
        state.tries += 1;
        play_all(self.target, candidate, self.pace).await;
        *self.seq += 1;
        match self.health.check(*self.seq).await {
            Ok(()) => Some(false),
            Err(u) => {
                let same = u.kind == self.kind;
                if same {
                    (self.on_progress)(candidate);
                }
                if !self.health.recover(self.seq).await {
                    state.stopped = Some(Stopped::BrokerGone);
                    // The candidate did fail: keep it if it is the same
                    // failure, even though no more cuts can be tried.
                    if same {
                        state.sessions = candidate.to_vec();
                    }
                    return None;
                }
                Some(same)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_cuts_keep_the_packet_whole() {
        // PUBLISH QoS 0, topic "a", payload "xyz".
        let publish = [0x30, 0x06, 0x00, 0x01, b'a', b'x', b'y', b'z'];
        assert_eq!(
            cut_body(&publish, 3, 2),
            (Some(vec![0x30, 0x04, 0x00, 0x01, b'a', b'z']), 6)
        );
        assert_eq!(cut_body(&publish, 6, 1).1, 6);
        assert_eq!(cut_body(&publish, 6, 1).0, None);
        // A lying length: not one whole packet, so no body cut.
        assert_eq!(cut_body(&[0x30, 0x09, 0x00], 0, 1).0, None);
    }

    #[test]
    fn byte_cuts_leave_something() {
        assert_eq!(cut_bytes(&[1, 2, 3], 1, 5), (Some(vec![1]), 3));
        assert_eq!(cut_bytes(&[1], 0, 1).0, None);
    }
}
