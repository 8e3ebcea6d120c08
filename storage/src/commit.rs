//! The atomic commit of one executed block.
//!
//! A block's state writes, receipts, transaction index entries, its state root, the
//! accumulator and the executed-height marker go to RocksDB in one write batch: after a
//! crash, either all of a block's results are there or none are, and the marker names
//! exactly the last block whose results are. Executed heights follow one another, and a
//! block is executed only once consensus committed it at that height.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ordo_types::Hash32;
use rocksdb::WriteBatch;
use tracing::debug;

use crate::error::{Op, Result, StorageError};
use crate::executed::{BlockCommit, TxOutcome};
use crate::schema::*;
use crate::store::{prev, Storage};

impl Storage {
    /// Writes an executed block's results in one atomic batch and returns its state root.
    /// Durable on return when `sync_commits` is set. The block may have been staged
    /// with [`Storage::stage_executed`]; it leaves the staging overlay once written.
    pub fn commit_executed(&self, commit: &BlockCommit) -> Result<Hash32> {
        self.check_writable()?;
        let started = Instant::now();
        let _exec = self.inner.exec_lock.lock();
        // A restore's partial state is no base to execute on.
        if let Some(height) = self.inner.restore.lock().height() {
            return Err(StorageError::RestoreInProgress { height });
        }
        let height = commit.height;
        if let Some(last) = prev(self.inner.executed_next.load(Ordering::SeqCst)) {
            if height != last + 1 {
                return Err(StorageError::OutOfOrder {
                    what: "executed",
                    expected: last + 1,
                    got: height,
                });
            }
        }
        let last_committed = self.last_committed();
        if last_committed.is_none_or(|c| height > c) {
            return Err(StorageError::NotCommitted {
                height,
                last_committed,
            });
        }
        match self.block_hash_at(height)? {
            Some(stored) if stored == commit.block_hash => {}
            Some(stored) => {
                return Err(StorageError::HeightConflict {
                    height,
                    stored,
                    given: commit.block_hash,
                })
            }
            None => {
                return Err(StorageError::Corruption(format!(
                    "committed height {height} is missing from the height index"
                )))
            }
        }

        let batch = self.build_batch(commit)?;
        let write_started = Instant::now();
        let root = commit.state_root();
        let bytes = batch.size_in_bytes();

        // Views below `height` must notice that its values may now be visible (see the
        // cache's module note for why the order of these steps matters).
        self.inner.horizon_next.store(height + 1, Ordering::SeqCst);
        self.inner.cache.begin_write();
        let written = self
            .inner
            .db
            .write_opt(batch, &self.inner.commit_opts)
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        if let Err(e) = written {
            self.inner.cache.end_write();
            return Err(self.fail(e));
        }
        metrics::histogram!("ordo_storage_commit_write_seconds")
            .record(write_started.elapsed().as_secs_f64());
        for (key, value) in &commit.state_writes {
            self.inner.cache.update(key, value.as_deref());
        }
        self.inner.cache.end_write();
        // Only now may a new view start at this height without the staged block: before
        // the upserts the cache still held the previous block's values.
        self.inner.executed_next.store(height + 1, Ordering::SeqCst);
        self.unstage(height);

        let elapsed = started.elapsed();
        metrics::histogram!("ordo_storage_commit_seconds").record(elapsed.as_secs_f64());
        metrics::counter!("ordo_storage_committed_blocks_total").increment(1);
        metrics::counter!("ordo_storage_state_writes_total")
            .increment(commit.state_writes.len() as u64);
        metrics::counter!("ordo_storage_committed_bytes_total").increment(bytes as u64);
        metrics::gauge!("ordo_storage_executed_height").set(height as f64);
        let stats = self.inner.cache.stats();
        metrics::gauge!("ordo_storage_cache_hits").set(stats.hits as f64);
        metrics::gauge!("ordo_storage_cache_misses").set(stats.misses as f64);
        debug!(
            height,
            writes = commit.state_writes.len(),
            txs = commit.transactions.len(),
            bytes,
            ms = elapsed.as_secs_f64() * 1e3,
            root = %root.short(),
            "block committed"
        );
        Ok(root)
    }

    fn build_batch(&self, commit: &BlockCommit) -> Result<WriteBatch> {
        let txs = self.cf(CF_TXS);
        let meta = self.cf(CF_META);

        let estimate: usize = commit
            .state_writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 16)
            .chain(commit.transactions.iter().map(|t| t.receipt.len() + 110))
            .sum();
        let mut batch = WriteBatch::with_capacity_bytes(estimate + 4096);
        // In key order, a key that lands right after the previous one in the memtable is
        // inserted without a search (see `open_db`). The sort is stable, so a repeated
        // key's last write still comes last.
        let mut writes: Vec<&(Vec<u8>, Option<Vec<u8>>)> = commit.state_writes.iter().collect();
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in writes {
            let family = self.cf(state_cf_of(key));
            match value {
                Some(value) => batch.put_cf(family, key, value),
                None => batch.delete_cf(family, key),
            }
        }
        let mut transactions: Vec<(usize, &TxOutcome)> =
            commit.transactions.iter().enumerate().collect();
        transactions.sort_by_key(|a| a.1.hash);
        let mut entry = Vec::new();
        for (position, tx) in transactions {
            let position = u32::try_from(position).map_err(|_| {
                StorageError::InvalidCommit(format!(
                    "{} transactions exceed the 2^32 positions of a block",
                    commit.transactions.len()
                ))
            })?;
            let location = TxLocation {
                height: commit.height,
                position,
                status: tx.status,
            };
            entry.clear();
            entry.extend_from_slice(&location.encode());
            entry.extend_from_slice(&tx.receipt);
            batch.put_cf(txs, tx.hash.as_bytes(), &entry);
        }
        for hash in &commit.skipped {
            batch.put_cf(meta, ordered_key(hash), height_key(commit.height));
        }
        let ordered = ordered_list(
            commit.transactions.iter().map(|t| &t.hash),
            commit.skipped.iter(),
        );
        if ordered.len() > ORDERED_LIST_HEADER {
            batch.put_cf(
                self.cf(CF_AGE),
                age_key(commit.height, AgeKind::Txs, &commit.block_hash),
                ordered,
            );
        }
        let root = commit.state_root();
        batch.put_cf(meta, root_key(commit.height), root.as_bytes());
        batch.put_cf(meta, META_STATE_ROOT, root.as_bytes());
        batch.put_cf(meta, META_ACCUMULATOR, commit.accumulator.to_bytes());
        batch.put_cf(meta, META_EXECUTED, height_key(commit.height));
        Ok(batch)
    }
}
