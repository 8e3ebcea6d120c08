//! The one error type of the node crate: configuration, genesis, start-up and the
//! pipeline's fatal failures. Client-facing RPC errors are separate ([`crate::rpc`]),
//! because they are answers with stable codes, not failures of the node.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A config file that does not parse or names a bad value; `field` is its dotted path.
    #[error("config {path}: {field}: {reason}")]
    Config {
        path: PathBuf,
        field: String,
        reason: String,
    },
    /// A genesis file that does not parse or is inconsistent; `field` is its dotted path.
    #[error("genesis {path}: {field}: {reason}")]
    Genesis {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("key file: {0}")]
    Key(#[from] ordo_types::Error),
    #[error("storage: {0}")]
    Storage(#[from] ordo_storage::StorageError),
    #[error("network: {0}")]
    Network(#[from] ordo_network::Error),
    #[error("execution: {0}")]
    Execution(#[from] ordo_execution::ExecutionError),
    #[error("consensus: {0}")]
    Consensus(#[from] ordo_consensus::ConsensusError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// One of the validator's tasks ended (see [`crate::supervisor`]): the validator
    /// stopped.
    #[error("validator task '{task}' failed: {reason}")]
    TaskFailed { task: &'static str, reason: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = NodeError> = std::result::Result<T, E>;
