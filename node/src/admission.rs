//! Admission control: how much work this validator's ingress takes in, from its measured
//! capacity rather than from fixed queue sizes.
//!
//! An offer beyond what the chain can order waits somewhere (the mempool, batches waiting
//! for consensus), and the wait is what clients see as latency; worse, every admitted
//! transaction costs a signature check here and on every peer, so admitting the excess
//! takes CPU from the work that commits. So ingress keeps the work it has admitted and not
//! yet seen committed (`in flight`) within what commits in a latency budget at the rate it
//! measures: by Little's law, in flight / rate is the wait, and a limit of rate × budget
//! keeps the wait near the budget however much is offered. The limit finds capacity by
//! itself: while latency is below the budget the measured rate grows with the offered
//! load, and the limit with it; above capacity the rate stops growing and so does the
//! limit. Offers over the limit are refused `busy` before their body is read, so the
//! excess costs neither signature checks nor dissemination.
//!
//! In flight here = transactions in the mempool (not yet in a batch) + the items of own
//! batches awaiting their proof of availability (the dissemination layer counts them) +
//! the items of own proven batches that no block has committed yet. The last part is
//! [`Admission`], fed by the payload owner (which sees both the proofs and the commits);
//! it publishes its figures to [`IngressGate`], which the RPC reads.
//!
//! Invariants: the limit is never below `min_limit` (a validator that has committed
//! nothing yet, or whose clients just started, can still take a useful load) nor above
//! `max_limit`; an own batch is counted from its proof until its commit, or at most
//! [`FORGET_AFTER_MS`] (a lost commit notice or a batch that never commits cannot keep
//! ingress closed); memory is bounded by the batches in flight. Pure: time is an input.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

/// The window over which the commit rate is measured: several blocks even at a block
/// every 300 ms, and short enough that the limit follows a change of load within seconds.
pub const RATE_WINDOW_MS: u64 = 2_000;
/// An own batch proven this long ago and not seen committed is no longer counted: the
/// payload owner holds a proof at most 10 s for its predecessors, and a batch still
/// uncommitted after three times that was dropped somewhere (its transactions may be
/// offered again by their clients).
pub const FORGET_AFTER_MS: u64 = 30_000;

/// The limits of [`Admission`], from the node's config.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionConfig {
    /// The wait in flight the limit aims at, in milliseconds.
    pub latency_budget_ms: u64,
    /// The limit when the measured rate gives less.
    pub min_limit: u64,
    /// The limit when the measured rate gives more (the mempool's capacity).
    pub max_limit: u64,
}

/// What the payload owner knows about this validator's own work in flight. Pure.
pub struct Admission {
    config: AdmissionConfig,
    /// Own proven batches not committed yet: seq -> (items, proven at).
    own: BTreeMap<u64, (u64, u64)>,
    own_items: u64,
    /// Own items committed, by commit time, within [`RATE_WINDOW_MS`].
    commits: VecDeque<(u64, u64)>,
    committed_in_window: u64,
    /// When the first own batch was proven: the rate is measured over the time since,
    /// until a whole window has passed.
    started_ms: Option<u64>,
}

impl Admission {
    pub fn new(config: AdmissionConfig) -> Self {
        Admission {
            config,
            own: BTreeMap::new(),
            own_items: 0,
            commits: VecDeque::new(),
            committed_in_window: 0,
            started_ms: None,
        }
    }

    /// Own batch `seq`, of `items` transactions or payloads, got its proof.
    pub fn proven(&mut self, seq: u64, items: u64, now_ms: u64) {
        self.started_ms.get_or_insert(now_ms);
        if let Some((old, _)) = self.own.insert(seq, (items, now_ms)) {
            self.own_items -= old;
        }
        self.own_items += items;
        self.forget_stale(now_ms);
    }

    /// Own batch `seq` was committed. A batch not known here (made before a restart, or
    /// already forgotten) changes nothing.
    pub fn committed(&mut self, seq: u64, now_ms: u64) {
        if let Some((items, proven_ms)) = self.own.remove(&seq) {
            // The ordering share of a transaction's latency (README, latency by stage).
            metrics::histogram!("ordo_node_batch_ordering_seconds")
                .record(now_ms.saturating_sub(proven_ms) as f64 / 1e3);
            self.own_items -= items;
            self.commits.push_back((now_ms, items));
            self.committed_in_window += items;
        }
        self.forget_stale(now_ms);
    }

