//! The store handle: opening RocksDB with its column families, recovery, the record of
//! fatal failures, consensus safety data and the read-only queries.
//!
//! Invariants kept across every write: `meta/executed_height`, `meta/state_root` and
//! `meta/accumulator` always describe the same state (they are written in one batch with
//! that state), and `accumulator.root() == state_root`. The committed heights in the
//! height index from `meta/pruned_below` (0 when never set) up to `meta/committed_height`
//! form one contiguous run, and the executed height never exceeds its end. A store
//! restored from a snapshot of height H looks like one pruned below H: its run, its state
//! and its executed height start at H, and whatever the index holds below H (heights
//! recorded before the restore finished) is outside the run.
//! While a restore is under way (`meta/restore/manifest` is stored) the state column
//! families hold part of a snapshot and the executed height, root and accumulator are
//! those of "nothing executed"; no block is executed until the restore is finished or
//! aborted. After the first fatal error the handle refuses every further write, so the
//! node stops on the state that is known to be on disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ordo_types::{Hash32, StateAccumulator, StateFamily};
use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DBRecoveryMode, DataBlockIndexType, Env, IteratorMode, Options, WriteOptions, DB,
};
use tracing::{error, info};

use crate::cache::{CacheStats, StateCache};
use crate::config::StorageConfig;
use crate::error::{Op, Result, StorageError};
use crate::executed::StagedBlock;
use crate::schema::*;
use crate::snapshot::{RestoreProgress, SnapshotManifest};

/// What the store holds after [`Storage::open`]: where execution resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The last height whose execution results are stored; `None` on a fresh store.
    pub last_executed: Option<u64>,
    /// The state root after `last_executed` (the empty state's root on a fresh store).
    pub state_root: Hash32,
    /// The accumulator behind `state_root`, to continue updating it incrementally.
    pub accumulator: StateAccumulator,
    /// The last height that consensus committed and storage recorded.
    pub last_committed: Option<u64>,
    /// Committed blocks above `last_executed`, in height order: execute these first.
    pub pending: Vec<PendingBlock>,
    /// Blocks, certificates and batches below this height were pruned.
    pub pruned_below: u64,
    /// A restore from a snapshot that was begun and neither finished nor aborted: resume
    /// it ([`Storage::resume_restore`]) or abort it ([`Storage::abort_restore`]) before
    /// executing anything. `last_executed` is `None` meanwhile.
    pub restoring: Option<RestoreProgress>,
}

/// A committed block that still needs execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBlock {
    pub height: u64,
    pub hash: Hash32,
}

/// A handle on one validator's RocksDB store; clones share it.
#[derive(Clone)]
pub struct Storage {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: DB,
    pub config: StorageConfig,
    pub path: PathBuf,
    /// Block commits and committed-chain records, synced or not per the configuration.
    pub commit_opts: WriteOptions,
    /// Safety data: always fsynced.
    pub sync_opts: WriteOptions,
    /// Serialises committed-chain records; holds the last committed height.
    pub chain: Mutex<Option<u64>>,
    /// Last committed height plus one (0: none), for lock-free readers.
    pub committed_next: AtomicU64,
    /// Serialises executed-block commits.
    pub exec_lock: Mutex<()>,
    /// Last executed height in the database plus one (0: none).
    pub executed_next: AtomicU64,
    /// Highest height whose writes may be visible in the database or cache, plus one;
    /// raised before a block write starts. Views below it are stale.
    pub horizon_next: AtomicU64,
    /// Blocks executed but not yet written, oldest first.
    pub staged: RwLock<Vec<Arc<StagedBlock>>>,
    pub cache: StateCache,
    /// The first fatal error; once set, writes are refused.
    pub failure: Mutex<Option<String>>,
    /// Whether a restore is under way, and whether a handle works on it.
    pub restore: Mutex<RestoreState>,
    /// Set while a snapshot is being written: one at a time.
    pub snapshot_running: AtomicBool,
}

/// Where the store stands with restoring a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestoreState {
    Idle,
    /// The marker of a restore of this height is stored; no handle works on it.
    Stored(u64),
    /// A [`crate::Restore`] handle works on the restore of this height.
    Held(u64),
}

