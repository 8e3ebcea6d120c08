//! The payload pool: the digests the node reported stored, in the order reported, waiting
//! for this replica to propose them, and the recent window of digests already committed.
//!
//! Payload is opaque here: a digest stands for a batch that the node holds. A block gets a
//! vote only when all its digests are available, which is what lets a leader order
//! digests alone.
//!
//! Digests reported available for voting only (a checked proposal's payload) are kept
//! apart, in a bounded window, and never pooled on that report.
//!
//! A digest comes with its transactions and their gas; a proposal takes pooled digests in
//! order while they fit the block's limits, stopping at the first that does not (skipping
//! it would reorder an author's batches), but always takes one.
//!
//! Invariants: a digest is in the pool at most once, and only while available; a digest
//! committed within the window (`MAX_COMMITTED_DIGESTS`) is neither available nor pooled
//! again; the pool holds at most `max_pool` digests, dropping the oldest beyond it; the
//! vote-only window holds at most `MAX_VOTE_ONLY` digests.

use std::collections::{HashSet, VecDeque};

use ordo_types::{BoundedSet, Hash32};

use super::ReadyPayload;
use crate::messages::Block;

/// Committed digests remembered, so that a late or repeated report of one is not proposed
/// again.
const MAX_COMMITTED_DIGESTS: usize = 65_536;
/// Digests available for voting only: four times the default pool, far more than the
/// proposals of the rounds a replica may still vote in name.
const MAX_VOTE_ONLY: usize = 65_536;

/// What one block's payload may hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) digests: usize,
    pub(super) txs: u64,
    pub(super) gas: u64,
}

pub(super) struct PayloadPool {
    max_pool: usize,
    /// Available and not yet committed, oldest first, with each one's gas.
    pool: VecDeque<ReadyPayload>,
    available: HashSet<Hash32>,
    /// Available for voting only, not pooled.
    vote_only: BoundedSet<Hash32>,
    committed: BoundedSet<Hash32>,
}

impl PayloadPool {
    pub(super) fn new(max_pool: usize) -> Self {
        Self {
            max_pool,
            pool: VecDeque::new(),
            available: HashSet::new(),
            vote_only: BoundedSet::new(MAX_VOTE_ONLY),
            committed: BoundedSet::new(MAX_COMMITTED_DIGESTS),
        }
    }

    /// Remembers the payload of a block committed before a restart.
    pub(super) fn restore_committed(&mut self, block: &Block) {
        for d in &block.payload {
            self.committed.insert(*d);
        }
    }

    /// Takes the node's report of stored digests; new ones join the pool.
    pub(super) fn add_ready(&mut self, ready: Vec<ReadyPayload>) {
        for r in ready {
            if self.committed.contains(&r.digest) || !self.available.insert(r.digest) {
                continue;
            }
            self.pool.push_back(r);
        }
        while self.pool.len() > self.max_pool {
            if let Some(r) = self.pool.pop_front() {
                self.available.remove(&r.digest);
            }
        }
    }

    /// Takes the node's report of digests available for voting only.
    pub(super) fn add_available(&mut self, digests: Vec<Hash32>) {
        for d in digests {
            if !self.committed.contains(&d) && !self.available.contains(&d) {
                self.vote_only.insert(d);
            }
        }
    }

    /// The digests of `payload` not reported available, in order.
    pub(super) fn missing(&self, payload: &[Hash32]) -> Vec<Hash32> {
        payload
            .iter()
            .filter(|d| !self.available.contains(*d) && !self.vote_only.contains(d))
            .copied()
            .collect()
    }

    /// Pooled digests within `limits` together (at least one, if any), oldest first,
    /// leaving out those `in_flight` (already in an uncommitted block that the proposal
    /// extends).
    pub(super) fn proposable(&self, in_flight: &HashSet<Hash32>, limits: Limits) -> Vec<Hash32> {
        let (mut txs, mut gas) = (0u64, 0u64);
        let mut out = Vec::new();
        for r in self.pool.iter().filter(|r| !in_flight.contains(&r.digest)) {
            if out.len() == limits.digests {
                break;
            }
            let (more_txs, more_gas) = (txs.saturating_add(r.txs), gas.saturating_add(r.gas));
            if !out.is_empty() && (more_txs > limits.txs || more_gas > limits.gas) {
                break;
            }
            (txs, gas) = (more_txs, more_gas);
            out.push(r.digest);
        }
        out
    }

    /// These blocks committed: their digests leave the pool for good.
    pub(super) fn committed(&mut self, blocks: &[Block]) {
        for b in blocks {
            for d in &b.payload {
                self.available.remove(d);
                self.committed.insert(*d);
            }
        }
        let committed = &self.committed;
        self.pool.retain(|r| !committed.contains(&r.digest));
    }
}
