//! The pacemaker: the current round, when it began, this replica's timeout in it, and the
//! one timer the replica asks the driver for.
//!
//! A round's timer runs `base_timeout_ms`, doubled for each round since the last QC (up to
//! `max_timeout_exponent` times), so that rounds without a QC give a slow network ever more
//! time while one QC brings the timer back down. A leader with nothing to propose waits
//! for payload too; the driver's one timer is whichever deadline comes first.
//!
//! Invariants: the round only grows; entering a round clears our timeout and the leader's
//! wait; an [`Action::SetTimer`] is emitted only when the deadline changes.

use crate::messages::{Round, Timeout};

use super::events::Action;

pub(super) struct Pacemaker {
    base_timeout_ms: u64,
    max_timeout_exponent: u32,
    round: Round,
    round_started: u64,
    /// When the current round times out (again, once it has).
    timeout_at: u64,
    /// When a leader waiting for payload proposes anyway.
    propose_at: Option<u64>,
    /// The deadline last sent to the driver.
    last_timer: Option<u64>,
    /// Our timeout of the current round, broadcast again until the round ends.
    my_timeout: Option<Timeout>,
}

impl Pacemaker {
    pub(super) fn new(base_timeout_ms: u64, max_timeout_exponent: u32) -> Self {
        Self {
            base_timeout_ms,
            max_timeout_exponent,
            round: 0,
            round_started: 0,
            timeout_at: u64::MAX,
            propose_at: None,
            last_timer: None,
            my_timeout: None,
        }
    }

    pub(super) fn round(&self) -> Round {
        self.round
    }

    pub(super) fn round_started(&self) -> u64 {
        self.round_started
    }

    pub(super) fn timeout_at(&self) -> u64 {
        self.timeout_at
    }

    fn round_timeout(&self, high_qc_round: Round) -> u64 {
        let behind = self.round.saturating_sub(high_qc_round.saturating_add(1));
        let exp = behind.min(u64::from(self.max_timeout_exponent)) as u32;
        self.base_timeout_ms.saturating_mul(1u64 << exp)
    }

    /// Enters `round` at `now` if it is ahead of the current one; returns whether it was.
    pub(super) fn enter(&mut self, round: Round, now: u64, high_qc_round: Round) -> bool {
        if round <= self.round {
            return false;
        }
        self.round = round;
        self.round_started = now;
        self.my_timeout = None;
        self.propose_at = None;
        self.timeout_at = now.saturating_add(self.round_timeout(high_qc_round));
        true
    }

    /// Whether the current round's timer has expired.
    pub(super) fn timeout_due(&self, now: u64) -> bool {
        now >= self.timeout_at
    }

    /// The round timed out: run its timer again, for the repeated broadcasts.
    pub(super) fn restart_timeout(&mut self, now: u64, high_qc_round: Round) {
        self.timeout_at = now.saturating_add(self.round_timeout(high_qc_round));
    }

    pub(super) fn my_timeout(&self) -> Option<&Timeout> {
        self.my_timeout.as_ref()
    }

    pub(super) fn record_timeout(&mut self, t: Timeout) {
        self.my_timeout = Some(t);
    }

    /// Whether a leader's wait for payload ended by `now`; it ends the wait if so.
    pub(super) fn propose_due(&mut self, now: u64) -> bool {
        if matches!(self.propose_at, Some(at) if now >= at) {
            self.propose_at = None;
            return true;
        }
        false
    }

    pub(super) fn waiting_to_propose(&self) -> bool {
        self.propose_at.is_some()
    }

    pub(super) fn wait_to_propose(&mut self, until: u64) {
        self.propose_at = Some(until);
    }

    pub(super) fn stop_waiting_to_propose(&mut self) {
        self.propose_at = None;
    }

    /// Asks the driver for a tick at the earliest deadline, if that changed.
    pub(super) fn schedule_timer(&mut self, out: &mut Vec<Action>) {
        let deadline = match self.propose_at {
            Some(p) => p.min(self.timeout_at),
            None => self.timeout_at,
        };
        if deadline != u64::MAX && self.last_timer != Some(deadline) {
            self.last_timer = Some(deadline);
            out.push(Action::SetTimer {
                deadline_ms: deadline,
            });
        }
    }
}
