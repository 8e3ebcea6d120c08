//! The wire protocols, their names and their size limits.
//!
//! - consensus (`/ordo/consensus/1`): a long-lived stream per direction carrying frames of
//!   opaque bytes; the node encodes and decodes them.
//! - batch (`/ordo/batch/1`): a long-lived stream per direction carrying [`BatchMessage`]s:
//!   an author pushes its batches, receivers answer with signed acknowledgements.
//! - sync (`/ordo/sync/2`): a long-lived stream per direction (a lane) carrying many
//!   requests at once: each [`Request`] frame and its [`Response`] frame start with the
//!   request's 8-byte id, and answers come back in any order: missing batches, and opaque
//!   requests (blocks) answered by the node.
//!
//! Only validators are served any of them. Every frame is bounded by its protocol's limit.

use bincode::{Decode, Encode};
use libp2p::StreamProtocol;
use ordo_types::Hash32;

use crate::batch::Batch;

/// Largest consensus message frame.
pub const MAX_CONSENSUS_MESSAGE_BYTES: usize = 4 << 20;
/// Largest batch-protocol frame: a batch (see `DisseminationConfig::max_batch_bytes`) or an
/// acknowledgement.
pub const MAX_BATCH_MESSAGE_BYTES: usize = 4 << 20;
/// Largest sync request.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;
/// Largest sync response.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Consensus = 0,
    Batch = 1,
    Sync = 2,
}

impl Protocol {
    pub const COUNT: usize = 3;

    pub fn label(self) -> &'static str {
        match self {
            Protocol::Consensus => "consensus",
            Protocol::Batch => "batch",
            Protocol::Sync => "sync",
        }
    }

    pub(crate) fn stream_protocol(self) -> StreamProtocol {
        StreamProtocol::new(match self {
            Protocol::Consensus => "/ordo/consensus/1",
            Protocol::Batch => "/ordo/batch/1",
            Protocol::Sync => "/ordo/sync/2",
        })
    }

    pub(crate) fn max_frame(self) -> usize {
        match self {
            Protocol::Consensus => MAX_CONSENSUS_MESSAGE_BYTES,
            Protocol::Batch => MAX_BATCH_MESSAGE_BYTES,
            Protocol::Sync => MAX_REQUEST_BYTES,
        }
    }
}

/// A request on the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Request {
    /// The batch with this digest, answered from the batch store.
    Batch(Hash32),
    /// Anything else (blocks, for instance), answered by the node.
    Opaque(Vec<u8>),
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Response {
    Batch(Option<Batch>),
    Opaque(Vec<u8>),
    /// The responder could not answer now; ask someone else or later.
    Busy,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BatchMessage;
    use ordo_types::codec;

    #[test]
    fn garbage_does_not_decode_as_a_batch_message() {
        let garbage = [0xffu8; 64];
        assert!(codec::decode::<BatchMessage, MAX_BATCH_MESSAGE_BYTES>(&garbage).is_err());
    }
}
