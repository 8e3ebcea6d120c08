//! State snapshots: the storage half of state sync. A validator writes a snapshot of its
//! executed state now and then and serves it to peers in chunks; a validator far behind
//! restores one whose root consensus certified, then executes forward from its height.
//!
//! - `format`: the manifest and chunk encoding, the deterministic cut of the state into
//!   chunks, and the limits that bound decoding what a peer sends.
//! - `create`: [`crate::Storage::start_snapshot`] takes a RocksDB checkpoint of height H
//!   under the executed-block lock (so it holds exactly the state after H: state values
//!   are updated in place in the memtable, and no RocksDB snapshot or iterator over the
//!   live store is a consistent view while blocks are written), then a thread of its own
//!   cuts the checkpoint's state into chunk files and deletes the checkpoint.
//! - `restore`: [`crate::Restore`] applies verified chunks to a store that has executed
//!   nothing, durably and resumably, and finishes by checking the state root and marking H
//!   executed and committed in one write batch.
//!
//! On disk, under the snapshot folder (`StorageConfig::snapshot_dir`, by default
//! `<store>/snapshots`), one folder per complete snapshot, named by its height in decimal:
//!
//! ```text
//! snapshots/
//!   1200/
//!     manifest          the encoded SnapshotManifest
//!     chunk-000000      chunk 0's encoded bytes, exactly as served to peers
//!     chunk-000001
//!   .tmp-1300/          a snapshot being written; renamed to 1300/ once every file is synced
//!   .checkpoint-1300/   the RocksDB checkpoint it is read from; deleted when done
//! ```
//!
//! Invariants: a folder named by a height is complete (it appears by one rename, after
//! its files and the folder itself were fsynced), and its manifest lists exactly its chunk
//! files. Folders starting with a dot are work in progress of at most one snapshot job,
//! and are deleted by the next job if a crash left them behind.

mod create;
mod format;
mod restore;

pub use create::{SnapshotInfo, SnapshotJob};
pub use format::{
    ChunkInfo, RestoreProgress, SnapshotManifest, DEFAULT_CHUNK_BYTES, MAX_CHUNKS, MAX_CHUNK_BYTES,
    MAX_CHUNK_ENTRIES, MAX_ENTRY_BYTES, MAX_MANIFEST_BYTES, SNAPSHOT_FORMAT,
};
pub use restore::Restore;
