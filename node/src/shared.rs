//! What the node's tasks share: the store, the chain tips that consensus and execution
//! publish, transactions accepted here and still pending, and the state-root tracker.
//!
//! Invariant: `committed` and `executed` only grow, and `executed.height <= committed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    /// Highest committed height a peer has shown us (through its state roots).
    pub peer_height: AtomicU64,
}

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
