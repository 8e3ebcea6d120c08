//! The tree of blocks above the committed root, plus a short tail of committed blocks.
//!
//! Invariants: every uncommitted block in the tree has its parent in the tree, at the
//! round its QC names and below its own, so the path from any block down to the root is
//! complete and describes itself truthfully. What a certificate commits is read from
//! these blocks ([`BlockTree::committed_by`]). Committing a block makes it the root and
//! prunes every block at or below its round that is not on the committed chain; forks
//! never survive a commit.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ordo_types::Hash32;

use crate::messages::{Block, Round};

/// What happened to a block offered to the tree.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Added,
    Known,
    /// The parent is unknown; fetch it, then offer the block again.
    MissingParent(Hash32),
    /// At or below the committed root: nothing to do.
    Stale,
    /// The block's QC names its parent at another round than the parent's, or the block
    /// does not follow its parent's round: no honest quorum certified such a chain.
    Inconsistent,
}

/// What a certificate commits, as the tree sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitRule {
    /// The certified block is not in the tree (yet).
    Unknown,
    /// The certified block does not directly follow its parent's round.
    Nothing,
    /// The parent: its round and id.
    Commits(Round, Hash32),
}

pub struct BlockTree {
    blocks: HashMap<Hash32, Block>,
    by_round: BTreeMap<Round, Vec<Hash32>>,
    root: (Round, Hash32),
    /// Recent committed blocks, oldest first; the last is the root.
    committed: VecDeque<Hash32>,
    retention: usize,
}

impl BlockTree {
    /// Starts from the most recent committed blocks, oldest first (at least the root).
    pub fn new(committed_tail: Vec<Block>, retention: usize) -> Self {
        let mut tree = BlockTree {
            blocks: HashMap::new(),
            by_round: BTreeMap::new(),
            root: (0, Hash32::ZERO),
            committed: VecDeque::new(),
            retention: retention.max(1),
        };
        for block in committed_tail {
            let id = block.id();
            tree.root = (block.round, id);
            tree.by_round.entry(block.round).or_default().push(id);
            tree.blocks.insert(id, block);
            tree.committed.push_back(id);
        }
        tree.trim_committed();
        tree
    }

    pub fn root(&self) -> (Round, Hash32) {
        self.root
    }

    pub fn get(&self, id: &Hash32) -> Option<&Block> {
        self.blocks.get(id)
    }

