//! The one error type of the network crate: transport, peers, dissemination and mempool.

use ordo_types::{Hash32, PublicKey};

/// Which mempool cap a transaction ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MempoolCap {
    Transactions,
    Bytes,
    PerSender,
}

impl std::fmt::Display for MempoolCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MempoolCap::Transactions => "transaction count",
            MempoolCap::Bytes => "byte",
            MempoolCap::PerSender => "per-sender",
        })
    }
}

/// Everything the network, the dissemination layer and the mempool can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validator set: {0}")]
    InvalidCommittee(String),
    #[error("network key is not a valid ed25519 key: {0}")]
    InvalidNetworkKey(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("transport setup failed: {0}")]
    Transport(String),
    #[error("{0} is not a validator")]
    UnknownValidator(PublicKey),
    #[error("send queue to {peer} is full; message dropped")]
    QueueFull { peer: PublicKey },
    #[error("the network has shut down")]
    Shutdown,
    #[error("request to {peer} failed: {reason}")]
    Request { peer: PublicKey, reason: String },
    #[error("bad message: {0}")]
    Decode(#[from] ordo_types::Error),

    #[error("mempool full: {0} cap reached")]
    MempoolFull(MempoolCap),
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash32),
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain { expected: u64, got: u64 },
    #[error("nonce {nonce} is below the account's next nonce {next}")]
    NonceTooLow { nonce: u64, next: u64 },
    #[error(
        "nonce {nonce} is beyond the window of {window} above the account's next nonce {next}"
    )]
    NonceTooHigh { nonce: u64, next: u64, window: u64 },
    #[error("transaction expired at {expiry} ms (now {now} ms)")]
    Expired { expiry: u64, now: u64 },
    #[error("transaction of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("signature does not verify")]
    BadSignature,

    #[error("batch store full: {0}")]
    StoreFull(String),
    #[error("batch {0} could not be fetched from any validator")]
    BatchUnavailable(Hash32),
    #[error("proof of availability: {0}")]
    InvalidProof(String),
    #[error("batch rejected: {0}")]
    InvalidBatch(String),
    #[error("payloads not put into a batch: {0}")]
    NotBatched(String),
}
