//! Restoring a snapshot into a store that has executed nothing.
//!
//! The restore's manifest is stored (`meta/restore/manifest`, synced) before any of its
//! state; each chunk's entries go in one write batch with the record that the chunk is
//! applied; finishing checks the root of the whole restored state against the manifest
//! and then, in one more batch, marks the snapshot's height executed and committed and
//! drops the restore's records. So after a crash at any point the store holds either a
//! restore under way, whose state is entries of its snapshot only and includes every
//! chunk it records as applied (resumed with the missing chunks only, or aborted), or the
//! finished state; and until it is finished, the executed height, root and accumulator
//! stay those of nothing executed, and no block can be executed on the partial state.
//!
//! A chunk is checked against the manifest (size, hash, encoding, entry count, order)
//! before anything of it is written. The manifest is not trusted: a lying manifest whose
//! chunks all match it still fails at [`Restore::finish`], on the root.

use std::sync::atomic::Ordering;

use ordo_types::{Hash32, StateFamily};
use parking_lot::Mutex;
use rocksdb::{IteratorMode, WriteBatch};
use tracing::{info, warn};

use super::format::{decode_chunk, SnapshotManifest};
use crate::error::{Op, Result, StorageError};
use crate::schema::*;
use crate::store::{read_restore, Recovery, RestoreState, Storage};

/// Deletes per write batch while aborting, so that wiping a large state never builds one
/// huge batch.
const ABORT_BATCH_KEYS: usize = 10_000;

/// The one handle on a restore under way. Dropping it leaves the restore stored, to be
/// resumed with [`Storage::resume_restore`] or aborted with [`Storage::abort_restore`].
pub struct Restore {
    storage: Storage,
    manifest: SnapshotManifest,
    /// Per chunk, whether it is applied.
    applied: Mutex<Vec<bool>>,
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("height", &self.manifest.height)
            .field("chunks", &self.manifest.chunks.len())
            .field("missing", &self.missing().len())
            .finish()
    }
}

impl Restore {
    pub fn manifest(&self) -> &SnapshotManifest {
        &self.manifest
    }

    /// Indices of the chunks not yet applied, ascending.
    pub fn missing(&self) -> Vec<u32> {
        let applied = self.applied.lock();
        (0u32..)
            .zip(applied.iter())
            .filter(|(_, &done)| !done)
            .map(|(index, _)| index)
            .collect()
    }

    /// Checks chunk `index` against the manifest and writes its entries. A chunk that
    /// does not match is [`StorageError::InvalidChunk`] and changes nothing; one already
    /// applied is checked and then left as it is.
    pub fn apply_chunk(&self, index: u32, bytes: &[u8]) -> Result<()> {
        let entries = decode_chunk(&self.manifest, index, bytes).inspect_err(|e| {
            metrics::counter!("ordo_storage_restore_chunks_rejected_total").increment(1);
            warn!(height = self.manifest.height, error = %e, "snapshot chunk refused");
        })?;
        let mut applied = self.applied.lock();
        if applied[index as usize] {
            return Ok(());
        }
        let storage = &self.storage;
        storage.check_writable()?;
        let mut batch = WriteBatch::with_capacity_bytes(bytes.len() + 1024);
        for (key, value) in &entries {
            batch.put_cf(storage.cf(state_cf_of(key)), key, value);
        }
        batch.put_cf(storage.cf(CF_META), restore_chunk_key(index), b"");

        let inner = &storage.inner;
        let _exec = inner.exec_lock.lock();
        // Views taken meanwhile must not cache a value this batch replaces.
        inner.cache.begin_write();
        let written = storage.write(batch, false);
        for (key, value) in &entries {
            inner.cache.update(key, Some(value));
        }
        inner.cache.end_write();
        written?;
        applied[index as usize] = true;
        metrics::counter!("ordo_storage_restore_chunks_applied_total").increment(1);
        Ok(())
    }

