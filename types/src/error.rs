//! The one error type of the primitives crate.

use std::path::PathBuf;

/// Everything that can go wrong while decoding, verifying or loading keys.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("input ends early: the encoded value needs more bytes than the {len} given")]
    Truncated { len: usize },
    #[error("{extra} unexpected bytes after the encoded value")]
    TrailingBytes { extra: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),

    /// The state could not be read (I/O, corruption); the block must not be executed.
    #[error("state read failed: {0}")]
    StateRead(String),

    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("{} of {total} signatures do not verify (first bad at index {})", bad.len(), bad[0])]
    BadSignatures {
        /// Indices of the failing signatures, ascending; never empty.
        bad: Vec<usize>,
        total: usize,
    },

    #[error("key file {path} does not exist")]
    KeyFileMissing { path: PathBuf },
    #[error("key file {path} already exists; refusing to overwrite a key")]
    KeyFileExists { path: PathBuf },
    #[error("key file {path} is malformed: {reason}")]
    KeyFileMalformed { path: PathBuf, reason: String },
    #[error("key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFileInsecure { path: PathBuf, mode: u32 },
    #[error("key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
