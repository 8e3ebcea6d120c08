//! What validators' nodes say to each other beyond the crates below: the envelope on the
//! consensus stream (consensus messages and state-root announcements) and the node's own
//! requests on the sync protocol (batches served from memory or RocksDB, blocks, and
//! state snapshots: see [`crate::snapshots`]).
//!
//! Invariant: everything here is decoded from untrusted bytes with a size limit; a frame
//! that does not decode is counted and its sender reported, never trusted.

use bincode::{Decode, Encode};
use ordo_consensus::{Block, Message};
use ordo_network::MAX_CONSENSUS_MESSAGE_BYTES;
use ordo_types::{codec, Hash32};

/// A frame on the consensus stream.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Encode, Decode)]
pub enum NodeMessage {
    Consensus(Message),
    /// The sender's state root after executing block `height`: carried after the block,
    /// so that divergent state is noticed (see [`crate::roots`]).
    StateRoot {
        height: u64,
        root: Hash32,
    },
}

impl NodeMessage {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ordo_types::Error> {
        codec::decode::<Self, MAX_CONSENSUS_MESSAGE_BYTES>(bytes)
    }
}

/// Snapshots listed in one answer: a validator keeps a few (`storage.snapshots_kept`).
pub const MAX_SNAPSHOT_OFFERS: usize = 16;

/// Largest node request.
pub const MAX_NODE_REQUEST_BYTES: usize = 1 << 10;
/// Largest node response (one batch, or an answer of blocks: see
/// [`crate::block_sync::MAX_SYNC_BYTES`]).
pub const MAX_NODE_RESPONSE_BYTES: usize = 8 << 20;

/// A request on the sync protocol's opaque channel.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum NodeRequest {
    /// The encoded batch with this digest, from memory or from RocksDB.
    Batch(Hash32),
    /// `block_id` and up to `max` of its ancestors above `above_round`, newest first
    /// (what the replica's `Message::BlockRequest` asks; see [`crate::block_sync`]).
    Blocks {
        block_id: Hash32,
        above_round: u64,
        max: u16,
    },
    /// Up to `max` blocks of the committed chain after block `after`, oldest first (what
    /// the replica's `Message::CatchUpRequest` asks; answered with
    /// [`NodeResponse::Blocks`], or [`NodeResponse::Pruned`] when the blocks after
    /// `after` are pruned here).
    CommittedAfter { after: Hash32, max: u16 },
    /// The state snapshots this validator offers.
    Snapshots,
    /// The encoded manifest of the snapshot of this height.
    SnapshotManifest(u64),
    /// Chunk `index` of the snapshot of `height`, as encoded bytes.
    SnapshotChunk { height: u64, index: u32 },
}

/// One state snapshot a validator offers: what a syncing peer compares across validators
/// (the same height, root, block, proof and manifest from more than f of them), whose
/// root it then checks against the chain's certificates, before it fetches the manifest
/// and chunks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct SnapshotOffer {
    pub height: u64,
    pub state_root: Hash32,
    /// The committed block at `height`, whose execution the state follows.
    pub block_hash: Hash32,
    /// A committed block whose certificate vouches for `state_root`: it certifies the
    /// block below it, and one block from there down to the one after `block_hash`
    /// carries the root (`ordo_consensus::verify_root_proof`).
    pub certified_by: Hash32,
    /// The blocks from `certified_by` down to the one after `block_hash`, at most
    /// [`crate::block_sync::MAX_SYNC_BLOCKS`]; 0 while no committed block carries the
    /// root yet (the offer cannot be taken before it is).
    pub proof_blocks: u16,
    /// The manifest's digest (`SnapshotManifest::digest`).
    pub manifest: Hash32,
    pub chunks: u32,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum NodeResponse {
    Batch(Option<Vec<u8>>),
    /// A hash chain from the requested block downwards, or the committed chain upwards
    /// from the block named; empty if it is not known here.
    Blocks(Vec<Block>),
    /// The snapshots offered, oldest first (at most [`MAX_SNAPSHOT_OFFERS`]).
    Snapshots(Vec<SnapshotOffer>),
    /// A manifest's bytes; `None` if there is no snapshot of that height (any more).
    SnapshotManifest(Option<Vec<u8>>),
    /// A chunk's bytes; `None` if there is no such snapshot or chunk (any more).
    SnapshotChunk(Option<Vec<u8>>),
    /// The committed chain asked for ([`NodeRequest::CommittedAfter`]) is pruned here:
    /// the oldest committed block kept is at height `oldest`.
    Pruned {
        oldest: u64,
    },
}

impl NodeRequest {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ordo_types::Error> {
        codec::decode::<Self, MAX_NODE_REQUEST_BYTES>(bytes)
    }
}

impl NodeResponse {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ordo_types::Error> {
        codec::decode::<Self, MAX_NODE_RESPONSE_BYTES>(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_garbage_is_an_error() {
        let m = NodeMessage::StateRoot {
            height: 7,
            root: Hash32([3; 32]),
        };
        match NodeMessage::decode(&m.encode()).unwrap() {
            NodeMessage::StateRoot { height, root } => {
                assert_eq!((height, root), (7, Hash32([3; 32])))
            }
            other => panic!("{other:?}"),
        }
        assert!(NodeMessage::decode(&[9, 9, 9]).is_err());
        let r = NodeRequest::Batch(Hash32([1; 32]));
        assert_eq!(NodeRequest::decode(&r.encode()).unwrap(), r);
        assert!(NodeRequest::decode(&[0u8; 2000]).is_err());
    }
}
