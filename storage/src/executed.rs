//! An executed block's results in memory, before and while they are written: the
//! [`BlockCommit`] execution hands over, and the same writes indexed by key
//! ([`StagedBlock`]) for state views that read them before they reach the database.
//!
//! Invariant: a key written twice in one block takes its last write, both in the index
//! here and in the write batch built from the same commit (a stable sort by key), so a
//! staged block answers exactly what the database will hold once it is written.

use std::collections::HashMap;
use std::sync::Arc;

use ordo_types::{Hash32, StateAccumulator};

/// Everything storage keeps from executing one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCommit {
    pub height: u64,
    /// The hash consensus committed at `height`.
    pub block_hash: Hash32,
    /// The block's write set: `Some(value)` sets a key, `None` deletes it. Keys should be
    /// unique; if one repeats, its last write wins.
    pub state_writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The block's transactions in block order; a transaction's index here is its
    /// position.
    pub transactions: Vec<TxOutcome>,
    /// Hashes the block ordered that the duplicate rule skipped: recorded as ordered at
    /// this height ([`crate::Storage::ordered_at`]), since the index does not hold them.
    pub skipped: Vec<Hash32>,
    /// The accumulator of the state after this block; its root is the state root.
    pub accumulator: StateAccumulator,
}

/// One executed transaction: its hash, execution's status code and encoded receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    pub hash: Hash32,
    pub status: u8,
    pub receipt: Vec<u8>,
}

impl BlockCommit {
    pub fn state_root(&self) -> Hash32 {
        self.accumulator.root()
    }
}

/// A block executed but not yet in the database, indexed by key.
pub(crate) struct StagedBlock {
    pub height: u64,
    commit: Arc<BlockCommit>,
    /// Key to the position of its last write in `commit.state_writes`.
    index: HashMap<Vec<u8>, usize>,
}

impl StagedBlock {
    pub fn new(commit: Arc<BlockCommit>) -> Self {
        let mut index = HashMap::with_capacity(commit.state_writes.len());
        for (i, (key, _)) in commit.state_writes.iter().enumerate() {
            index.insert(key.clone(), i);
        }
        StagedBlock {
            height: commit.height,
            commit,
            index,
        }
    }

    /// `Some(value)` when this block wrote `key` (`None` inside for a deletion).
    #[allow(clippy::option_option)]
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.index
            .get(key)
            .map(|&i| self.commit.state_writes[i].1.as_deref())
    }
}
