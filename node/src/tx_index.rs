//! What the RPC knows about transactions beyond RocksDB: those accepted here and not yet
//! executed (to answer `pending`, and `expired` once a block past their expiry executed
//! without them), and the transaction lists of the most recent executed blocks (so that
//! clients following the chain read them without touching RocksDB).
//!
//! Owned by the RPC: its handlers record accepted transactions, and [`follow`] applies
//! every executed block as the commit stage publishes it ([`crate::events`]).
//!
//! Invariants: memory is bounded (pending entries leave when executed, or ten minutes of
//! block time after their expiry; [`RECENT_BLOCKS`] blocks at most); recent blocks are
//! held in height order, one list per height.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ordo_types::Hash32;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::events::ExecutedBlock;
use crate::supervisor::TaskError;

/// How many executed blocks keep their transaction lists in memory: about half a minute
/// of blocks under load, what a client following the chain needs.
pub const RECENT_BLOCKS: usize = 1024;
/// How long past its expiry (in block time) a pending transaction still answers
/// `expired` before it is forgotten (and answers `unknown`).
const EXPIRED_MEMORY_MS: u64 = 600_000;
/// Pending entries are swept for expiry every this many blocks.
const SWEEP_EVERY: u64 = 256;

#[derive(Default)]
pub struct TxIndex {
    /// Accepted here and not executed yet: hash -> expiry (Unix ms).
    pending: Mutex<HashMap<Hash32, u64>>,
    recent: Mutex<VecDeque<(u64, Arc<Vec<Hash32>>)>>,
}

impl TxIndex {
    /// Records transactions this node accepted: (hash, expiry).
    pub fn accepted(&self, txs: impl IntoIterator<Item = (Hash32, u64)>) {
        let mut pending = self.pending.lock();
        for (hash, expiry) in txs {
            pending.insert(hash, expiry);
        }
    }

    /// The expiry of a transaction accepted here and not executed yet.
    pub fn pending_expiry(&self, hash: &Hash32) -> Option<u64> {
        self.pending.lock().get(hash).copied()
    }

    /// The transactions executed at `height`, if it is recent enough to be held.
    pub fn recent_block(&self, height: u64) -> Option<Arc<Vec<Hash32>>> {
        let recent = self.recent.lock();
        let first = recent.front()?.0;
        let (h, hashes) = recent.get(usize::try_from(height.checked_sub(first)?).ok()?)?;
        (*h == height).then(|| hashes.clone())
    }

    /// Applies one executed block.
    fn executed(&self, block: &ExecutedBlock) {
        {
            let mut pending = self.pending.lock();
            for hash in block.transactions.iter() {
                pending.remove(hash);
            }
            if block.height % SWEEP_EVERY == 0 {
                let horizon = block.timestamp_ms.saturating_sub(EXPIRED_MEMORY_MS);
                pending.retain(|_, expiry| *expiry > horizon);
            }
        }
        let mut recent = self.recent.lock();
        recent.push_back((block.height, block.transactions.clone()));
        while recent.len() > RECENT_BLOCKS {
            recent.pop_front();
        }
    }
}

/// Applies every executed block to `index`, until the commit stage stops publishing.
pub async fn follow(
    index: Arc<TxIndex>,
    mut blocks: mpsc::Receiver<ExecutedBlock>,
) -> Result<(), TaskError> {
    while let Some(block) = blocks.recv().await {
        index.executed(&block);
    }
    Err(TaskError::closed("the executed-block events"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: u64, txs: &[u8], timestamp_ms: u64) -> ExecutedBlock {
        ExecutedBlock {
            height,
            block: Hash32::ZERO,
            state_root: Hash32::ZERO,
            timestamp_ms,
            transactions: Arc::new(txs.iter().map(|t| Hash32([*t; 32])).collect()),
            digests: Arc::new(vec![]),
        }
    }

    #[test]
    fn executed_blocks_clear_pending_and_are_remembered_in_order() {
        let index = TxIndex::default();
        index.accepted([(Hash32([1; 32]), 5_000), (Hash32([2; 32]), 5_000)]);
        index.executed(&block(7, &[1], 1_000));
        assert_eq!(index.pending_expiry(&Hash32([1; 32])), None);
        assert_eq!(index.pending_expiry(&Hash32([2; 32])), Some(5_000));
        assert_eq!(index.recent_block(7).unwrap().len(), 1);
        assert!(index.recent_block(8).is_none());
        // Expired long enough ago: forgotten at the next sweep.
        index.executed(&block(SWEEP_EVERY, &[], 5_000 + EXPIRED_MEMORY_MS + 1));
        assert_eq!(index.pending_expiry(&Hash32([2; 32])), None);
    }
}
