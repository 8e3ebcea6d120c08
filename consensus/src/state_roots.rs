//! Certified state roots: every block carries the state roots of the heights executed
//! since the roots its parent's chain carried, each with the id of the block executed at
//! that height, so the quorum certificate of a block vouches for them: a replica votes for
//! a block only once it has executed every height the block names, the same block there,
//! and computed the same root.
//!
//! Heights are the node's: height h is the h-th committed block after genesis, and its
//! root is the state after executing it. Consensus never executes; the node reports each
//! root it computes ([`crate::Event::Executed`]) and the highest height at which 2f peers
//! announced the same root as ours ([`crate::Event::PeersExecuted`]); a replica that
//! executed past a height but holds no root for it (a restart, a root evicted) asks the
//! node for its roots from there ([`crate::Action::LoadRoots`]).
//!
//! Invariants:
//! - Along any chain the carried heights are contiguous from 1: a block's `first` is its
//!   parent's [`StateRoots::next`] (checked before a proposal is voted for), so every
//!   executed height is carried by exactly one block of the committed chain.
//! - A leader carries only heights it executed and that 2f peers announced alike, so its
//!   voters can check them at once; a voter that has not executed one waits for it (the
//!   round's timeout bounds the wait), and one whose root differs never votes.
//! - Every ancestor of a certified block was voted for by f + 1 honest validators, each of
//!   whom checked its roots; so a root carried by a certified block or by any of its
//!   ancestors is the root an honest validator computed ([`verify_root_proof`]).
//! - A replica keeps at most [`MAX_OWN_ROOTS`] of its own roots, none below the committed
//!   block's `next`, which no proposal extending it can carry again; beyond the bound the
//!   highest go (the lowest are carried first), and any root executed but not held is
//!   loaded again from the node's store when it is needed (the node keeps every root from
//!   the committed chain's carried height up).

use std::collections::BTreeMap;

use ordo_types::Hash32;

use crate::committee::{Committee, VerifyFn};
use crate::error::ConsensusError;
use crate::messages::{Block, ExecutedRoot, QuorumCert, Round, StateRoots};
use crate::replica::certificates::Certificates;

/// Roots one block may carry: at about 40 rounds a second and fewer executed heights, a
/// block carries one or two; 64 lets a chain whose claims fell behind (a restart of every
/// validator) catch up within a few blocks, at 2 KiB a block at most.
pub const MAX_ROOTS_PER_BLOCK: usize = 64;

/// Own roots a replica keeps for checking and carrying: far more than the heights between
/// the committed block and the executed tip (a few), bounded for a chain whose claims
/// stall.
pub const MAX_OWN_ROOTS: usize = 65_536;

/// What a replica finds when it checks a block's roots against its own.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RootCheck {
    /// Every root carried is ours.
    Agrees,
    /// We have not executed `height` (or hold no root for it): wait.
    Missing { height: u64 },
    /// We executed another block at `height`, or computed another root.
    Differs {
        height: u64,
        ours: ExecutedRoot,
        carried: ExecutedRoot,
    },
}

/// The replica's own roots, and how far its peers executed alike.
#[derive(Default)]
pub(crate) struct OwnRoots {
    roots: BTreeMap<u64, ExecutedRoot>,
    /// The highest height we executed: held or not, its root is in the node's store.
    executed_through: u64,
    peers_through: u64,
}

impl OwnRoots {
    pub(crate) fn executed(&mut self, height: u64, root: ExecutedRoot) {
        self.roots.insert(height, root);
        self.executed_through = self.executed_through.max(height);
        while self.roots.len() > MAX_OWN_ROOTS {
            self.roots.pop_last();
        }
    }

    /// We executed every height up to `height` (a restart): their roots are loaded from
    /// the node's store when needed.
    pub(crate) fn executed_through(&mut self, height: u64) {
        self.executed_through = self.executed_through.max(height);
    }

    /// 2f peers announced our root at `height`: with us, a quorum executed every height up
    /// to it (execution is in order).
    pub(crate) fn peers_executed(&mut self, height: u64) {
        self.peers_through = self.peers_through.max(height);
    }