impl RestoreState {
    pub fn height(self) -> Option<u64> {
        match self {
            RestoreState::Idle => None,
            RestoreState::Stored(h) | RestoreState::Held(h) => Some(h),
        }
    }
}

impl Storage {
    /// Opens (or creates) the store at `path` and reports where execution resumes.
    pub fn open(path: impl AsRef<Path>, config: StorageConfig) -> Result<(Storage, Recovery)> {
        let path = path.as_ref().to_path_buf();
        let db = open_db(&path, &config).map_err(|e| StorageError::Open {
            path: path.clone(),
            reason: e.into_string(),
        })?;
        let mut inner = Inner {
            db,
            commit_opts: write_options(config.sync_commits),
            sync_opts: write_options(true),
            cache: StateCache::new(config.cache_entries),
            config,
            path,
            chain: Mutex::new(None),
            committed_next: AtomicU64::new(0),
            exec_lock: Mutex::new(()),
            executed_next: AtomicU64::new(0),
            horizon_next: AtomicU64::new(0),
            staged: RwLock::new(Vec::new()),
            failure: Mutex::new(None),
            restore: Mutex::new(RestoreState::Idle),
            snapshot_running: AtomicBool::new(false),
        };
        check_layout(&inner)?;
        if read_meta(&inner, META_RESYNC)?.is_some() {
            clear_for_resync(&inner)?;
        }
        let recovery = recover(&inner)?;
        *inner.chain.get_mut() = recovery.last_committed;
        let committed_next = next(recovery.last_committed);
        let executed_next = next(recovery.last_executed);
        inner.committed_next = AtomicU64::new(committed_next);
        inner.executed_next = AtomicU64::new(executed_next);
        inner.horizon_next = AtomicU64::new(executed_next);
        if let Some(progress) = &recovery.restoring {
            *inner.restore.get_mut() = RestoreState::Stored(progress.manifest.height);
        }
        info!(
            path = %inner.path.display(),
            last_executed = ?recovery.last_executed,
            last_committed = ?recovery.last_committed,
            pending = recovery.pending.len(),
            state_root = %recovery.state_root,
            restoring = ?recovery.restoring.as_ref().map(|r| r.manifest.height),
            "storage opened"
        );
        Ok((
            Storage {
                inner: Arc::new(inner),
            },
            recovery,
        ))
    }

    /// Marks the store to be emptied, all but its consensus safety data, the next time
    /// it is opened: for a validator whose peers pruned the history it lacks, which can
    /// only rejoin from a snapshot. Durable on return; the emptying (at the next
    /// [`Storage::open`], before anything else) finishes even if a crash cuts it short,
    /// since the mark goes last. Keeping the safety data keeps the validator from voting
    /// twice in a round it voted in before.
    pub fn mark_for_resync(&self) -> Result<()> {
        self.check_writable()?;
        let result = self
            .inner
            .db
            .put_cf_opt(self.cf(CF_META), META_RESYNC, b"", &self.inner.sync_opts)
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(result)
    }

    /// The identity of the chain this store holds, as recorded by
    /// [`Storage::record_genesis_identity`]: storage keeps it opaque (the node derives it
    /// from its genesis). It outlives [`Storage::mark_for_resync`], like the safety data it
    /// belongs with, so that a store restored from a snapshot, which holds no genesis
    /// block, can still be told apart from another chain's.
    pub fn genesis_identity(&self) -> Result<Option<Hash32>> {
        self.get(CF_META, META_GENESIS)?
            .map(|bytes| decode_hash("genesis identity", &bytes))
            .transpose()
    }

    /// Records the identity of the chain this store holds; durable on return.
    pub fn record_genesis_identity(&self, identity: &Hash32) -> Result<()> {
        self.check_writable()?;
        let result = self
            .inner
            .db
            .put_cf_opt(
                self.cf(CF_META),
                META_GENESIS,
                identity.as_bytes(),
                &self.inner.sync_opts,
            )
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(result)
    }