    /// Checks that the restored state has the manifest's root and, in one write batch,
    /// makes it the executed state of height H: executed and committed height H, its
    /// root and accumulator, H's block `block_hash` in the height index, and
    /// `pruned_below = H`. Returns where execution resumes, as [`Storage::open`] would.
    pub fn finish(self, block_hash: Hash32) -> Result<Recovery> {
        let height = self.manifest.height;
        let missing = self.missing().len();
        if missing > 0 {
            return Err(StorageError::RestoreIncomplete { height, missing });
        }
        let storage = &self.storage;
        storage.check_writable()?;
        let inner = &storage.inner;
        let _exec = inner.exec_lock.lock();
        // The state as stored, not a sum kept over the chunks: what execution will run on
        // is what must have the certified root, whatever the manifest's chunks overlap.
        let accumulator = storage.recompute_accumulator()?;
        let root = accumulator.root();
        if root != self.manifest.state_root {
            warn!(height, %root, expected = %self.manifest.state_root, "restored state has another root");
            return Err(StorageError::RestoreRootMismatch {
                height,
                expected: self.manifest.state_root,
                got: root,
            });
        }
        let mut restore = inner.restore.lock();
        let mut chain = inner.chain.lock();
        if let Some(last_committed) = chain.filter(|&c| c > height) {
            return Err(StorageError::RestoreBelowCommitted {
                height,
                last_committed,
            });
        }
        match storage.block_hash_at(height)? {
            Some(stored) if stored != block_hash => {
                return Err(StorageError::HeightConflict {
                    height,
                    stored,
                    given: block_hash,
                })
            }
            _ => {}
        }

        let meta = storage.cf(CF_META);
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, META_EXECUTED, height_key(height));
        batch.put_cf(meta, META_COMMITTED, height_key(height));
        batch.put_cf(meta, META_STATE_ROOT, root.as_bytes());
        batch.put_cf(meta, META_ACCUMULATOR, accumulator.to_bytes());
        batch.put_cf(meta, root_key(height), root.as_bytes());
        batch.put_cf(meta, META_PRUNED_BELOW, height_key(height));
        batch.put_cf(
            storage.cf(CF_HEIGHTS),
            height_key(height),
            block_hash.as_bytes(),
        );
        batch.put_cf(
            storage.cf(CF_BLOCK_HEIGHTS),
            block_hash.as_bytes(),
            height_key(height),
        );
        for index in 0..self.manifest.chunks.len() as u32 {
            batch.delete_cf(meta, restore_chunk_key(index));
        }
        batch.delete_cf(meta, META_RESTORE_MANIFEST);
        // Views of "nothing executed" are stale from here on.
        inner.horizon_next.store(height + 1, Ordering::SeqCst);
        storage.write(batch, true)?;
        *chain = Some(height);
        inner.committed_next.store(height + 1, Ordering::SeqCst);
        inner.executed_next.store(height + 1, Ordering::SeqCst);
        *restore = RestoreState::Idle;
        metrics::gauge!("ordo_storage_executed_height").set(height as f64);
        metrics::gauge!("ordo_storage_committed_height").set(height as f64);
        info!(height, root = %root.short(), entries = self.manifest.entries, "snapshot restored");
        Ok(Recovery {
            last_executed: Some(height),
            state_root: root,
            accumulator,
            last_committed: Some(height),
            pending: Vec::new(),
            pruned_below: height,
            restoring: None,
        })
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let mut restore = self.storage.inner.restore.lock();
        if let RestoreState::Held(height) = *restore {
            *restore = RestoreState::Stored(height);
        }
    }
}

