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
//! Invariants: an answer to a block request is a chain from the requested block towards
//! genesis, each block the parent of the one before, all above the requester's
//! `above_round`; an answer to a catch-up request ([`answer_after`]) is the committed
//! chain after the named block, oldest first, each block the child of the one before.
//! Either is at most `max_blocks` blocks and, beyond the first block, `max_bytes` encoded
//! bytes.

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

/// The committed blocks after block `after`, oldest first, as found through `height_of`
/// (the committed height of a block, genesis at 0) and `block_at` (the committed block at
/// a height, with its encoded size); empty when `after` is not committed here. Stops at
/// the first height not found (the committed tip, or a pruned gap) and at a block that is
/// not the child of the one before (a store that is not one chain is not served from).
pub fn answer_after(
    height_of: impl FnOnce(&Hash32) -> Option<u64>,
    mut block_at: impl FnMut(u64) -> Option<(Block, usize)>,
    after: Hash32,
    max_blocks: usize,
    max_bytes: usize,
) -> Vec<Block> {
    let Some(start) = height_of(&after) else {
        return Vec::new();
    };
    let mut out: Vec<Block> = Vec::new();
    let mut bytes = 0usize;
    let mut parent = after;
    for height in start.saturating_add(1).. {
        if out.len() >= max_blocks {
            break;
        }
        let Some((block, size)) = block_at(height) else {
            break;
        };
        if block.parent() != parent {
            break;
        }
        if !out.is_empty() && bytes.saturating_add(size) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(size);
        parent = block.id();
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
                state: Default::default(),
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

    #[test]
    fn answers_the_committed_chain_after_a_block_oldest_first() {
        let blocks = chain(10);
        let heights: HashMap<Hash32, u64> = blocks
            .iter()
            .enumerate()
            .map(|(h, b)| (b.id(), h as u64))
            .collect();
        let height_of = |id: &Hash32| heights.get(id).copied();
        let block_at = |h: u64| blocks.get(h as usize).map(|b| (b.clone(), 100));
        let rounds = |v: Vec<Block>| v.iter().map(|b| b.round).collect::<Vec<_>>();
        let after = |h: usize| blocks[h].id();
        assert_eq!(
            rounds(answer_after(height_of, block_at, after(0), 3, 1 << 20)),
            vec![1, 2, 3]
        );
        assert_eq!(
            rounds(answer_after(height_of, block_at, after(7), 128, 1 << 20)),
            vec![8, 9, 10],
            "stops at the tip"
        );
        assert_eq!(
            rounds(answer_after(height_of, block_at, after(2), 128, 250)),
            vec![3, 4]
        );
        assert_eq!(
            rounds(answer_after(height_of, block_at, after(2), 128, 10)),
            vec![3],
            "one block at least"
        );
        assert!(answer_after(height_of, block_at, after(10), 128, 1 << 20).is_empty());
        assert!(answer_after(height_of, block_at, Hash32([1; 32]), 128, 1 << 20).is_empty());
        // A store whose height 5 holds another block that names block 4 as its parent:
        // block 6 is not that block's child, and nothing is served past it.
        let mut other = chain(10);
        other[5].timestamp_ms += 1;
        let broken = |h: u64| other.get(h as usize).map(|b| (b.clone(), 100));
        assert_eq!(
            rounds(answer_after(height_of, broken, after(2), 128, 1 << 20)),
            vec![3, 4, 5]
        );
    }
}