    /// Forgets the roots below `height`: no block extending the committed one carries them.
    pub(crate) fn prune_below(&mut self, height: u64) {
        self.roots = self.roots.split_off(&height);
    }

    /// Whether we hold no root for `height` though we executed past it: the node's store
    /// has it (see [`crate::Action::LoadRoots`]).
    pub(crate) fn lacks(&self, height: u64) -> bool {
        height <= self.executed_through && !self.roots.contains_key(&height)
    }

    /// The roots a block whose parent's chain carried up to `next - 1` carries: ours from
    /// `next` on, contiguous, while a quorum executed them, at most [`MAX_ROOTS_PER_BLOCK`].
    pub(crate) fn carry(&self, next: u64) -> StateRoots {
        if next > self.peers_through {
            return StateRoots {
                first: next,
                roots: Vec::new(),
            };
        }
        let roots = self
            .roots
            .range(next..=self.peers_through)
            .zip(next..)
            .take_while(|((h, _), want)| **h == *want)
            .map(|((_, r), _)| *r)
            .take(MAX_ROOTS_PER_BLOCK)
            .collect();
        StateRoots { first: next, roots }
    }

    pub(crate) fn check(&self, carried: &StateRoots) -> RootCheck {
        for (height, root) in carried.iter() {
            match self.roots.get(&height) {
                None => return RootCheck::Missing { height },
                Some(ours) if *ours != root => {
                    return RootCheck::Differs {
                        height,
                        ours: *ours,
                        carried: root,
                    }
                }
                Some(_) => {}
            }
        }
        RootCheck::Agrees
    }
}

/// Checks the rules a block's roots follow that need no execution: a bounded count and
/// continuity with its parent's.
pub(crate) fn check_carried(block: &Block, parent: &Block) -> Result<(), ConsensusError> {
    if block.state.roots.len() > MAX_ROOTS_PER_BLOCK {
        return Err(ConsensusError::BadStateRoots("too many roots"));
    }
    if block.state.first != parent.state.next() {
        return Err(ConsensusError::BadStateRoots(
            "first height is not the one after its parent's",
        ));
    }
    Ok(())
}

/// Checks that `chain` certifies `root` as the state after executing block `anchor` at
/// height `height`. `chain` is newest first: a block whose QC (verified here against the
/// committee) certifies the next block of the list, and so on by parent hashes down to a
/// block whose parent is `anchor`; one block of the list below the first carries the
/// height's block and root. Returns the round of the certificate.
pub fn verify_root_proof(
    committee: &Committee,
    verify: VerifyFn,
    chain: &[Block],
    anchor: Hash32,
    height: u64,
    root: Hash32,
) -> Result<Round, ConsensusError> {
    let (certifier, certified) = match chain {
        [certifier, certified @ ..] if !certified.is_empty() => (certifier, certified),
        _ => {
            return Err(ConsensusError::BadStateRoots(
                "proof holds no certified block",
            ))
        }
    };
    let mut expected = certifier.parent();
    for block in certified {
        if block.id() != expected {
            return Err(ConsensusError::BrokenChain);
        }
        expected = block.parent();
    }
    if expected != anchor {
        return Err(ConsensusError::BrokenChain);
    }
    match certified.iter().find_map(|b| b.state.get(height)) {
        Some(carried) if carried.root == root && carried.block == anchor => {}
        Some(carried) if carried.block != anchor => {
            return Err(ConsensusError::BadStateRoots(
                "another block is certified at the height",
            ))
        }
        Some(_) => return Err(ConsensusError::BadStateRoots("another root is certified")),
        None => return Err(ConsensusError::BadStateRoots("no block carries the height")),
    }
    verify_qc(committee, verify, &certifier.qc)?;
    Ok(certifier.qc.round)
}

