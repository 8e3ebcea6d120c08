//! What the node's tasks share: the store, the chain tips that consensus and execution
//! publish, transactions accepted here and still pending, and the state-root tracker.
//!
//! Invariant: `committed` and `executed` only grow, and `executed.height <= committed`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ordo_storage::Storage;
use ordo_types::{ChainId, Hash32};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::roots::RootTracker;

/// The latest executed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutedTip {
    pub height: u64,
    pub state_root: Hash32,
    pub timestamp_ms: u64,
}

pub struct Shared {
    pub chain_id: ChainId,
    pub storage: Storage,
    /// Last committed height recorded in storage.
    pub committed: watch::Sender<u64>,
    pub executed: watch::Sender<ExecutedTip>,
    /// The replica's current round.
    pub round: AtomicU64,
    /// Set when our state root diverged from a quorum's: votes are no longer sent.
    pub stop_voting: AtomicBool,
    /// Set on the first fatal error; the node shuts down.
    pub fatal: Mutex<Option<String>>,
    /// Transactions accepted by this node's RPC and not yet executed: hash -> expiry.
    pub pending: Mutex<HashMap<Hash32, u64>>,
    pub roots: Mutex<RootTracker>,
    /// Execution may fall this far behind consensus before ingress is refused.
    pub max_lag: u64,
    /// The highest round of a verified certificate the replica holds, and the round of
    /// its committed root: a replica that knows of certificates far above what it has
    /// committed is fetching the chain. Both come from the consensus driver, never from
    /// what a peer merely claims.
    pub certified_round: AtomicU64,
    pub committed_round: AtomicU64,
    /// The transaction hashes of the most recently executed blocks, in order, so that
    /// clients following the chain read them without touching RocksDB.
    pub recent_blocks: Mutex<VecDeque<(u64, Arc<Vec<Hash32>>)>>,
}

/// How far a replica's highest certified round may run ahead of its committed root's
/// before it counts as syncing. In steady state the 2-chain rule keeps them two rounds
/// apart; a few rounds of timeouts add a few more.
const SYNC_ROUNDS: u64 = 20;

/// How many executed blocks keep their transaction lists in memory.
pub const RECENT_BLOCKS: usize = 1024;

impl Shared {
    pub fn committed_height(&self) -> u64 {
        *self.committed.borrow()
    }

    pub fn executed_tip(&self) -> ExecutedTip {
        *self.executed.borrow()
    }

    /// How many committed blocks wait for execution.
    pub fn lag(&self) -> u64 {
        self.committed_height()
            .saturating_sub(self.executed_tip().height)
    }

    /// Records the transactions executed at `height` (heights arrive in order).
    pub fn remember_block(&self, height: u64, hashes: Vec<Hash32>) {
        let mut recent = self.recent_blocks.lock();
        recent.push_back((height, Arc::new(hashes)));
        while recent.len() > RECENT_BLOCKS {
            recent.pop_front();
        }
    }

    /// The transactions executed at `height`, if it is recent enough to be held.
    pub fn recent_block(&self, height: u64) -> Option<Arc<Vec<Hash32>>> {
        let recent = self.recent_blocks.lock();
        let first = recent.front()?.0;
        let (h, hashes) = recent.get(usize::try_from(height.checked_sub(first)?).ok()?)?;
        (*h == height).then(|| hashes.clone())
    }

    /// Whether this node is catching up: execution lags consensus, or consensus knows of
    /// certified rounds well past its last commit.
    pub fn syncing(&self) -> bool {
        let certified = self.certified_round.load(Ordering::Relaxed);
        let committed = self.committed_round.load(Ordering::Relaxed);
        self.lag() > self.max_lag || certified > committed.saturating_add(SYNC_ROUNDS)
    }

    pub fn overloaded(&self) -> bool {
        self.lag() > self.max_lag
    }

    pub fn round(&self) -> u64 {
        self.round.load(Ordering::Relaxed)
    }

    /// Records the first fatal error; the node's main loop stops on it.
    pub fn set_fatal(&self, reason: String) {
        let mut fatal = self.fatal.lock();
        if fatal.is_none() {
            tracing::error!(%reason, "fatal error, shutting down");
            *fatal = Some(reason);
        }
    }
}