impl Storage {
    /// Whether the store has executed nothing and holds no state entry: what a restore
    /// needs.
    pub fn state_is_empty(&self) -> Result<bool> {
        if self.last_executed().is_some() {
            return Ok(false);
        }
        for family in StateFamily::ALL {
            let mut iter = self
                .inner
                .db
                .iterator_cf(self.cf(state_cf(family)), IteratorMode::Start);
            if let Some(item) = iter.next() {
                item.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Begins restoring the snapshot `manifest` describes, into a store that has executed
    /// nothing and holds no state; the manifest is durable before this returns. The
    /// caller checks beforehand that its state root is the one consensus certified.
    pub fn begin_restore(&self, manifest: &SnapshotManifest) -> Result<Restore> {
        manifest.validate()?;
        self.check_writable()?;
        let height = manifest.height;
        let _exec = self.inner.exec_lock.lock();
        let mut restore = self.inner.restore.lock();
        if let Some(height) = restore.height() {
            return Err(StorageError::RestoreInProgress { height });
        }
        if !self.state_is_empty()? {
            return Err(StorageError::StateNotEmpty {
                last_executed: self.last_executed(),
            });
        }
        if let Some(last_committed) = self.last_committed().filter(|&c| c > height) {
            return Err(StorageError::RestoreBelowCommitted {
                height,
                last_committed,
            });
        }
        let written = self
            .inner
            .db
            .put_cf_opt(
                self.cf(CF_META),
                META_RESTORE_MANIFEST,
                manifest.encode(),
                &self.inner.sync_opts,
            )
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(written)?;
        *restore = RestoreState::Held(height);
        info!(
            height,
            root = %manifest.state_root.short(),
            chunks = manifest.chunks.len(),
            manifest = %manifest.digest().short(),
            "snapshot restore begun"
        );
        Ok(Restore {
            storage: self.clone(),
            manifest: manifest.clone(),
            applied: Mutex::new(vec![false; manifest.chunks.len()]),
        })
    }

    /// The handle on the restore under way (reported by [`Storage::open`] in
    /// [`Recovery::restoring`]), with the chunks already applied.
    pub fn resume_restore(&self) -> Result<Restore> {
        self.check_writable()?;
        let mut restore = self.inner.restore.lock();
        match *restore {
            RestoreState::Idle => return Err(StorageError::NoRestore),
            RestoreState::Held(height) => return Err(StorageError::RestoreInProgress { height }),
            RestoreState::Stored(_) => {}
        }
        let progress = self
            .note(read_restore(&self.inner))?
            .ok_or(StorageError::NoRestore)?;
        let mut applied = vec![false; progress.manifest.chunks.len()];
        for index in &progress.applied {
            applied[*index as usize] = true;
        }
        *restore = RestoreState::Held(progress.manifest.height);
        info!(
            height = progress.manifest.height,
            applied = progress.applied.len(),
            chunks = progress.manifest.chunks.len(),
            "snapshot restore resumed"
        );
        Ok(Restore {
            storage: self.clone(),
            manifest: progress.manifest,
            applied: Mutex::new(applied),
        })
    }

    /// Abandons the restore under way: deletes its applied-chunk records, every state
    /// entry and every `ordered/` record (in a store that has executed nothing, each came
    /// from a window below a snapshot), then its manifest, and leaves an empty store. Not
    /// while a [`Restore`] handle is alive.
    pub fn abort_restore(&self) -> Result<()> {
        self.check_writable()?;
        let inner = &self.inner;
        let _exec = inner.exec_lock.lock();
        let mut restore = inner.restore.lock();
        let height = match *restore {
            RestoreState::Idle => return Err(StorageError::NoRestore),
            RestoreState::Held(height) => return Err(StorageError::RestoreInProgress { height }),
            RestoreState::Stored(height) => height,
        };
        let progress = self.note(read_restore(inner))?;
        inner.cache.begin_write();
        let wiped = self.wipe_restore(progress.map(|p| p.applied).unwrap_or_default());
        inner.cache.clear();
        inner.cache.end_write();
        wiped?;
        *restore = RestoreState::Idle;
        for family in StateFamily::ALL {
            // Drops the tombstones, so that an empty store reads as one.
            inner
                .db
                .compact_range_cf(self.cf(state_cf(family)), None::<&[u8]>, None::<&[u8]>);
        }
        info!(height, "snapshot restore aborted");
        Ok(())
    }

    /// The applied-chunk records go first: if a crash cuts the wipe short, the restore
    /// is still stored with no chunk applied, and resuming it rewrites every entry. It
    /// may also have lost part of its `ordered/` records, which is why a resumed restore
    /// records the window below its snapshot again (state sync does, at every start).
    fn wipe_restore(&self, applied: Vec<u32>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for index in applied {
            batch.delete_cf(self.cf(CF_META), restore_chunk_key(index));
        }
        self.write(batch, true)?;
        // Point deletes: RocksDB's range deletion does not work with in-place updates.
        for family in StateFamily::ALL {
            let cf = self.cf(state_cf(family));
            let mut batch = WriteBatch::default();
            for item in self.inner.db.iterator_cf(cf, IteratorMode::Start) {
                let (key, _) =
                    item.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                batch.delete_cf(cf, key);
                if batch.len() == ABORT_BATCH_KEYS {
                    self.write(std::mem::take(&mut batch), false)?;
                }
            }
            self.write(batch, false)?;
        }
        self.wipe_ordered_records()?;
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_META), META_RESTORE_MANIFEST);
        self.write(batch, true)
    }

    /// Deletes every `ordered/` record: in a store that has executed nothing, each came
    /// from a window below a snapshot being restored ([`Storage::record_ordered`]). Left
    /// behind, the one abandoned here would answer the duplicate rule for heights that a
    /// replay from genesis, or another snapshot's restore, executes: a record keeps a
    /// hash's highest height, so one above the height asked about hid the index entry of
    /// an earlier copy, and the copy ordered again executed where every other validator
    /// skipped it.
    fn wipe_ordered_records(&self) -> Result<()> {
        let cf = self.cf(CF_META);
        let mut batch = WriteBatch::default();
        let from = IteratorMode::From(META_ORDERED_PREFIX, rocksdb::Direction::Forward);
        for item in self.inner.db.iterator_cf(cf, from) {
            let (key, _) = item.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
            if !key.starts_with(META_ORDERED_PREFIX) {
                break;
            }
            batch.delete_cf(cf, key);
            if batch.len() == ABORT_BATCH_KEYS {
                self.write(std::mem::take(&mut batch), false)?;
            }
        }
        self.write(batch, false)
    }
}
