//! State reads for the executor: views over the database, the hot-key cache and the
//! blocks executed but not yet written.
//!
//! Pipelining: the executor stages block h with [`Storage::stage_executed`] as soon as it
//! has executed it, hands it to the writer, and at once takes a view for h+1; that view
//! sees h's writes from memory while [`Storage::commit_executed`] writes them to disk.
//! A view is a fixed list of staged blocks over the shared database and cache. It answers
//! for the state at its height as long as no block above that height has started to be
//! written; after that a read that would reach the cache or the database returns
//! [`StorageError::StaleView`] rather than a value from the future (reads answered by
//! the view's own staged blocks stay valid: those never change).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{Op, Result, StorageError};
use crate::executed::{BlockCommit, StagedBlock};
use crate::schema::state_cf_of;
use crate::store::{prev, Storage};

/// The state as of one height: read-only, `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct StateSnapshot {
    storage: Storage,
    /// Staged blocks above the database's height when the view was taken, oldest first.
    staged: Arc<[Arc<StagedBlock>]>,
    /// The view's height plus one (0: the empty state before any block).
    height_next: u64,
}

impl std::fmt::Debug for StateSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSnapshot")
            .field("height", &self.height())
            .field("staged", &self.staged.len())
            .finish()
    }
}

impl StateSnapshot {
    /// The height whose resulting state this view shows; `None` before any block.
    pub fn height(&self) -> Option<u64> {
        prev(self.height_next)
    }

    /// The value under `key`, with the storage error typed.
    pub fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        for block in self.staged.iter().rev() {
            if let Some(value) = block.get(key) {
                return Ok(value.map(<[u8]>::to_vec));
            }
        }
        let inner = &self.storage.inner;
        if let Some(value) = inner.cache.get(key) {
            self.check_fresh()?;
            return Ok(value);
        }
        let sequence = inner.cache.read_sequence();
        let value = inner
            .db
            .get_pinned_cf(inner.cf(state_cf_of(key)), key)
            .map(|v| v.map(|s| s.to_vec()))
            .map_err(|e| self.storage.fail(StorageError::from_rocks(e, Op::Read)))?;
        self.check_fresh()?;
        inner.cache.insert_read(key, value.clone(), sequence);
        Ok(value)
    }

    /// Whether a block above this view's height has started to be written, so that reads
    /// reaching the database may fail with [`StorageError::StaleView`]: a caller that saw
    /// a read fail takes a fresh view and tries again.
    pub fn is_stale(&self) -> bool {
        self.check_fresh().is_err()
    }

    fn check_fresh(&self) -> Result<()> {
        let horizon = self.storage.inner.horizon_next.load(Ordering::SeqCst);
        if horizon > self.height_next {
            return Err(StorageError::StaleView {
                view: self.height(),
                written: horizon - 1,
            });
        }
        Ok(())
    }
}

impl ordo_types::StateView for StateSnapshot {
    fn get(&self, key: &[u8]) -> ordo_types::Result<Option<Vec<u8>>> {
        self.read(key).map_err(Into::into)
    }
}

impl Storage {
    /// A view of the latest executed state: the database plus every staged block.
    pub fn state_view(&self) -> StateSnapshot {
        let staged = self.inner.staged.read();
        // Under the staging lock, so the database height and the staged list agree
        // (a commit raises the height before it unstages the block).
        let durable_next = self.inner.executed_next.load(Ordering::SeqCst);
        let height_next = staged
            .last()
            .map_or(durable_next, |b| durable_next.max(b.height + 1));
        StateSnapshot {
            storage: self.clone(),
            staged: staged.iter().cloned().collect(),
            height_next,
        }
    }

    /// The latest value of a state key, retrying if a block write overtakes the read.
    pub fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        loop {
            match self.state_view().read(key) {
                Err(StorageError::StaleView { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Makes an executed block's writes visible to [`Storage::state_view`] before they
    /// are written, so the next block can execute meanwhile. Heights follow the last
    /// staged or written block; the block must then be passed to
    /// [`Storage::commit_executed`].
    pub fn stage_executed(&self, commit: Arc<BlockCommit>) -> Result<()> {
        let block = Arc::new(StagedBlock::new(commit));
        let mut staged = self.inner.staged.write();
        let durable_next = self.inner.executed_next.load(Ordering::SeqCst);
        let expected_next = staged
            .last()
            .map_or(durable_next, |b| durable_next.max(b.height + 1));
        if expected_next != 0 && block.height != expected_next {
            return Err(StorageError::OutOfOrder {
                what: "staged",
                expected: expected_next,
                got: block.height,
            });
        }
        staged.push(block);
        metrics::gauge!("ordo_storage_staged_blocks").set(staged.len() as f64);
        Ok(())
    }

    /// Drops staged blocks up to `height`, now in the database.
    pub(crate) fn unstage(&self, height: u64) {
        let mut staged = self.inner.staged.write();
        staged.retain(|b| b.height > height);
        metrics::gauge!("ordo_storage_staged_blocks").set(staged.len() as f64);
    }

    /// Blocks staged and not yet written.
    pub fn staged_heights(&self) -> Vec<u64> {
        self.inner.staged.read().iter().map(|b| b.height).collect()
    }
}
