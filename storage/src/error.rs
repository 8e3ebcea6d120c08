//! The one error type of the storage crate.
//!
//! RocksDB reports failures as a status string; [`StorageError::from_rocks`] sorts them
//! into the kinds the node must tell apart: corruption and a full disk mean the node has
//! to stop (its data can no longer be trusted or extended), a failed write or read means
//! the operation did not happen. Everything else is a caller's mistake (heights out of
//! order, a conflicting block) and leaves the store unchanged. Snapshot errors concern
//! snapshot files or what a peer sent, never the store's own data: none is fatal.

use std::path::PathBuf;

use ordo_types::Hash32;

/// The result type of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What the database was doing when RocksDB failed; it picks between
/// [`StorageError::WriteFailed`] and [`StorageError::ReadFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
}

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Stored data failed a checksum or does not decode: nothing read from this store
    /// can be trusted any more.
    #[error("storage corruption: {0}")]
    Corruption(String),
    /// The disk is full; no further block can be written.
    #[error("storage out of disk space: {0}")]
    NoSpace(String),
    /// A write did not happen (I/O error, shutdown, busy); the store is as it was before
    /// the call, but the node cannot assume later writes will succeed.
    #[error("storage write failed: {0}")]
    WriteFailed(String),
    /// A read could not be completed.
    #[error("storage read failed: {0}")]
    ReadFailed(String),
    /// The store was written by another storage layout (see `LAYOUT_VERSION`); `None`:
    /// by one from before layouts were versioned.
    #[error(
        "the store at {path} was written by storage layout {found}, this build reads layout \
         {expected}: start this validator from an empty data directory (state sync, or a \
         fresh testnet)",
        found = found.map_or("1 (unversioned)".to_string(), |v| v.to_string())
    )]
    Layout {
        path: PathBuf,
        found: Option<u32>,
        expected: u32,
    },
    /// The database could not be opened.
    #[error("cannot open storage at {path}: {reason}")]
    Open { path: PathBuf, reason: String },

    /// Heights are written in order, one after the other.
    #[error("{what} height {got} is out of order: expected {expected}")]
    OutOfOrder {
        what: &'static str,
        expected: u64,
        got: u64,
    },
    /// A block is executed only after consensus committed it.
    #[error("block at height {height} is not committed (last committed: {last_committed:?})")]
    NotCommitted {
        height: u64,
        last_committed: Option<u64>,
    },
    /// A different block is already recorded at this height.
    #[error("height {height} already holds block {stored}, not {given}")]
    HeightConflict {
        height: u64,
        stored: Hash32,
        given: Hash32,
    },
    /// A block commit that cannot be stored as given.
    #[error("invalid block commit: {0}")]
    InvalidCommit(String),
    /// A state view was read after a block above its height reached the database, so it
    /// could return values from the future; take a fresh view.
    #[error("state view at height {view:?} is stale: height {written} is being written")]
    StaleView { view: Option<u64>, written: u64 },

    /// A snapshot file could not be written or read; the store itself is unaffected.
    #[error("snapshot file {path}: {reason}")]
    SnapshotIo { path: PathBuf, reason: String },
    /// No snapshot could be made of the state at `height`: an entry or the number of
    /// chunks is over its limit, the checkpoint could not be read, or the job died.
    #[error("cannot snapshot height {height}: {reason}")]
    SnapshotFailed { height: u64, reason: String },
    /// A manifest that does not decode, is of another format or breaks a limit.
    #[error("invalid snapshot manifest: {0}")]
    InvalidManifest(String),
    /// A chunk that does not match its manifest or does not decode; nothing of it was
    /// written. Blame whoever sent it.
    #[error("invalid snapshot chunk {index}: {reason}")]
    InvalidChunk { index: u32, reason: String },
    /// Every chunk matched the manifest, but together they make a state of another root:
    /// the manifest itself is wrong. Nothing was marked executed; abort the restore.
    #[error("restored state at height {height} has root {got}, the manifest names {expected}")]
    RestoreRootMismatch {
        height: u64,
        expected: Hash32,
        got: Hash32,
    },
    /// A restore cannot finish before every chunk is applied.
    #[error("restore of height {height} still lacks {missing} chunks")]
    RestoreIncomplete { height: u64, missing: usize },
    /// A restore needs a store that has executed nothing and holds no state.
    #[error("cannot restore into a store that holds state (last executed: {last_executed:?})")]
    StateNotEmpty { last_executed: Option<u64> },
    /// A restore is under way: no block executes and no other restore begins until it is
    /// finished or aborted, and its handle is not handed out twice.
    #[error("a restore of height {height} is under way")]
    RestoreInProgress { height: u64 },
    /// There is no restore to resume or abort.
    #[error("no restore is under way")]
    NoRestore,
    /// The committed chain already passed the snapshot's height: restoring it would take
    /// the committed height back.
    #[error("cannot restore height {height}: height {last_committed} is already committed")]
    RestoreBelowCommitted { height: u64, last_committed: u64 },
}

impl StorageError {
    /// Sorts a RocksDB status into a typed error.
    pub(crate) fn from_rocks(e: rocksdb::Error, op: Op) -> Self {
        use rocksdb::ErrorKind;
        let kind = e.kind();
        let message = e.into_string();
        match kind {
            ErrorKind::Corruption => StorageError::Corruption(message),
            // RocksDB has no status code for ENOSPC: it surfaces as an I/O error (or, once
            // the background error handler has stopped writes, a NoSpace sub-code) whose
            // text names the condition.
            _ if is_no_space(&message) => StorageError::NoSpace(message),
            _ => match op {
                Op::Read => StorageError::ReadFailed(message),
                Op::Write => StorageError::WriteFailed(message),
            },
        }
    }

    /// Whether the node must stop: the store is corrupt, full, or failed to write, so
    /// continuing would run on state that may not match what is on disk.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StorageError::Corruption(_)
                | StorageError::NoSpace(_)
                | StorageError::WriteFailed(_)
                | StorageError::Open { .. }
                | StorageError::Layout { .. }
        )
    }

    /// A stored value that does not decode is corruption, whatever the decoder says.
    pub(crate) fn malformed(what: &str, reason: impl std::fmt::Display) -> Self {
        StorageError::Corruption(format!("stored {what} is malformed: {reason}"))
    }
}

fn is_no_space(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("no space") || lower.contains("nospace") || lower.contains("enospc")
}

/// The executor reads through [`ordo_types::StateView`]; the storage error travels there
/// as [`ordo_types::Error::StateRead`] text, and the node learns the typed cause from
/// [`crate::Storage::health`].
impl From<StorageError> for ordo_types::Error {
    fn from(e: StorageError) -> Self {
        ordo_types::Error::StateRead(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_is_recognised_in_io_errors() {
        assert!(is_no_space(
            "IO error: No space left on deviceWhile appending"
        ));
        assert!(is_no_space("IO error: NoSpace: disk quota"));
        assert!(!is_no_space("IO error: Broken pipe"));
    }

    #[test]
    fn fatal_kinds() {
        assert!(StorageError::Corruption("x".into()).is_fatal());
        assert!(StorageError::NoSpace("x".into()).is_fatal());
        assert!(StorageError::WriteFailed("x".into()).is_fatal());
        assert!(!StorageError::ReadFailed("x".into()).is_fatal());
        assert!(!StorageError::OutOfOrder {
            what: "executed",
            expected: 1,
            got: 3
        }
        .is_fatal());
    }
}
