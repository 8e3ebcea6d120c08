//! The one owner of what consensus learns about payload, and in what order.
//!
//! Consensus proposes the digests reported *ready*, in the order they were reported, and
//! votes for a block once every digest it names is reported (ready or *available*). Three
//! sources feed it, each with its own ordering rule, merged here:
//! - this validator's batches, in creation order ([`super::own`]);
//! - peers' pushed batches, each author's in sequence order ([`super::peers`]);
//! - a checked proposal's batches, as their lookups find them ([`super::proposals`]):
//!   these are reported *available* only, for the vote; they are never proposed by this
//!   validator on the proposal's say-so (a leader's order is no evidence of an author's),
//!   only through the other two sources, so their order does not matter.
//!
//! While execution lags consensus beyond its limit, ready digests are held (fewer
//! proposals until execution catches up) and released, minus what was committed
//! meanwhile, when it has; available ones are never held, or consensus could not vote.
//! A held digest that a checked proposal names is reported available at once: it is
//! here, and holding it would hold the vote until the lag ends (in open-loop runs the
//! rounds then timed out one after another, since a lag makes blocks bigger).
//!
//! Invariants: a digest is reported ready at most once and available at most once, and
//! never available after it was reported ready; each author's ready digests follow its
//! sequence order; a digest is reported available only once it is known to be here (its
//! lookup found it, or it is held). Pure: no I/O, the time is an input.

use std::collections::{HashSet, VecDeque};

use ordo_network::BatchInfo;
use ordo_types::{BoundedSet, Hash32, PublicKey};

use super::own::OwnBatches;
use super::peers::{Offer, Sequencer};
use super::proposals::ProposalFetches;

/// Reported digests remembered, to report none twice: far more than consensus holds
/// uncommitted (its pool is 16,384 digests).
const REPORTED_WINDOW: usize = 200_000;
/// Committed digests remembered, to drop them from what a lag held back.
const COMMITTED_WINDOW: usize = 65_536;
/// Ready digests held back during an execution lag, at most. Ingress is refused during a
/// lag, so few new batches are made; beyond this the oldest are dropped (counted).
const MAX_HELD: usize = 65_536;

/// What the owner learns.
#[derive(Debug, Clone)]
pub enum Input {
    /// One of this validator's batches has its proof of availability.
    OwnProof { seq: u64, digest: Hash32 },
    /// A peer's batch, pushed by its author, verified and stored here.
    PeerStored(BatchInfo),
    /// A committed block held these batches: (author, sequence number, digest).
    Committed(Vec<(PublicKey, u64, Hash32)>),
    /// Consensus checked a proposal and lacks these digests of it, in its order.
    ProposalNamed(Vec<Hash32>),
    /// A lookup started for a proposal ended.
    Fetched { digest: Hash32, found: bool },
    /// Whether execution lags consensus beyond its limit.
    Lagging(bool),
    /// Time passed (an own batch's hold may have run out).
    Tick,
}

/// What the owner does about it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Tell consensus these may be proposed (and voted for), in this order.
    pub ready: Vec<Hash32>,
    /// Tell consensus these may be voted for.
    pub available: Vec<Hash32>,
    /// Look these up (memory, disk, peers) and report each with [`Input::Fetched`].
    pub fetch: Vec<Hash32>,
    /// Ready digests dropped because too many were held.
    pub dropped: usize,
}

pub struct PayloadOrder {
    own: OwnBatches,
    peers: Sequencer,
    proposals: ProposalFetches,
    lagging: bool,
    held: VecDeque<Hash32>,
    /// What `held` holds, for lookups by digest.
    held_set: HashSet<Hash32>,
    ready: BoundedSet<Hash32>,
    available: BoundedSet<Hash32>,
    committed: BoundedSet<Hash32>,
}

impl PayloadOrder {
    /// `first_seq`: this process's first own batch; `members`: the committee's keys;
    /// `pool`: the most digests consensus keeps waiting to be proposed.
    pub fn new(first_seq: u64, members: impl IntoIterator<Item = PublicKey>, pool: usize) -> Self {
        PayloadOrder {
            own: OwnBatches::new(first_seq),
            peers: Sequencer::new(members, pool),
            proposals: ProposalFetches::default(),
            lagging: false,
            held: VecDeque::new(),
            held_set: HashSet::new(),
            ready: BoundedSet::new(REPORTED_WINDOW),
            available: BoundedSet::new(REPORTED_WINDOW),
            committed: BoundedSet::new(COMMITTED_WINDOW),
        }
    }

    /// Learns `input` at `now_ms`.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Output {
        let mut out = Output::default();
        match input {
            Input::OwnProof { seq, digest } => {
                let released = self.own.proven(seq, digest, now_ms);
                self.offer(released, &mut out);
            }
            Input::PeerStored(info) => {
                let released = self.peers.learn(Offer::Stored(info));
                count_peer_offers(&released);
                self.offer(released, &mut out);
            }
            Input::Committed(batches) => {
                for (_, _, digest) in &batches {
                    self.committed.insert(*digest);
                }
                let released = self.peers.learn(Offer::Committed(batches));
                count_peer_offers(&released);
                self.offer(released, &mut out);
            }
            Input::ProposalNamed(digests) => {
                let mut wanted = Vec::new();
                for d in digests {
                    if self.available.contains(&d) {
                        continue;
                    }
                    if self.held_set.contains(&d) && !self.committed.contains(&d) {
                        self.available.insert(d);
                        out.available.push(d);
                    } else if !self.ready.contains(&d) {
                        wanted.push(d);
                    }
                }
                out.fetch = self.proposals.named(&wanted);
            }
            Input::Fetched { digest, found } => {
                if let Some(d) = self.proposals.ended(digest, found) {
                    if !self.ready.contains(&d) && self.available.insert(d) {
                        out.available.push(d);
                    }
                }
            }
            Input::Lagging(lagging) => {
                self.lagging = lagging;
                if !lagging {
                    self.held_set.clear();
                    let held: Vec<Hash32> = self.held.drain(..).collect();
                    for d in held {
                        if !self.committed.contains(&d) {
                            out.ready.push(d);
                        }
                    }
                }
            }
            Input::Tick => {
                let released = self.own.release(now_ms);
                self.offer(released, &mut out);
            }
        }
        out
    }

    /// When the owner must next be ticked, if at all.
    pub fn deadline(&self) -> Option<u64> {
        self.own.deadline()
    }

    /// Digests that may be proposed, in order: reported now, or held while lagging.
    fn offer(&mut self, digests: Vec<Hash32>, out: &mut Output) {
        for d in digests {
            if !self.ready.insert(d) {
                continue;
            }
            if self.lagging {
                self.held.push_back(d);
                self.held_set.insert(d);
                while self.held.len() > MAX_HELD {
                    if let Some(old) = self.held.pop_front() {
                        self.held_set.remove(&old);
                    }
                    out.dropped += 1;
                }
            } else {
                out.ready.push(d);
            }
        }
    }
}

fn count_peer_offers(released: &[Hash32]) {
    if !released.is_empty() {
        metrics::counter!("ordo_node_peer_batches_offered_total").increment(released.len() as u64);
    }
}