/// Checks one QC against the committee, with no cache.
fn verify_qc(
    committee: &Committee,
    verify: VerifyFn,
    qc: &QuorumCert,
) -> Result<(), ConsensusError> {
    if qc.round == 0 {
        return Err(ConsensusError::MalformedCertificate(
            "the genesis QC certifies no roots",
        ));
    }
    Certificates::new(QuorumCert::genesis(committee.epoch())).verify_qc(committee, verify, qc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> ExecutedRoot {
        ExecutedRoot {
            block: Hash32([i; 32]),
            root: Hash32([i.wrapping_add(100); 32]),
        }
    }

    #[test]
    fn a_leader_carries_contiguous_roots_its_peers_executed() {
        let mut own = OwnRoots::default();
        for i in 1..=10u8 {
            own.executed(u64::from(i), h(i));
        }
        assert!(own.carry(1).roots.is_empty(), "no peer executed anything");
        own.peers_executed(2);
        assert!(
            own.carry(5).roots.is_empty(),
            "peers executed less than is carried"
        );
        own.peers_executed(6);
        let carried = own.carry(3);
        assert_eq!(carried.first, 3);
        assert_eq!(carried.roots, vec![h(3), h(4), h(5), h(6)]);
        assert_eq!(carried.next(), 7);
        own.prune_below(5);
        own.executed(12, h(12));
        own.peers_executed(12);
        assert_eq!(
            own.carry(7).roots,
            vec![h(7), h(8), h(9), h(10)],
            "stops at a gap"
        );
        assert!(
            own.carry(4).roots.is_empty(),
            "pruned heights are not carried"
        );
        let mut many = OwnRoots::default();
        for i in 1..=200 {
            many.executed(i, h(1));
        }
        many.peers_executed(200);
        assert_eq!(many.carry(1).roots.len(), MAX_ROOTS_PER_BLOCK);
        // Beyond the bound the highest go; they stay known as executed.
        let mut full = OwnRoots::default();
        for i in 1..=MAX_OWN_ROOTS as u64 + 2 {
            full.executed(i, h(1));
        }
        assert!(!full.lacks(1));
        assert!(full.lacks(MAX_OWN_ROOTS as u64 + 2));
    }

    #[test]
    fn a_voter_waits_for_missing_roots_and_refuses_other_ones() {
        let mut own = OwnRoots::default();
        own.executed(4, h(4));
        own.executed(5, h(5));
        let carried = StateRoots {
            first: 4,
            roots: vec![h(4), h(5), h(6)],
        };
        assert_eq!(own.check(&carried), RootCheck::Missing { height: 6 });
        own.executed(6, h(6));
        assert_eq!(own.check(&carried), RootCheck::Agrees);
        let other_root = ExecutedRoot {
            block: h(5).block,
            root: Hash32([50; 32]),
        };
        own.executed(5, other_root);
        assert_eq!(
            own.check(&carried),
            RootCheck::Differs {
                height: 5,
                ours: other_root,
                carried: h(5)
            }
        );
        let other_block = ExecutedRoot {
            block: Hash32([50; 32]),
            root: h(5).root,
        };
        own.executed(5, other_block);
        assert!(matches!(
            own.check(&carried),
            RootCheck::Differs { height: 5, .. }
        ));
        assert!(!own.lacks(5));
        assert!(own.lacks(3), "executed past it, root not held");
        assert!(!own.lacks(7), "not executed yet");
        own.executed_through(9);
        assert!(own.lacks(7), "executed before a restart");
        assert_eq!(own.check(&StateRoots::default()), RootCheck::Agrees);
    }

    #[test]
    fn carried_heights_continue_the_parent_and_are_bounded() {
        let mut parent = Block::genesis(1);
        parent.state = StateRoots {
            first: 3,
            roots: vec![h(3)],
        };
        let mut child = Block::genesis(1);
        child.state = StateRoots {
            first: 4,
            roots: vec![h(4)],
        };
        assert!(check_carried(&child, &parent).is_ok());
        child.state.first = 5;
        assert!(check_carried(&child, &parent).is_err(), "a skipped height");
        child.state.first = 3;
        assert!(check_carried(&child, &parent).is_err(), "a height twice");
        child.state = StateRoots {
            first: 4,
            roots: vec![h(4); MAX_ROOTS_PER_BLOCK + 1],
        };
        assert!(check_carried(&child, &parent).is_err());
    }
}