    /// Writes consensus safety data (last voted round, highest QC, as consensus encoded
    /// them), replacing the previous value; fsynced before returning, so a vote sent
    /// after this call survives any crash.
    pub fn write_safety_data(&self, bytes: &[u8]) -> Result<()> {
        self.check_writable()?;
        let started = Instant::now();
        let cf = self.cf(CF_SAFETY);
        let result = self
            .inner
            .db
            .put_cf_opt(cf, SAFETY_KEY, bytes, &self.inner.sync_opts)
            .map_err(|e| StorageError::from_rocks(e, Op::Write));
        self.note(result)?;
        metrics::histogram!("ordo_storage_safety_write_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The safety data last written, if any.
    pub fn safety_data(&self) -> Result<Option<Vec<u8>>> {
        self.get(CF_SAFETY, SAFETY_KEY)
    }

    /// Where a transaction was executed, if it was.
    pub fn tx_location(&self, tx_hash: &Hash32) -> Result<Option<TxLocation>> {
        Ok(self.transaction(tx_hash)?.map(|(location, _)| location))
    }

    /// Where each of `tx_hashes` was executed, if it was, in order: one batched lookup
    /// (RocksDB's multi-get), which probes each table file once for the whole set. A hash
    /// never executed usually stops at the bloom filters, without reading a data block.
    pub fn tx_locations(&self, tx_hashes: &[Hash32]) -> Result<Vec<Option<TxLocation>>> {
        let found = self.inner.db.batched_multi_get_cf(
            self.cf(CF_TXS),
            tx_hashes.iter().map(Hash32::as_bytes),
            false,
        );
        found
            .into_iter()
            .map(|entry| {
                let entry = entry.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                entry
                    .map(|bytes| {
                        TxLocation::split(&bytes)
                            .map(|(location, _)| location)
                            .map_err(|e| self.fail(e))
                    })
                    .transpose()
            })
            .collect()
    }

    /// Records that each transaction hash was ordered at its height, where the
    /// transaction index cannot say: for the heights just below a snapshot this store was
    /// restored from, which the duplicate rule still looks back on. A hash given twice
    /// keeps its highest height. Idempotent. [`Storage::abort_restore`] deletes them.
    pub fn record_ordered(&self, ordered: &[(Hash32, u64)]) -> Result<()> {
        self.check_writable()?;
        let mut latest: std::collections::HashMap<Hash32, u64> = Default::default();
        for (hash, height) in ordered {
            let at = latest.entry(*hash).or_insert(*height);
            *at = (*at).max(*height);
        }
        let mut batch = rocksdb::WriteBatch::default();
        let mut by_height: std::collections::BTreeMap<u64, Vec<Hash32>> = Default::default();
        for (hash, height) in latest {
            batch.put_cf(self.cf(CF_META), ordered_key(&hash), height_key(height));
            by_height.entry(height).or_default().push(hash);
        }
        // Listed for pruning like a committed height's own hashes; keyed by the list's
        // digest, so that a second call for the same height adds a list.
        for (height, hashes) in by_height {
            let list = ordered_list(std::iter::empty(), hashes.iter());
            let tag = Hash32::digest(b"ordo/storage/ordered-list\0", &list);
            batch.put_cf(self.cf(CF_AGE), age_key(height, AgeKind::Txs, &tag), list);
        }
        self.write(batch, true)
    }

    /// The latest height recorded as having ordered each hash without an index entry:
    /// a skipped copy ([`BlockCommit::skipped`](crate::BlockCommit)), or what
    /// [`Storage::record_ordered`] recorded.
    pub fn ordered_at(&self, tx_hashes: &[Hash32]) -> Result<Vec<Option<u64>>> {
        let keys: Vec<Vec<u8>> = tx_hashes.iter().map(ordered_key).collect();
        let found = self
            .inner
            .db
            .batched_multi_get_cf(self.cf(CF_META), keys.iter(), false);
        found
            .into_iter()
            .map(|entry| {
                let entry = entry.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                entry
                    .map(|bytes| decode_height("ordered height", &bytes).map_err(|e| self.fail(e)))
                    .transpose()
            })
            .collect()
    }

    /// A transaction's receipt, as execution encoded it.
    pub fn receipt(&self, tx_hash: &Hash32) -> Result<Option<Vec<u8>>> {
        Ok(self.transaction(tx_hash)?.map(|(_, receipt)| receipt))
    }

    /// Where a transaction was executed and its receipt, in one lookup.
    pub fn transaction(&self, tx_hash: &Hash32) -> Result<Option<(TxLocation, Vec<u8>)>> {
        let Some(entry) = self.get(CF_TXS, tx_hash.as_bytes())? else {
            return Ok(None);
        };
        let (location, receipt) = TxLocation::split(&entry).map_err(|e| self.fail(e))?;
        Ok(Some((location, receipt.to_vec())))
    }

    /// The state root after executing `height`.
    pub fn state_root_at(&self, height: u64) -> Result<Option<Hash32>> {
        self.get(CF_META, &root_key(height))?
            .map(|bytes| decode_hash("state root", &bytes))
            .transpose()
    }

    /// The last executed height written to the database.
    pub fn last_executed(&self) -> Option<u64> {
        prev(self.inner.executed_next.load(Ordering::SeqCst))
    }

    /// The last committed height recorded.
    pub fn last_committed(&self) -> Option<u64> {
        prev(self.inner.committed_next.load(Ordering::SeqCst))
    }

    /// The first fatal error this handle met, if any; once set, writes are refused and
    /// the node should stop.
    pub fn health(&self) -> Option<String> {
        self.inner.failure.lock().clone()
    }

    /// Hits and misses of the hot-key state cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// Visits every stored state entry in key order, every family (the database only, not
    /// blocks staged in memory): the families' tags are ordered as their keys are, so one
    /// family after the other is key order. Only for a store no block is being written
    /// to: state values are updated in place in the memtable, and an iterator does not
    /// take the per-key locks that make a concurrent `get` safe.
    pub fn for_each_state_entry(&self, mut visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        for family in StateFamily::ALL {
            for item in self
                .inner
                .db
                .iterator_cf(self.cf(state_cf(family)), IteratorMode::Start)
            {
                let (key, value) =
                    item.map_err(|e| self.fail(StorageError::from_rocks(e, Op::Read)))?;
                visit(&key[..], &value[..]);
            }
        }
        Ok(())
    }

    /// The accumulator recomputed from every stored state entry; equal to the stored
    /// one unless the store is corrupt.
    pub fn recompute_accumulator(&self) -> Result<StateAccumulator> {
        let mut accumulator = StateAccumulator::new();
        self.for_each_state_entry(|k, v| accumulator.insert(k, v))?;
        Ok(accumulator)
    }

    /// The stored accumulator and root of the last executed state.
    pub fn stored_accumulator(&self) -> Result<(Hash32, StateAccumulator)> {
        read_state_commitment(&self.inner)
    }

    /// Flushes memtables to SST files; only tools and tests need this, the WAL already
    /// makes every write durable.
    pub fn flush(&self) -> Result<()> {
        for name in ALL_CFS {
            self.inner
                .db
                .flush_cf(self.cf(name))
                .map_err(|e| self.fail(StorageError::from_rocks(e, Op::Write)))?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.inner.cf(name)
    }

    pub(crate) fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let result = self
            .inner
            .db
            .get_pinned_cf(self.cf(cf), key)
            .map(|v| v.map(|s| s.to_vec()))
            .map_err(|e| StorageError::from_rocks(e, Op::Read));
        self.note(result)
    }

    /// Refuses writes after a fatal error.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match &*self.inner.failure.lock() {
            Some(reason) => Err(StorageError::WriteFailed(format!(
                "storage stopped after an earlier failure: {reason}"
            ))),
            None => Ok(()),
        }
    }