    /// The items of own batches proven and not committed.
    pub fn own_in_flight(&self) -> u64 {
        self.own_items
    }

    /// Own items committed per second, over the last [`RATE_WINDOW_MS`] (or the time since
    /// the first own batch, if shorter).
    pub fn rate_per_s(&mut self, now_ms: u64) -> u64 {
        self.expire_commits(now_ms);
        let Some(started) = self.started_ms else {
            return 0;
        };
        let span = now_ms.saturating_sub(started).clamp(1, RATE_WINDOW_MS);
        // A span under a tenth of the window says little; measuring over it would let one
        // early block set a limit far above capacity.
        let span = span.max(RATE_WINDOW_MS / 10);
        self.committed_in_window.saturating_mul(1_000) / span
    }

    /// How much in flight ingress admits now.
    pub fn limit(&mut self, now_ms: u64) -> u64 {
        let by_rate = self
            .rate_per_s(now_ms)
            .saturating_mul(self.config.latency_budget_ms)
            / 1_000;
        by_rate
            .max(self.config.min_limit)
            .min(self.config.max_limit.max(self.config.min_limit))
    }

    fn expire_commits(&mut self, now_ms: u64) {
        while let Some(&(at, items)) = self.commits.front() {
            if now_ms.saturating_sub(at) < RATE_WINDOW_MS {
                break;
            }
            self.commits.pop_front();
            self.committed_in_window -= items;
        }
    }

    fn forget_stale(&mut self, now_ms: u64) {
        let stale: Vec<u64> = self
            .own
            .iter()
            .filter(|(_, &(_, at))| now_ms.saturating_sub(at) >= FORGET_AFTER_MS)
            .map(|(&seq, _)| seq)
            .collect();
        for seq in stale {
            if let Some((items, _)) = self.own.remove(&seq) {
                self.own_items -= items;
                metrics::counter!("ordo_node_admission_forgotten_batches_total").increment(1);
            }
        }
    }
}

/// What the RPC reads to admit or refuse an offer: published by the payload owner after
/// every change, read lock-free by every request.
#[derive(Debug)]
pub struct IngressGate {
    own_in_flight: AtomicU64,
    limit: AtomicU64,
    /// Items of requests admitted and still being checked: counted before they reach the
    /// mempool, so that concurrent requests cannot all pass the same check.
    reserved: AtomicU64,
}

/// Room taken for one admitted request's items while it is checked and inserted; given
/// back on drop, when the items are in the mempool (and counted there) or refused.
#[derive(Debug)]
pub struct Reservation<'a> {
    gate: &'a IngressGate,
    items: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.gate.reserved.fetch_sub(self.items, Ordering::Relaxed);
    }
}

/// Why an offer was refused: the figures the `busy` answer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub in_flight: u64,
    pub limit: u64,
}

impl IngressGate {
    pub fn new(config: &AdmissionConfig) -> Self {
        IngressGate {
            own_in_flight: AtomicU64::new(0),
            limit: AtomicU64::new(config.min_limit),
            reserved: AtomicU64::new(0),
        }
    }