    pub fn contains(&self, id: &Hash32) -> bool {
        self.blocks.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    #[cfg(test)]
    pub fn insert(&mut self, block: Block) -> Insert {
        self.insert_with_id(block.id(), block)
    }

    /// [`BlockTree::insert`] for a caller that computed `id == block.id()` already.
    pub fn insert_with_id(&mut self, id: Hash32, block: Block) -> Insert {
        debug_assert_eq!(id, block.id());
        if self.blocks.contains_key(&id) {
            return Insert::Known;
        }
        if block.round <= self.root.0 {
            return Insert::Stale;
        }
        let parent = block.parent();
        match self.blocks.get(&parent) {
            Some(p) if p.round != block.qc.round || p.round >= block.round => {
                return Insert::Inconsistent
            }
            Some(p) if p.round >= self.root.0 => {}
            Some(_) => return Insert::Stale,
            // A missing parent at or below the root can only be on a fork we will never
            // commit; there is nothing to fetch.
            None if block.qc.round <= self.root.0 => return Insert::Stale,
            None => return Insert::MissingParent(parent),
        }
        self.by_round.entry(block.round).or_default().push(id);
        self.blocks.insert(id, block);
        Insert::Added
    }

    /// Commits `id`, which must be a block of `round`, and its uncommitted ancestors;
    /// returns them oldest first. Returns an empty list if `id` is already committed, is
    /// not of `round`, or is not on a complete path to the root.
    pub fn commit(&mut self, id: &Hash32, round: Round) -> Vec<Block> {
        if !crate::control::INSECURE_SYNC && self.blocks.get(id).is_none_or(|b| b.round != round) {
            return Vec::new();
        }
        let mut chain = Vec::new();
        let mut cursor = *id;
        loop {
            if cursor == self.root.1 {
                break;
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.round > self.root.0 => {
                    chain.push(cursor);
                    cursor = b.parent();
                }
                _ => return Vec::new(),
            }
        }
        if chain.is_empty() {
            return Vec::new();
        }
        chain.reverse();
        let new_root = match self.blocks.get(id) {
            Some(b) => (b.round, *id),
            None => return Vec::new(),
        };
        self.committed.extend(chain.iter().copied());
        let old_root = std::mem::replace(&mut self.root, new_root);
        // Rounds up to the old root hold only committed blocks already; only the newly
        // committed span can hold forks.
        let keep: HashSet<Hash32> = chain.iter().copied().collect();
        let mut span = self.by_round.split_off(&old_root.0.saturating_add(1));
        let above = span.split_off(&new_root.0.saturating_add(1));
        for (round, ids) in span {
            let kept: Vec<Hash32> = ids
                .into_iter()
                .filter(|i| {
                    let k = keep.contains(i);
                    if !k {
                        self.blocks.remove(i);
                    }
                    k
                })
                .collect();
            if !kept.is_empty() {
                self.by_round.insert(round, kept);
            }
        }
        self.by_round.extend(above);
        let out = chain
            .iter()
            .filter_map(|i| self.blocks.get(i).cloned())
            .collect();
        self.trim_committed();
        out
    }

    fn trim_committed(&mut self) {
        while self.committed.len() > self.retention {
            if let Some(old) = self.committed.pop_front() {
                if let Some(b) = self.blocks.remove(&old) {
                    if let Some(ids) = self.by_round.get_mut(&b.round) {
                        ids.retain(|i| *i != old);
                        if ids.is_empty() {
                            self.by_round.remove(&b.round);
                        }
                    }
                }
            }
        }
    }

    /// What a QC for `certified` (of `round`) commits under the 2-chain rule: the
    /// certified block's parent, when the certified block is of `round` and directly
    /// follows that parent's round. Read from the tree, whose blocks are bound by their
    /// ids, never from a certificate's own parent fields.
    pub fn committed_by(&self, certified: &Hash32, round: Round) -> CommitRule {
        let Some(block) = self.blocks.get(certified) else {
            return CommitRule::Unknown;
        };
        if block.round != round || block.qc.round.saturating_add(1) != round {
            return CommitRule::Nothing;
        }
        CommitRule::Commits(block.qc.round, block.parent())
    }

    /// Walks from `id` down to (not including) the root.
    pub fn uncommitted_path(&self, id: &Hash32) -> impl Iterator<Item = &Block> {
        let root = self.root;
        let mut cursor = Some(*id);
        std::iter::from_fn(move || {
            let id = cursor?;
            let b = self.blocks.get(&id).filter(|b| b.round > root.0)?;
            cursor = Some(b.parent());
            Some(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::QuorumCert;

    fn child(parent: &Block, round: Round, tag: u8) -> Block {
        let mut qc = QuorumCert::genesis(0);
        qc.round = parent.round;
        qc.block_id = parent.id();
        Block {
            epoch: 0,
            round,
            author: 0,
            timestamp_ms: u64::from(tag),
            payload: vec![],
            state: Default::default(),
            qc,
        }
    }

    #[test]
    fn commit_returns_the_path_and_prunes_forks() {
        let g = Block::genesis(0);
        let mut t = BlockTree::new(vec![g.clone()], 10);
        let a1 = child(&g, 1, 1);
        let b1 = child(&g, 1, 2);
        let a2 = child(&a1, 2, 3);
        let a3 = child(&a2, 3, 4);
        assert_eq!(t.insert(a3.clone()), Insert::MissingParent(a2.id()));
        for b in [&a1, &b1, &a2, &a3] {
            assert_eq!(t.insert(b.clone()), Insert::Added);
        }
        assert!(t.commit(&a2.id(), 3).is_empty(), "a2 is not of round 3");
        let committed = t.commit(&a2.id(), 2);
        assert_eq!(
            committed.iter().map(|b| b.round).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(!t.contains(&b1.id()), "fork pruned");
        assert_eq!(t.root(), (2, a2.id()));
        assert!(t.commit(&a2.id(), 2).is_empty(), "no double commit");
        assert_eq!(t.insert(b1), Insert::Stale);
        assert_eq!(t.uncommitted_path(&a3.id()).count(), 1);
    }

    #[test]
    fn a_chain_the_certificates_do_not_describe_is_refused() {
        let g = Block::genesis(0);
        let mut t = BlockTree::new(vec![g.clone()], 10);
        let a1 = child(&g, 1, 1);
        t.insert(a1.clone());
        let mut lying = child(&a1, 3, 2);
        lying.qc.round = 2;
        assert_eq!(t.insert(lying), Insert::Inconsistent);
        let mut backwards = child(&a1, 1, 3);
        backwards.qc.round = 1;
        assert_eq!(t.insert(backwards), Insert::Inconsistent);
        let a2 = child(&a1, 2, 4);
        t.insert(a2.clone());
        assert_eq!(t.committed_by(&a2.id(), 2), CommitRule::Commits(1, a1.id()));
        assert_eq!(
            t.committed_by(&a2.id(), 3),
            CommitRule::Nothing,
            "wrong round"
        );
        let a4 = child(&a2, 4, 5);
        t.insert(a4.clone());
        assert_eq!(
            t.committed_by(&a4.id(), 4),
            CommitRule::Nothing,
            "round gap"
        );
        assert_eq!(t.committed_by(&Hash32([7; 32]), 5), CommitRule::Unknown);
    }

    #[test]
    fn retention_bounds_the_committed_tail() {
        let g = Block::genesis(0);
        let mut t = BlockTree::new(vec![g.clone()], 3);
        let mut last = g;
        for r in 1..=10 {
            let b = child(&last, r, r as u8);
            t.insert(b.clone());
            t.commit(&b.id(), r);
            last = b;
        }
        assert_eq!(t.committed.len(), 3);
        assert_eq!(t.len(), 3);
    }
}
