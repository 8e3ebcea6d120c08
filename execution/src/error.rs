//! The one error type of the execution crate, and the crate's result type.
//!
//! A block either executes completely or not at all: every error here means the state could
//! not be read as it must be, and the caller must not commit anything for the block.

/// Why a block could not be executed. Transaction failures are not errors: they are
/// receipts with a [`crate::TxStatus`].
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    #[error("reading state key {key} failed: {source}")]
    StateRead {
        key: String,
        #[source]
        source: ordo_types::Error,
    },
    /// A read during a contract block's execution failed (the message names the key).
    #[error("{0}")]
    StateReadFailed(String),
    #[error("state key {key} is malformed")]
    MalformedKey { key: String },
    #[error("the value stored under state key {key} is malformed: {source}")]
    MalformedValue {
        key: String,
        #[source]
        source: ordo_types::Error,
    },
    #[error("a block of {len} transactions exceeds the limit of {max}")]
    BlockTooLarge { len: usize, max: usize },
    #[error("cannot start the executor's thread pool: {0}")]
    ThreadPool(String),
    #[error("genesis is invalid: {0}")]
    InvalidGenesis(String),
}

/// The result type of this crate.
pub type Result<T, E = ExecutionError> = std::result::Result<T, E>;