    /// Records `e` if it is fatal, and hands it back.
    pub(crate) fn fail(&self, e: StorageError) -> StorageError {
        if e.is_fatal() {
            let mut failure = self.inner.failure.lock();
            if failure.is_none() {
                error!(error = %e, "storage failed; refusing further writes");
                metrics::counter!("ordo_storage_fatal_errors_total").increment(1);
                *failure = Some(e.to_string());
            }
        }
        e
    }

    pub(crate) fn note<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| self.fail(e))
    }
}

impl Inner {
    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every name in ALL_CFS is created or opened by `open_db`.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| unreachable!("column family {name} is opened with the store"))
    }
}

/// `Some(h)` as `h + 1`, `None` as 0: heights in one atomic word.
pub(crate) fn next(height: Option<u64>) -> u64 {
    height.map_or(0, |h| h + 1)
}

pub(crate) fn prev(next: u64) -> Option<u64> {
    next.checked_sub(1)
}

fn write_options(sync: bool) -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(sync);
    opts
}

fn open_db(path: &Path, config: &StorageConfig) -> std::result::Result<DB, rocksdb::Error> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    // Replay the log up to the first damaged record and no further: what comes back is a
    // prefix of the writes, each batch whole or absent.
    db_opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    db_opts.set_paranoid_checks(true);
    db_opts.increase_parallelism(cores.max(2));
    db_opts.set_max_background_jobs(cores.clamp(2, 8));
    // Compactions run below every thread of the node (nice 19): they can wait, and at
    // full load one merged the transaction index's new files (50 MB, 0.2 s of CPU) in a
    // single burst at normal priority, taking a third of the cores for over a second on
    // a 4-validator testnet, whose validators compact together, and committed rounds
    // stalled behind it (README, Overload). Flushes keep their priority: a memtable that
    // cannot be flushed stops writes. Compactions did keep up: 150 s at twice capacity
    // never left more than 4 files in level 0 (writes slow down at 20). This is the
    // process's default environment, so every store it opens, and manual compactions (a
    // resync's at start-up) run at nice 19 too.
    let mut env = Env::new()?;
    env.lower_thread_pool_cpu_priority();
    db_opts.set_env(&env);
    // Every byte written through the page cache lands on a page the kernel has to find,
    // and on a virtual machine a page the guest has not touched lately costs a fault in
    // the host as well: on the 2-core machine this was built on, buffered writes to new
    // files ran at 350 MB/s of CPU against 10 GB/s for rewriting cached pages, and they
    // took a quarter of an ordering-only testnet's CPU. So the page cache is kept small
    // and reused. Flushes and compactions, which write most of the bytes (every batch's
    // blob among them), bypass it where the file system allows; the write-ahead log goes
    // to a few recycled files whose pages stay cached, which needs a log short enough to
    // be retired often (a forced flush of the small column families every 128 MiB).
    db_opts.set_max_total_wal_size(128 << 20);
    db_opts.set_recycle_log_file_num(4);
    db_opts.set_use_direct_io_for_flush_and_compaction(supports_direct_io(path));
    db_opts.set_keep_log_file_num(4);
    db_opts.set_bytes_per_sync(1 << 20);
    // One thread commits blocks. Without concurrent memtable writes RocksDB inserts through
    // its cheaper non-atomic path, which also skips the search when a key lands right after
    // the previous one (a block's writes come in key order). Any other key is still searched
    // from the top: the memtable search stays near a tenth of a validator's CPU on a
    // 4-validator testnet, and this took it from 7.2% to 5.6% on a single validator.
    db_opts.set_allow_concurrent_memtable_write(false);
    // A writer waiting for its group's leader would spin on sched_yield for up to 100 µs:
    // 6% of an ordering-only validator's CPU on 2 cores shared by four validators, where
    // the spinning only delays the leader it waits for. It blocks instead.
    db_opts.set_enable_write_thread_adaptive_yield(false);

    let cache = Cache::new_lru_cache(config.block_cache_bytes);
    let cfs = ALL_CFS.iter().map(|&name| {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_format_version(5);
        // Point lookups dominate: a hash index inside each data block saves its binary
        // search.
        table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
        let mut cf_opts = Options::default();
        cf_opts.set_block_based_table_factory(&table);
        cf_opts.set_level_compaction_dynamic_level_bytes(true);
        // Keys, signatures and hashes do not compress: LZ4 on batches, blocks and
        // receipts only burns the cores that verify signatures.
        let compression = match name {
            CF_BATCHES | CF_BLOCKS | CF_TXS | CF_QCS => DBCompressionType::None,
            _ => DBCompressionType::Lz4,
        };
        cf_opts.set_compression_type(compression);
        cf_opts.set_bottommost_compression_type(compression);
        if name == CF_BATCHES {
            // Batches are large, written once and read rarely: kept in blob files, a
            // compaction moves their keys and not their bytes.
            cf_opts.set_enable_blob_files(true);
            cf_opts.set_min_blob_size(4 << 10);
            cf_opts.set_blob_compression_type(DBCompressionType::None);
            // Batches are removed oldest first (pruning by age), so whole blob files turn
            // to garbage together and are dropped without garbage collection, which would
            // instead rewrite every live batch in the oldest files at each compaction (a
            // quarter of an ordering-only validator's CPU went to it).
            cf_opts.set_enable_blob_gc(false);
        }
        if name == CF_TXS {
            // Execution looks up every transaction of every block here to drop duplicates
            // (nearly all misses): a bloom filter over the memtable's keys saves most
            // misses the memtable search, which was most of the lookup's 1.3 µs, for about
            // a tenth of this family's memtable memory.
            cf_opts.set_memtable_whole_key_filtering(true);
            cf_opts.set_memtable_prefix_bloom_ratio(0.1);
        }
        if name == CF_STATE || name == CF_SLOTS {
            // A block rewrites keys that are mostly in the memtable already (the same
            // accounts again and again). In place, such a write costs one search of a
            // memtable holding one entry per live key, instead of a new entry in one that
            // holds every version since the last flush (the insert's search was a tenth of
            // a validator's CPU on a 4-validator testnet), and the versions never reach a
            // flush or a compaction. Safe here: nothing reads state through RocksDB
            // snapshots, and readers see the latest value under RocksDB's per-key locks.
            cf_opts.set_inplace_update_support(true);
        }
        let write_buffer = match name {
            CF_STATE | CF_SLOTS => config.state_write_buffer_bytes,
            // The age index takes each block's list of transaction hashes (32 bytes a
            // transaction), a tenth of what the transaction index takes.
            CF_TXS | CF_BATCHES | CF_BLOCKS | CF_AGE => {
                (config.state_write_buffer_bytes / 2).max(1 << 20)
            }
            _ => 1 << 20,
        };
        cf_opts.set_write_buffer_size(write_buffer);
        cf_opts.set_max_write_buffer_number(4);
        ColumnFamilyDescriptor::new(name, cf_opts)
    });
    DB::open_cf_descriptors(&db_opts, path, cfs)
}