    /// Publishes what [`Admission`] says now.
    pub fn publish(&self, admission: &mut Admission, now_ms: u64) {
        let own = admission.own_in_flight();
        let limit = admission.limit(now_ms);
        self.own_in_flight.store(own, Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        metrics::gauge!("ordo_node_admission_own_in_flight").set(own as f64);
        metrics::gauge!("ordo_node_admission_limit").set(limit as f64);
    }

    /// Admits an offer of `items` while `waiting` more items, not yet proven, are in
    /// flight here (the mempool and own batches awaiting proofs), if anything is left
    /// under the limit. The whole offer is admitted then, even if it goes past the limit:
    /// requiring it to fit would refuse a large request (a client catching up) for as long
    /// as anything else is in flight, that is for ever under load. So the limit is
    /// exceeded by at most one request per request in progress (each bounded by the body
    /// limit), and concurrent requests see each other's reservations.
    pub fn admit(&self, items: u64, waiting: u64) -> Result<Reservation<'_>, Refusal> {
        let before = self.reserved.fetch_add(items, Ordering::Relaxed);
        let reservation = Reservation { gate: self, items };
        let in_flight = self.own_in_flight.load(Ordering::Relaxed) + waiting + before;
        let limit = self.limit.load(Ordering::Relaxed);
        if in_flight >= limit {
            drop(reservation);
            metrics::counter!("ordo_node_admission_refused_total").increment(1);
            return Err(Refusal { in_flight, limit });
        }
        Ok(reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdmissionConfig {
        AdmissionConfig {
            latency_budget_ms: 500,
            min_limit: 1_000,
            max_limit: 100_000,
        }
    }

    #[test]
    fn the_limit_is_the_budget_at_the_measured_rate_within_its_bounds() {
        let mut a = Admission::new(config());
        assert_eq!(a.limit(0), 1_000, "nothing measured yet: the floor");
        // 20 batches of 1,000 committed over two seconds: 10,000 a second.
        for i in 0..20u64 {
            a.proven(i, 1_000, i * 100);
            a.committed(i, i * 100 + 50);
        }
        assert_eq!(a.rate_per_s(2_000), 10_000);
        assert_eq!(a.limit(2_000), 5_000);
        // Nothing commits for a whole window: back to the floor.
        assert_eq!(a.limit(1_950 + RATE_WINDOW_MS), 1_000);

        let mut huge = Admission::new(AdmissionConfig {
            max_limit: 3_000,
            ..config()
        });
        huge.proven(0, 1_000_000, 0);
        huge.committed(0, 1_000);
        assert_eq!(huge.limit(1_000), 3_000, "capped at the maximum");
    }

    #[test]
    fn own_batches_count_from_proof_to_commit_and_stale_ones_are_forgotten() {
        let mut a = Admission::new(config());
        a.proven(1, 300, 0);
        a.proven(2, 200, 10);
        assert_eq!(a.own_in_flight(), 500);
        a.committed(1, 100);
        assert_eq!(a.own_in_flight(), 200);
        a.committed(1, 110);
        a.committed(99, 110);
        assert_eq!(
            a.own_in_flight(),
            200,
            "a repeated or unknown commit changes nothing"
        );
        a.proven(3, 50, 10 + FORGET_AFTER_MS);
        assert_eq!(
            a.own_in_flight(),
            50,
            "batch 2 never committed and was forgotten"
        );
    }

    #[test]
    fn an_early_commit_does_not_set_a_limit_far_above_capacity() {
        let mut a = Admission::new(config());
        a.proven(0, 4_000, 0);
        a.committed(0, 5);
        // 4,000 items 5 ms after the start would read as 800,000 a second.
        assert_eq!(a.rate_per_s(5), 20_000);
    }

    #[test]
    fn the_gate_refuses_at_the_limit_counting_the_mempool() {
        let mut a = Admission::new(config());
        let gate = IngressGate::new(&config());
        a.proven(0, 600, 0);
        gate.publish(&mut a, 0);
        assert!(gate.admit(1, 399).is_ok());
        assert!(
            gate.admit(5_000, 399).is_ok(),
            "room left: the whole request comes in"
        );
        assert_eq!(
            gate.admit(1, 400).unwrap_err(),
            Refusal {
                in_flight: 1_000,
                limit: 1_000
            }
        );
    }

    #[test]
    fn concurrent_requests_cannot_pass_the_same_check_and_room_comes_back() {
        let gate = IngressGate::new(&config());
        let first = gate
            .admit(1_200, 0)
            .expect("room under 1,000: admitted whole");
        assert_eq!(
            gate.admit(1, 0).unwrap_err(),
            Refusal {
                in_flight: 1_200,
                limit: 1_000
            },
            "the first request's items are counted while it is checked"
        );
        drop(first);
        assert!(gate.admit(600, 0).is_ok(), "its room came back");
    }
}
