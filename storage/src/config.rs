//! Tunables of the store. Defaults suit a validator; tests shrink the memory budgets.

use std::path::PathBuf;

use crate::snapshot::DEFAULT_CHUNK_BYTES;

/// How the store is opened and how durable each kind of write is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Fsync the write-ahead log before [`crate::Storage::commit_executed`] and
    /// [`crate::Storage::record_committed`] return. With `false`, a `kill -9` still loses
    /// nothing (the log is in the OS page cache) but a power loss may drop the latest
    /// blocks, which then re-execute after restart. Safety data is always synced.
    pub sync_commits: bool,
    /// Entries of the hot-key state cache (each holds one key and its value).
    pub cache_entries: usize,
    /// RocksDB's block cache, in bytes, shared by all column families.
    pub block_cache_bytes: usize,
    /// Memtable size of the state column family, in bytes; one 10,000-transaction block
    /// writes a few megabytes, so several blocks fit before a flush.
    pub state_write_buffer_bytes: usize,
    /// The history of heights more than this many below the executed height (blocks,
    /// certificates, batches, the height index, transaction index entries and
    /// receipts) is removed by [`crate::Storage::prune`]; `None` keeps everything.
    /// State is always kept.
    pub retain_heights: Option<u64>,
    /// Batches stored within this many heights of a pruning height are kept through it:
    /// a batch is tagged with the height the chain had when it was stored, and the
    /// block that commits it may come later. 1,024 heights are about half a minute of
    /// a loaded chain, far longer than a batch waits to be proposed.
    pub batch_grace_heights: u64,
    /// Where state snapshots are written (see [`crate::Storage::start_snapshot`]); `None`: the folder
    /// `snapshots` inside the store's own. Keep it on the store's file system: the
    /// RocksDB checkpoint a snapshot is read from is made of hard links there, and is
    /// a full copy anywhere else.
    pub snapshot_dir: Option<PathBuf>,
    /// A snapshot is due after every height that is a multiple of this
    /// ([`crate::Storage::snapshot_due`]); `None`: never. All validators of a chain should
    /// use one interval, so that they snapshot the same heights.
    pub snapshot_interval: Option<u64>,
    /// Snapshots kept; the oldest go once a newer one is complete. At least one is.
    pub snapshots_kept: usize,
    /// Where a snapshot's chunks are cut, in encoded bytes. Part of what the manifest
    /// is: validators with different budgets publish different manifests of the same
    /// state, so all keep the default; tests lower it to get many chunks from little
    /// state.
    pub snapshot_chunk_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sync_commits: true,
            cache_entries: 1 << 20,
            block_cache_bytes: 512 << 20,
            state_write_buffer_bytes: 32 << 20,
            retain_heights: None,
            batch_grace_heights: 1_024,
            snapshot_dir: None,
            snapshot_interval: None,
            snapshots_kept: 2,
            snapshot_chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

impl StorageConfig {
    /// Small memory budgets for tests and tools that open many stores.
    pub fn small() -> Self {
        StorageConfig {
            cache_entries: 4096,
            block_cache_bytes: 8 << 20,
            state_write_buffer_bytes: 4 << 20,
            ..StorageConfig::default()
        }
    }
}