/// Whether files in `dir` can be opened for direct I/O (not on tmpfs, for one). RocksDB
/// would otherwise fail its first flush, long after opening succeeded.
fn supports_direct_io(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::create_dir_all(dir);
        let probe = dir.join(".direct-io-probe");
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        opened
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        false
    }
}

fn read_meta(inner: &Inner, key: &[u8]) -> Result<Option<Vec<u8>>> {
    inner
        .db
        .get_cf(inner.cf(CF_META), key)
        .map_err(|e| StorageError::from_rocks(e, Op::Read))
}

fn read_height(inner: &Inner, key: &[u8]) -> Result<Option<u64>> {
    read_meta(inner, key)?
        .map(|bytes| decode_height("height marker", &bytes))
        .transpose()
}

fn read_state_commitment(inner: &Inner) -> Result<(Hash32, StateAccumulator)> {
    let root = read_meta(inner, META_STATE_ROOT)?;
    let accumulator = read_meta(inner, META_ACCUMULATOR)?;
    match (root, accumulator) {
        (None, None) => {
            let empty = StateAccumulator::new();
            Ok((empty.root(), empty))
        }
        (Some(root), Some(accumulator)) => {
            let root = decode_hash("state root", &root)?;
            let accumulator = decode_accumulator(&accumulator)?;
            if accumulator.root() != root {
                return Err(StorageError::Corruption(format!(
                    "stored state root {root} does not match the stored accumulator's {}",
                    accumulator.root()
                )));
            }
            Ok((root, accumulator))
        }
        _ => Err(StorageError::Corruption(
            "state root and accumulator are not stored together".into(),
        )),
    }
}

