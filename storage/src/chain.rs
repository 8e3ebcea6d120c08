//! Blocks, quorum certificates, the committed chain's height index, batches, and their
//! pruning.
//!
//! Storage does not decode any of these: consensus and the batch store hand over bytes
//! and digests. Every block, certificate and batch gets an entry in the age index, tagged
//! with the committed height when it was stored (or its own height once committed);
//! [`Storage::prune_below`] removes whatever is tagged below a height, and with it the
//! height index (both ways), per-height roots, transaction index entries and receipts
//! of the heights below it; state is never pruned, and height 0's index entry and root
//! stay (they name the genesis).

use ordo_types::Hash32;
use rocksdb::{IteratorMode, WriteBatch};
use tracing::info;

use crate::error::{Op, Result, StorageError};
use crate::schema::*;
use crate::store::{next, Storage};

/// Deletes per write batch while pruning blocks and batches, so one prune never builds a
/// huge batch (a height's transaction list is a write of its own, of about one delete per
/// transaction: at most a block's 10,000).
const PRUNE_CHUNK: usize = 10_000;

/// What [`Storage::prune_below`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub blocks: u64,
    pub batches: u64,
    /// Transaction index entries (with their receipts).
    pub transactions: u64,
}

impl Storage {
    /// Stores a block by hash (a proposal, before any commit), and its quorum
    /// certificate when one is given.
    pub fn put_block(&self, hash: &Hash32, block: &[u8], qc: Option<&[u8]>) -> Result<()> {
        self.check_writable()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_BLOCKS), hash.as_bytes(), block);
        if let Some(qc) = qc {
            batch.put_cf(self.cf(CF_QCS), hash.as_bytes(), qc);
        }
        let age = next(self.last_committed());
        batch.put_cf(self.cf(CF_AGE), age_key(age, AgeKind::Block, hash), b"");
        self.write(batch, false)
    }

    /// Stores the quorum certificate of a block already stored, or about to be.
    pub fn put_qc(&self, block_hash: &Hash32, qc: &[u8]) -> Result<()> {
        self.check_writable()?;
        let result = self
            .inner
            .db
            .put_cf_opt(
                self.cf(CF_QCS),
                block_hash.as_bytes(),
                qc,
                &self.inner.commit_opts,
            )
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(result)
    }

    /// Records that consensus committed block `hash` at `height`, with its bytes and
    /// certificate when given (they may already be stored by [`Storage::put_block`]).
    /// Heights come one after the other; recording the same block again is a no-op, a
    /// different block at a recorded height is [`StorageError::HeightConflict`].
    pub fn record_committed(
        &self,
        height: u64,
        hash: &Hash32,
        block: Option<&[u8]>,
        qc: Option<&[u8]>,
    ) -> Result<()> {
        self.check_writable()?;
        let mut chain = self.inner.chain.lock();
        if let Some(last) = *chain {
            if height <= last {
                return match self.block_hash_at(height)? {
                    Some(stored) if stored == *hash => Ok(()),
                    Some(stored) => Err(StorageError::HeightConflict {
                        height,
                        stored,
                        given: *hash,
                    }),
                    None => Err(StorageError::OutOfOrder {
                        what: "committed",
                        expected: last + 1,
                        got: height,
                    }),
                };
            }
            if height != last + 1 {
                return Err(StorageError::OutOfOrder {
                    what: "committed",
                    expected: last + 1,
                    got: height,
                });
            }
        }
        let mut batch = WriteBatch::default();
        if let Some(block) = block {
            batch.put_cf(self.cf(CF_BLOCKS), hash.as_bytes(), block);
        }
        if let Some(qc) = qc {
            batch.put_cf(self.cf(CF_QCS), hash.as_bytes(), qc);
        }
        batch.put_cf(self.cf(CF_AGE), age_key(height, AgeKind::Block, hash), b"");
        batch.put_cf(self.cf(CF_HEIGHTS), height_key(height), hash.as_bytes());
        batch.put_cf(
            self.cf(CF_BLOCK_HEIGHTS),
            hash.as_bytes(),
            height_key(height),
        );
        batch.put_cf(self.cf(CF_META), META_COMMITTED, height_key(height));
        self.write(batch, false)?;
        *chain = Some(height);
        self.inner
            .committed_next
            .store(height + 1, std::sync::atomic::Ordering::SeqCst);
        metrics::gauge!("ordo_storage_committed_height").set(height as f64);
        Ok(())
    }

    /// The hash of the block committed at `height`.
    pub fn block_hash_at(&self, height: u64) -> Result<Option<Hash32>> {
        self.get(CF_HEIGHTS, &height_key(height))?
            .map(|bytes| decode_hash("height index entry", &bytes))
            .transpose()
    }

    /// The height at which block `hash` was committed; `None` if it was not (yet).
    pub fn committed_height_of(&self, hash: &Hash32) -> Result<Option<u64>> {
        self.get(CF_BLOCK_HEIGHTS, hash.as_bytes())?
            .map(|bytes| decode_height("block height entry", &bytes))
            .transpose()
    }

    /// A block's bytes by hash; `None` if unknown or pruned.
    pub fn block(&self, hash: &Hash32) -> Result<Option<Vec<u8>>> {
        self.get(CF_BLOCKS, hash.as_bytes())
    }

    /// The block committed at `height`, with its hash.
    pub fn block_at(&self, height: u64) -> Result<Option<(Hash32, Vec<u8>)>> {
        let Some(hash) = self.block_hash_at(height)? else {
            return Ok(None);
        };
        Ok(self.block(&hash)?.map(|block| (hash, block)))
    }

    /// The quorum certificate of a block, by the block's hash.
    pub fn qc(&self, block_hash: &Hash32) -> Result<Option<Vec<u8>>> {
        self.get(CF_QCS, block_hash.as_bytes())
    }

    /// Stores batches by digest in one write: each write is a trip through the log's
    /// write group, whose leader may be left paying another writer's fsync.
    pub fn put_batches<B: AsRef<[u8]>>(&self, batches: &[(Hash32, B)]) -> Result<()> {
        self.check_writable()?;
        let bytes: usize = batches.iter().map(|(_, b)| b.as_ref().len() + 100).sum();
        let mut batch = WriteBatch::with_capacity_bytes(bytes);
        let age = next(self.last_committed());
        for (digest, bytes) in batches {
            batch.put_cf(self.cf(CF_BATCHES), digest.as_bytes(), bytes.as_ref());
            batch.put_cf(self.cf(CF_AGE), age_key(age, AgeKind::Batch, digest), b"");
        }
        self.write(batch, false)
    }

    /// A batch's bytes by digest; `None` if unknown or pruned.
    pub fn batch(&self, digest: &Hash32) -> Result<Option<Vec<u8>>> {
        self.get(CF_BATCHES, digest.as_bytes())
    }

    /// Prunes by the configured retention window: keeps what the last `retain_heights`
    /// executed heights need. Does nothing without a window.
    pub fn prune(&self) -> Result<PruneStats> {
        let (Some(window), Some(executed)) =
            (self.inner.config.retain_heights, self.last_executed())
        else {
            return Ok(PruneStats::default());
        };
        self.prune_below((executed + 1).saturating_sub(window))
    }

    /// Removes the history of the heights below `height`: their blocks and
    /// certificates, height index entries and roots (height 0's stay: they name the
    /// chain's genesis), transaction index entries and receipts, and `ordered/` records,
    /// except what a height at or above `height` wrote over; and the blocks and batches
    /// stored while the chain was below it, except blocks committed at or above it and
    /// the batches of the last [`StorageConfig::batch_grace_heights`] (a batch is tagged
    /// with the height it was stored at, not the one that committed it). State is never
    /// pruned, nor the executed height's own history.
    ///
    /// [`StorageConfig::batch_grace_heights`]: crate::StorageConfig::batch_grace_heights
    pub fn prune_below(&self, height: u64) -> Result<PruneStats> {
        self.check_writable()?;
        let height = height.min(self.last_executed().unwrap_or(0));
        let before = self.pruned_below()?;
        if height <= before {
            return Ok(PruneStats::default());
        }
        // First, in one batch, what readers go by: the height index and roots below the
        // new height, and the height itself, so that from here every reader (the RPC,
        // the block server) answers "pruned" for what goes next, and a crash leaves
        // nothing below it that the next prune does not remove (it rescans the age
        // index from its start). Height 0 stays: its hash and root name the genesis.
        // From 1, not from `before`: a store restored from a snapshot may hold index
        // entries below its first height from before the restore.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_HEIGHTS), height_key(1), height_key(height));
        batch.delete_range_cf(self.cf(CF_META), root_key(1), root_key(height));
        batch.put_cf(self.cf(CF_META), META_PRUNED_BELOW, height_key(height));
        self.write(batch, false)?;

        let batch_limit = height.saturating_sub(self.inner.config.batch_grace_heights);
        let mut stats = PruneStats::default();
        // Where the scan resumes: entries it keeps (a batch in its grace, a block
        // committed higher) stay in the index and are stepped over.
        let mut from: Vec<u8> = Vec::new();
        loop {
            let mut batch = WriteBatch::default();
            let mut resume = None;
            let iter = self.inner.db.iterator_cf(
                self.cf(CF_AGE),
                IteratorMode::From(&from, rocksdb::Direction::Forward),
            );
            for item in iter {
                let (key, value) =
                    item.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                let (age, kind, hash) = decode_age_key(&key).map_err(|e| self.fail(e))?;
                if age >= height {
                    break;
                }
                if batch.len() >= PRUNE_CHUNK {
                    resume = Some(key.to_vec());
                    break;
                }
                match kind {
                    AgeKind::Block => {
                        match self.committed_height_of(&hash)? {
                            Some(committed) if committed >= height => continue,
                            Some(_) => batch.delete_cf(self.cf(CF_BLOCK_HEIGHTS), hash.as_bytes()),
                            None => {}
                        }
                        batch.delete_cf(self.cf(CF_BLOCKS), hash.as_bytes());
                        batch.delete_cf(self.cf(CF_QCS), hash.as_bytes());
                        stats.blocks += 1;
                    }
                    AgeKind::Batch => {
                        if age >= batch_limit {
                            continue;
                        }
                        batch.delete_cf(self.cf(CF_BATCHES), hash.as_bytes());
                        stats.batches += 1;
                    }
                    AgeKind::Txs => {
                        // Its own write, under the executed-block lock: see `prune_ordered`.
                        stats.transactions += self.prune_ordered(&key, &value, height)?;
                        continue;
                    }
                }
                batch.delete_cf(self.cf(CF_AGE), &key);
            }
            self.write(batch, false)?;
            match resume {
                Some(key) => from = key,
                None => break,
            }
        }
        info!(
            below = height,
            blocks = stats.blocks,
            batches = stats.batches,
            transactions = stats.transactions,
            "pruned"
        );
        metrics::counter!("ordo_storage_pruned_blocks_total").increment(stats.blocks);
        metrics::counter!("ordo_storage_pruned_batches_total").increment(stats.batches);
        metrics::counter!("ordo_storage_pruned_transactions_total").increment(stats.transactions);
        metrics::gauge!("ordo_storage_pruned_below").set(height as f64);
        Ok(stats)
    }

    /// Deletes the index entries and `ordered/` records that the height of `list` (an
    /// [`ordered_list`]) wrote, each unless a height at or above `height` wrote it over:
    /// the same transaction hash ordered again later keeps what the duplicate rule and
    /// the RPC read of that copy.
    /// Then the list's own age entry `key`, in the same write. Read, decided and written
    /// under the executed-block lock, so that no block writing one of these hashes anew
    /// can come between the read and the delete (and lose its record).
    fn prune_ordered(&self, key: &[u8], list: &[u8], height: u64) -> Result<u64> {
        let (executed, others) = split_ordered_list(list).map_err(|e| self.fail(e))?;
        let ordered_keys: Vec<Vec<u8>> = others
            .iter()
            .map(|h| [META_ORDERED_PREFIX, h].concat())
            .collect();
        let _exec = self.inner.exec_lock.lock();
        let entries = self
            .inner
            .db
            .batched_multi_get_cf(self.cf(CF_TXS), executed.iter(), false);
        let records =
            self.inner
                .db
                .batched_multi_get_cf(self.cf(CF_META), ordered_keys.iter(), false);
        let mut batch = WriteBatch::default();
        let mut removed = 0;
        for (hash, entry) in executed.iter().zip(entries) {
            let entry = entry.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
            if let Some(entry) = entry {
                let (location, _) = TxLocation::split(&entry).map_err(|e| self.fail(e))?;
                if location.height < height {
                    batch.delete_cf(self.cf(CF_TXS), hash);
                    removed += 1;
                }
            }
        }
        for (ordered_key, record) in ordered_keys.iter().zip(records) {
            let record = record.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
            if let Some(record) = record {
                if decode_height("ordered height", &record).map_err(|e| self.fail(e))? < height {
                    batch.delete_cf(self.cf(CF_META), ordered_key);
                }
            }
        }
        batch.delete_cf(self.cf(CF_AGE), key);
        self.write(batch, false)?;
        Ok(removed)
    }

    /// Blocks, certificates and batches below this height were pruned.
    pub fn pruned_below(&self) -> Result<u64> {
        Ok(self
            .get(CF_META, META_PRUNED_BELOW)?
            .map(|bytes| decode_height("pruned height", &bytes))
            .transpose()?
            .unwrap_or(0))
    }

    /// Writes `batch` with the commit durability, or fsynced when `sync`.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        let opts = if sync {
            &self.inner.sync_opts
        } else {
            &self.inner.commit_opts
        };
        let result = self
            .inner
            .db
            .write_opt(batch, opts)
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(result)
    }
}
