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
//! - [`StorageError`] separates corruption, a full disk and failed writes (all fatal,
//!   see [`StorageError::is_fatal`]) from a caller's mistakes.
//!
//! Modules only use those below them. `store` defines the [`Storage`] handle and what it
//! holds, and `chain`, `state` and `commit` add its methods in their own `impl` blocks; so
//! anything the handle holds (the cache, the staged blocks) lives below `store`. From the
//! bottom: `error`, `config`, `cache`; `schema`, `executed`; `store`; `chain`, `state`;
//! `commit`.

mod cache;
mod chain;
mod commit;
mod config;
mod error;
mod executed;
mod schema;
mod state;
mod store;

pub use cache::CacheStats;
pub use chain::PruneStats;
pub use config::StorageConfig;
pub use error::{Result, StorageError};
pub use executed::{BlockCommit, TxOutcome};
pub use schema::TxLocation;
pub use state::StateSnapshot;
pub use store::{PendingBlock, Recovery, Storage};