/// Refuses a store of another layout; marks a new store with this one. A store without
/// a layout mark is new only if it holds no chain: one written before layouts were
/// versioned has a committed height or safety data.
fn check_layout(inner: &Inner) -> Result<()> {
    let refuse = |found| StorageError::Layout {
        path: inner.path.clone(),
        found,
        expected: LAYOUT_VERSION,
    };
    match read_meta(inner, META_LAYOUT)? {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StorageError::malformed("layout version", "not 4 bytes"))?;
            if found != LAYOUT_VERSION {
                return Err(refuse(Some(found)));
            }
            Ok(())
        }
        None => {
            let used = read_height(inner, META_COMMITTED)?.is_some()
                || inner
                    .db
                    .get_cf(inner.cf(CF_SAFETY), SAFETY_KEY)
                    .map_err(|e| StorageError::from_rocks(e, Op::Read))?
                    .is_some();
            if used {
                return Err(refuse(None));
            }
            inner
                .db
                .put_cf_opt(
                    inner.cf(CF_META),
                    META_LAYOUT,
                    LAYOUT_VERSION.to_be_bytes(),
                    &inner.sync_opts,
                )
                .map_err(|e| StorageError::from_rocks(e, Op::Write))
        }
    }
}

fn recover(inner: &Inner) -> Result<Recovery> {
    let last_executed = read_height(inner, META_EXECUTED)?;
    let last_committed = read_height(inner, META_COMMITTED)?;
    let pruned_below = read_height(inner, META_PRUNED_BELOW)?.unwrap_or(0);
    let (state_root, accumulator) = read_state_commitment(inner)?;
    if last_executed.is_none() && state_root != StateAccumulator::new().root() {
        return Err(StorageError::Corruption(
            "a state root is stored but no executed height".into(),
        ));
    }
    if last_executed > last_committed {
        return Err(StorageError::Corruption(format!(
            "executed height {last_executed:?} is above committed height {last_committed:?}"
        )));
    }

    let restoring = read_restore(inner)?;
    if restoring.is_some() && last_executed.is_some() {
        return Err(StorageError::Corruption(format!(
            "a restore is under way in a store that executed height {last_executed:?}"
        )));
    }

    let mut pending: Vec<PendingBlock> = Vec::new();
    if let Some(committed) = last_committed {
        let iter = inner.db.iterator_cf(
            inner.cf(CF_HEIGHTS),
            IteratorMode::From(
                &height_key(next(last_executed)),
                rocksdb::Direction::Forward,
            ),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| StorageError::from_rocks(e, Op::Read))?;
            let height = decode_height("height index key", &key)?;
            if height > committed {
                break;
            }
            let expected = match pending.last() {
                Some(p) => Some(p.height + 1),
                None => last_executed.map(|h| h + 1),
            };
            if let Some(expected) = expected.filter(|&e| e != height) {
                return Err(StorageError::Corruption(format!(
                    "height index has {height} where {expected} belongs"
                )));
            }
            pending.push(PendingBlock {
                height,
                hash: decode_hash("height index entry", &value)?,
            });
        }
        if pending.last().map_or(last_executed, |p| Some(p.height)) != Some(committed) {
            return Err(StorageError::Corruption(format!(
                "committed height {committed} is not in the height index"
            )));
        }
    }
    Ok(Recovery {
        last_executed,
        state_root,
        accumulator,
        last_committed,
        pending,
        pruned_below,
        restoring,
    })
}

