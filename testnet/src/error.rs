//! The crate's one error type. Every message is one line and says what to do next.

use std::path::PathBuf;

pub type Result<T, E = TestnetError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    #[error("port {port} ({role} of validator {index}) is already in use: stop what holds it, or choose another --port-base (with --reset)")]
    PortBusy {
        port: u16,
        role: &'static str,
        index: usize,
    },

    #[error("the validator binary {} is missing: build it with `cargo build -p ordo-cli --bin ordo` (or point ORDO_BIN at it)", path.display())]
    NoValidatorBinary { path: PathBuf },

    #[error("no testnet at {}: start one with `ordo testnet up`", dir.display())]
    NoTestnet { dir: PathBuf },

    #[error("validator {index} exited while starting (status {status}); see {}", log.display())]
    ExitedEarly {
        index: usize,
        status: String,
        log: PathBuf,
        /// The last lines of its log, for the user to read before the one-line error.
        tail: String,
    },

    #[error("validator {index} was not ready after {waited_s} s ({reason}); see {}", log.display())]
    NotReady {
        index: usize,
        waited_s: u64,
        reason: String,
        log: PathBuf,
    },

    #[error("no validator {index}: the testnet has {count} (0 to {})", count.saturating_sub(1))]
    NoSuchValidator { index: usize, count: usize },

    #[error("{0}")]
    Usage(String),

    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("RPC {addr}: {reason}")]
    Rpc { addr: String, reason: String },

    #[error(transparent)]
    Node(#[from] ordo_node::NodeError),

    #[error("the fault suite cannot go on: {0}")]
    Faults(String),

    #[error("interrupted")]
    Interrupted,
}

impl TestnetError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TestnetError::Io {
            what: what.into(),
            source,
        }
    }

    pub fn rpc(addr: impl ToString, reason: impl Into<String>) -> Self {
        TestnetError::Rpc {
            addr: addr.to_string(),
            reason: reason.into(),
        }
    }
}
