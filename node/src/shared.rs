//! The chain's tips as consensus and execution publish them, for every task to read: the
//! store, the committed and executed heights (watches: readers wait on them instead of
//! polling), and the replica's rounds. Nothing here is written by more than one owner:
//! the driver writes the committed height and the rounds, the commit stage the executed
//! tip. State derived from executed blocks belongs to its subscribers (see
//! [`crate::events`]), not here.
//!
//! Invariant: `committed` and `executed` only grow, and `executed.height <= committed`.

use std::sync::atomic::{AtomicU64, Ordering};

use ordo_storage::Storage;
use ordo_types::{ChainId, Hash32};
use tokio::sync::watch;

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
    /// Last committed height recorded in storage (written by the driver).
    pub committed: watch::Sender<u64>,
    /// Last executed block written to storage (written by the commit stage).
    pub executed: watch::Sender<ExecutedTip>,
    /// The replica's current round.
    pub round: AtomicU64,
    /// Execution may fall this far behind consensus before ingress is refused.
    pub max_lag: u64,
    /// The highest round of a verified certificate the replica holds, and the round of
    /// its committed root: a replica that knows of certificates far above what it has
    /// committed is fetching the chain. Both come from the consensus driver, never from
    /// what a peer merely claims.
    pub certified_round: AtomicU64,
    pub committed_round: AtomicU64,
}

/// How far a replica's highest certified round may run ahead of its committed root's
/// before it counts as syncing. In steady state the 2-chain rule keeps them two rounds
/// apart; a few rounds of timeouts add a few more.
const SYNC_ROUNDS: u64 = 20;

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
}