/// Empties every column family but the safety data (and the layout, the chain's identity
/// and the mark itself) and deletes the snapshots of the old state, then drops the mark.
/// Point deletes throughout: the state families update in place, where RocksDB's range
/// deletion does not work.
fn clear_for_resync(inner: &Inner) -> Result<()> {
    const BATCH_KEYS: usize = 10_000;
    let write = |batch: rocksdb::WriteBatch| {
        inner
            .db
            .write_opt(batch, &inner.sync_opts)
            .map_err(|e| StorageError::from_rocks(e, Op::Write))
    };
    for name in ALL_CFS.iter().filter(|&&n| n != CF_SAFETY) {
        let cf = inner.cf(name);
        let mut batch = rocksdb::WriteBatch::default();
        for item in inner.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, _) = item.map_err(|e| StorageError::from_rocks(e, Op::Read))?;
            if *name == CF_META
                && (*key == *META_LAYOUT || *key == *META_RESYNC || *key == *META_GENESIS)
            {
                continue;
            }
            batch.delete_cf(cf, key);
            if batch.len() == BATCH_KEYS {
                write(std::mem::take(&mut batch))?;
            }
        }
        write(batch)?;
    }
    // The snapshots of the old state would hold pruning back below what the new one needs.
    let snapshots = inner
        .config
        .snapshot_dir
        .clone()
        .unwrap_or_else(|| inner.path.join("snapshots"));
    if snapshots.exists() {
        std::fs::remove_dir_all(&snapshots).map_err(|e| StorageError::SnapshotIo {
            path: snapshots.clone(),
            reason: e.to_string(),
        })?;
    }
    let mut batch = rocksdb::WriteBatch::default();
    batch.delete_cf(inner.cf(CF_META), META_RESYNC);
    write(batch)?;
    for name in ALL_CFS {
        inner
            .db
            .compact_range_cf(inner.cf(name), None::<&[u8]>, None::<&[u8]>);
    }
    info!(path = %inner.path.display(), "store emptied for a state sync (safety data kept)");
    Ok(())
}

