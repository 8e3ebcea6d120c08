//! RocksDB persistence for one validator: atomic per-block commit, consensus safety
//! data, recovery after a crash, and the state reads the executor runs on.
//!
//! Storage holds no business logic: state entries, blocks, certificates, batches and
//! receipts are opaque bytes under simple keys; consensus and execution own their
//! encodings.
//!
//! - [`Storage::open`] opens or creates the store and returns a [`Recovery`]: the last
//!   executed height with its state root and accumulator, the last committed height, and
//!   the committed blocks still to execute.
//! - [`Storage::record_committed`], [`Storage::put_block`], [`Storage::put_qc`],
//!   [`Storage::put_batches`] keep the chain; [`Storage::prune`] drops old blocks and batches.
//! - [`Storage::commit_executed`] writes a [`BlockCommit`] (state writes, receipts,
//!   transaction index, state root, accumulator, executed height) in one atomic batch.
//! - [`Storage::stage_executed`] and [`Storage::state_view`] let block h+1 execute on a
//!   [`StateSnapshot`] (an [`ordo_types::StateView`]) while block h is being written.
//! - [`Storage::write_safety_data`] is fsynced before it returns.
//! - [`Storage::start_snapshot`] writes a snapshot of the executed state in chunks, on a
//!   thread of its own; [`Storage::snapshot_manifest`] and [`Storage::snapshot_chunk`]
//!   serve it. [`Storage::begin_restore`] returns a [`Restore`] that applies a snapshot's
//!   verified chunks to an empty store, survives restarts and finishes at the snapshot's
//!   height.
//! - [`StorageError`] separates corruption, a full disk and failed writes (all fatal,
//!   see [`StorageError::is_fatal`]) from a caller's mistakes.
//!
//! Modules only use those below them. `store` defines the [`Storage`] handle and what it
//! holds, and `chain`, `state` and `commit` add its methods in their own `impl` blocks; so
//! anything the handle holds (the cache, the staged blocks) lives below `store`. From the
//! bottom: `error`, `snapshot::format`, `config`, `cache`; `schema`, `executed`; `store`;
//! `chain`, `state`; `commit`; `snapshot::create`, `snapshot::restore`.

mod cache;
mod chain;
mod commit;
mod config;
mod error;
mod executed;
mod schema;
mod snapshot;
mod state;
mod store;

pub use cache::CacheStats;
pub use chain::PruneStats;
pub use config::StorageConfig;
pub use error::{Result, StorageError};
pub use executed::{BlockCommit, TxOutcome};
pub use schema::TxLocation;
pub use snapshot::{
    ChunkInfo, Restore, RestoreProgress, SnapshotInfo, SnapshotJob, SnapshotManifest,
    DEFAULT_CHUNK_BYTES, MAX_CHUNKS, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES, MAX_ENTRY_BYTES,
    MAX_MANIFEST_BYTES, SNAPSHOT_FORMAT,
};
pub use state::StateSnapshot;
pub use store::{PendingBlock, Recovery, Storage};
