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
    /// Blocks the replica took from forward catch-up answers since it started.
    pub catch_up_blocks: AtomicU64,
}

/// How far a replica's highest certified round may run ahead of its committed root's
/// before it counts as syncing. In steady state the 2-chain rule keeps them two rounds
/// apart; a few rounds of timeouts add a few more.
const SYNC_ROUNDS: u64 = 20;

/// See [`Shared::sync_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    pub phase: &'static str,
    pub rounds_behind: u64,
    pub blocks_to_execute: u64,
    pub catch_up_blocks: u64,
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

    /// What this node is doing to reach the chain's head: `catching_up` while consensus
    /// knows of certified rounds well past its last commit (it fetches the chain),
    /// `executing` while execution lags consensus by more than ingress allows, `synced`
    /// otherwise; and how far behind it is, in rounds and in blocks to execute.
    pub fn sync_progress(&self) -> SyncProgress {
        let certified = self.certified_round.load(Ordering::Relaxed);
        let committed = self.committed_round.load(Ordering::Relaxed);
        let rounds_behind = certified.saturating_sub(committed);
        let blocks_to_execute = self.lag();
        let phase = if rounds_behind > SYNC_ROUNDS {
            "catching_up"
        } else if blocks_to_execute > self.max_lag {
            "executing"
        } else {
            "synced"
        };
        SyncProgress {
            phase,
            rounds_behind,
            blocks_to_execute,
            catch_up_blocks: self.catch_up_blocks.load(Ordering::Relaxed),
        }
    }

    pub fn overloaded(&self) -> bool {
        self.lag() > self.max_lag
    }

    pub fn round(&self) -> u64 {
        self.round.load(Ordering::Relaxed)
    }
}