/// The restore under way, if any: its manifest and the chunks already applied.
pub(crate) fn read_restore(inner: &Inner) -> Result<Option<RestoreProgress>> {
    let Some(bytes) = read_meta(inner, META_RESTORE_MANIFEST)? else {
        return Ok(None);
    };
    let manifest = SnapshotManifest::decode(&bytes)
        .map_err(|e| StorageError::malformed("restore manifest", e))?;
    let mut applied = Vec::new();
    let iter = inner.db.iterator_cf(
        inner.cf(CF_META),
        IteratorMode::From(META_RESTORE_CHUNK_PREFIX, rocksdb::Direction::Forward),
    );
    for item in iter {
        let (key, _) = item.map_err(|e| StorageError::from_rocks(e, Op::Read))?;
        if !key.starts_with(META_RESTORE_CHUNK_PREFIX) {
            break;
        }
        let index = decode_restore_chunk_key(&key)?;
        if index as usize >= manifest.chunks.len() {
            return Err(StorageError::malformed(
                "restore chunk key",
                format!("chunk {index} of {}", manifest.chunks.len()),
            ));
        }
        applied.push(index);
    }
    Ok(Some(RestoreProgress { manifest, applied }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of each of this process's threads whose name starts with `prefix`.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(prefix: &str) -> Vec<i32> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let dir = task.path();
            let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
                continue;
            };
            if !comm.starts_with(prefix) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                continue;
            };
            // Past the parenthesised name: field 19 of the whole line is the nice value.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let nice: i32 = after.split(' ').nth(16).unwrap().parse().unwrap();
            out.push(nice);
        }
        out
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn compactions_run_at_the_lowest_cpu_priority() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path(), &StorageConfig::default()).unwrap();
        let cf = db.cf_handle(CF_TXS).unwrap();
        // Two overlapping files, so that the compaction has work for a background thread.
        for round in 0..2u32 {
            for i in 0..1_000u32 {
                db.put_cf(cf, i.to_be_bytes(), round.to_le_bytes()).unwrap();
            }
            db.flush_cf(cf).unwrap();
        }
        db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        // Threads start at the nice value of the process (a test run under `nice` starts
        // higher): only below 19 does the lowering show.
        // SAFETY: getpriority only reads its integer arguments.
        let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        if base >= 19 {
            eprintln!("the test process runs at nice {base}: nothing to lower");
            return;
        }
        // A pool thread lowers its own priority when it takes its first job.
        let nice = nice_of_threads("rocksdb:low");
        assert!(
            nice.contains(&19),
            "no compaction thread at nice 19: {nice:?}"
        );
        assert!(
            nice_of_threads("rocksdb:high").iter().all(|&n| n == base),
            "flushes must keep the process's priority"
        );
    }
}
