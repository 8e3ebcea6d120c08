//! Block sync's serving side: what a validator answers to a peer's
//! [`Message::BlockRequest`](crate::Message::BlockRequest). The replica does not answer
//! requests itself (it asks the node to keep every block of its tree with
//! [`Action::KeepBlock`](crate::Action::KeepBlock)); the node's block server and the
//! simulator answer with [`answer`] from what they keep and what storage holds, off the
//! consensus thread.
//!
//! The requesting side lives in the replica: it takes a response only from the peer it
//! asked, only as a hash chain from the block it asked for, and verifies every
//! certificate in it.
//!
//! Invariant: an answer is a chain from the requested block towards genesis, each block
//! the parent of the one before, all above the requester's `above_round`, at most
//! `max_blocks` blocks and, beyond the first block, `max_bytes` encoded bytes.

use ordo_types::Hash32;

use crate::messages::{Block, Round};

/// `block_id` and its ancestors above `above_round`, newest first, as found through
/// `lookup` (a block and its encoded size); stops at the first block not found.
pub fn answer(
    mut lookup: impl FnMut(&Hash32) -> Option<(Block, usize)>,
    block_id: Hash32,
    above_round: Round,
    max_blocks: usize,
    max_bytes: usize,
) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = block_id;
    while out.len() < max_blocks {
        let Some((block, size)) = lookup(&cursor) else {
            break;
        };
        // Genesis (round 0) is never sent: every replica has it.
        if block.round <= above_round || out.last().is_some_and(|child| child.round <= block.round)
        {
            break;
        }
        if !out.is_empty() && bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(size);
        cursor = block.parent();
        out.push(block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::QuorumCert;
    use std::collections::HashMap;

    fn chain(len: u64) -> Vec<Block> {
        let mut blocks = vec![Block::genesis(0)];
        for round in 1..=len {
            let parent = &blocks[blocks.len() - 1];
            let mut qc = QuorumCert::genesis(0);
            qc.round = parent.round;
            qc.block_id = parent.id();
            blocks.push(Block {
                epoch: 0,
                round,
                author: 0,
                timestamp_ms: round,
                payload: vec![],
                qc,
            });
        }
        blocks
    }

    #[test]
    fn answers_a_bounded_chain_newest_first() {
        let blocks = chain(10);
        let by_id: HashMap<Hash32, Block> = blocks.iter().map(|b| (b.id(), b.clone())).collect();
        let lookup = |id: &Hash32| by_id.get(id).map(|b| (b.clone(), 100));
        let tip = blocks[10].id();
        let rounds = |v: Vec<Block>| v.iter().map(|b| b.round).collect::<Vec<_>>();
        assert_eq!(
            rounds(answer(lookup, tip, 6, 128, 1 << 20)),
            vec![10, 9, 8, 7]
        );
        assert_eq!(rounds(answer(lookup, tip, 0, 3, 1 << 20)), vec![10, 9, 8]);
        assert_eq!(rounds(answer(lookup, tip, 0, 128, 250)), vec![10, 9]);
        assert_eq!(
            rounds(answer(lookup, tip, 0, 128, 10)),
            vec![10],
            "one block at least"
        );
        assert_eq!(answer(lookup, Hash32([1; 32]), 0, 128, 1 << 20), vec![]);
        assert_eq!(
            rounds(answer(lookup, blocks[2].id(), 0, 128, 1 << 20)),
            vec![2, 1]
        );
    }
}
