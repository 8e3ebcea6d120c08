//! Block requests answered beyond the consensus tree: a replica keeps only its recent
//! blocks in memory (and a restarted one only what it reloaded), so a validator that lost
//! its data or fell far behind would find no peer able to serve the chain below their
//! trees. Committed blocks are in every validator's RocksDB; the driver continues each
//! block response from there.
//!
//! Invariant: a response is a hash chain from the requested block downwards (what the
//! requester checks), at most [`MAX_SYNC_BLOCKS`] blocks and [`MAX_SYNC_BYTES`] encoded.

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::{Action, Block, Message};
use ordo_storage::Storage;
use ordo_types::{codec, Hash32, PublicKey};

/// The most blocks in one response: the requester's `sync_batch` (128 by default), which it
/// also enforces.
pub const MAX_SYNC_BLOCKS: usize = 128;
/// Half the consensus frame limit, so a response of blocks with full payloads still fits.
pub const MAX_SYNC_BYTES: usize = 2 << 20;

/// A block request's fields.
#[derive(Clone, Copy, Debug)]
pub struct BlockRequest {
    pub block_id: Hash32,
    pub above_round: u64,
    pub max: u16,
}

impl BlockRequest {
    pub fn of(message: &Message) -> Option<BlockRequest> {
        match message {
            Message::BlockRequest {
                block_id,
                above_round,
                max,
            } => Some(BlockRequest {
                block_id: *block_id,
                above_round: *above_round,
                max: *max,
            }),
            _ => None,
        }
    }
}

/// Extends the replica's answer to `request` from `from` (in `actions`) with committed
/// blocks from storage, or answers from storage alone when the replica had nothing.
pub fn complete(
    storage: &Storage,
    from: &PublicKey,
    request: BlockRequest,
    actions: &mut Vec<Action>,
) {
    let max = usize::from(request.max).min(MAX_SYNC_BLOCKS);
    let answered = actions.iter_mut().find_map(|a| match a {
        Action::Send {
            to,
            message: Message::BlockResponse { blocks },
        } if to == from => Some(blocks),
        _ => None,
    });
    match answered {
        Some(blocks) => {
            let Some(last) = blocks.last() else { return };
            if last.round <= request.above_round.saturating_add(1) {
                return;
            }
            let next = last.parent();
            let mut bytes: usize = blocks.iter().map(|b| codec::encode(b).len()).sum();
            extend(storage, next, request.above_round, max, &mut bytes, blocks);
        }
        None => {
            let mut blocks = Vec::new();
            let mut bytes = 0;
            extend(
                storage,
                request.block_id,
                request.above_round,
                max,
                &mut bytes,
                &mut blocks,
            );
            if !blocks.is_empty() {
                actions.push(Action::Send {
                    to: *from,
                    message: Message::BlockResponse { blocks },
                });
            }
        }
    }
}

/// Walks parent links from `cursor` through storage while blocks are above `above_round`.
fn extend(
    storage: &Storage,
    mut cursor: Hash32,
    above_round: u64,
    max: usize,
    bytes: &mut usize,
    out: &mut Vec<Block>,
) {
    while out.len() < max {
        let Ok(Some(encoded)) = storage.block(&cursor) else {
            return;
        };
        if *bytes + encoded.len() > MAX_SYNC_BYTES && !out.is_empty() {
            return;
        }
        let Ok(block) = codec::decode::<Block, MAX_MESSAGE_BYTES>(&encoded) else {
            return;
        };
        if block.round <= above_round || block.id() != cursor {
            return;
        }
        *bytes += encoded.len();
        cursor = block.parent();
        out.push(block);
        metrics::counter!("ordo_node_sync_blocks_from_storage_total").increment(1);
    }
}
