//! The asking side of block sync: which blocks this replica requested and from whom, the
//! blocks held until their parent arrives (orphans), the proposals parked for a missing
//! parent, the blocks known not to extend our chain, and forward catch-up. The answering
//! side is the node's, off the consensus thread ([`crate::sync`]).
//!
//! Two ways to fetch what is missing. A replica a few blocks behind asks for the missing
//! block and its ancestors, walking back from the tip and holding the blocks until the
//! walk reaches its tree. A replica far behind (wiped, new, or down for long) instead asks
//! for the committed chain forward from the newest block it has, one bounded answer at a
//! time: each answer's blocks join the tree at once (their parents are known) and the
//! certificates inside them commit them, so what it holds does not grow with the length
//! of the chain it missed.
//!
//! Invariants: a response is taken only from the peer asked, once, and only as an unbroken
//! hash chain going down in round from the block asked for (backward) or up in round from
//! the block named (forward); `orphan_parents` holds exactly the blocks in `orphans`, and
//! `orphan_count` counts them; at most one catch-up request is outstanding; every map
//! here is bounded.

use std::collections::{HashMap, HashSet, VecDeque};

use ordo_types::{Hash32, PublicKey};

use crate::block_tree::BlockTree;
use crate::control::INSECURE_SYNC;
use crate::error::ConsensusError;
use crate::messages::{Block, Message, Proposal, Round};

use super::events::Action;

const MAX_PENDING_PROPOSALS: usize = 64;
/// Blocks held while the chain below them is fetched. A validator that lost its data walks
/// back from the tip to its root one response at a time and holds everything until the
/// walk arrives, so this bounds how far behind it can rejoin (there is no state sync yet);
/// only requested, hash-chained blocks get here, at a few hundred bytes each.
const MAX_ORPHANS: usize = 65_536;
/// Blocks known not to extend our chain.
const MAX_FOREIGN: usize = 4_096;
/// Requests remembered before those older than a base timeout are dropped: past that age
/// the block may be asked for again anyway, and dropping only refuses a late answer.
const MAX_REQUESTED: usize = 1_024;

/// One outstanding block request: only `peer`'s answer is taken, once.
struct Requested {
    at: u64,
    peer: PublicKey,
    answered: bool,
}

/// The outstanding catch-up request: only `peer`'s answer for `after` is taken, once.
struct CatchUp {
    after: Hash32,
    at: u64,
    peer: PublicKey,
    answered: bool,
}

pub(super) struct BlockSync {
    /// Our own key: we never ask ourselves.
    me: PublicKey,
    /// How long a request waits before the same block may be asked for again.
    repeat_after_ms: u64,
    /// Most blocks asked for per request.
    batch: u16,
    /// Block requests by the block asked for (kept to throttle repeats).
    requested: HashMap<Hash32, Requested>,
    /// Held blocks, by the parent they wait for.
    orphans: HashMap<Hash32, Vec<Block>>,
    /// Each block in `orphans`, by id: its parent.
    orphan_parents: HashMap<Hash32, Hash32>,
    /// Blocks in `orphans`.
    orphan_count: usize,
    /// Proposals whose parent is missing, oldest first.
    parked: VecDeque<(PublicKey, Proposal)>,
    /// Blocks known not to descend from our committed root; never fetched again.
    foreign: HashSet<Hash32>,
    /// The latest catch-up request.
    catch_up: Option<CatchUp>,
}

impl BlockSync {
    pub(super) fn new(me: PublicKey, repeat_after_ms: u64, batch: u16) -> Self {
        Self {
            me,
            repeat_after_ms,
            batch,
            requested: HashMap::new(),
            orphans: HashMap::new(),
            orphan_parents: HashMap::new(),
            orphan_count: 0,
            parked: VecDeque::new(),
            foreign: HashSet::new(),
            catch_up: None,
        }
    }

    /// Asks `from` for the committed chain after `after`, unless `from` is ourselves or
    /// an earlier catch-up request is unanswered and recent. Returns whether a request
    /// went out.
    pub(super) fn request_catch_up(
        &mut self,
        after: Hash32,
        from: PublicKey,
        now: u64,
        out: &mut Vec<Action>,
    ) -> bool {
        if from == self.me {
            return false;
        }
        if let Some(c) = &self.catch_up {
            if !c.answered && now < c.at.saturating_add(self.repeat_after_ms) {
                return false;
            }
        }
        self.catch_up = Some(CatchUp {
            after,
            at: now,
            peer: from,
            answered: false,
        });
        out.push(Action::Send {
            to: from,
            message: Message::CatchUpRequest {
                after,
                max: self.batch,
            },
        });
        true
    }

    /// The first block of an answer that is not empty and not over the blocks asked for.
    fn bounded_answer<'b>(&self, blocks: &'b [Block]) -> Result<&'b Block, ConsensusError> {
        match blocks.first() {
            Some(first) if blocks.len() <= usize::from(self.batch) => Ok(first),
            _ => Err(ConsensusError::UnrequestedBlocks),
        }
    }

    /// Takes a catch-up answer from `from` if it answers the outstanding request to that
    /// peer and is a hash chain going up from the block named; marks the request answered.
    pub(super) fn accept_catch_up(
        &mut self,
        after: &Hash32,
        blocks: &[Block],
        from: PublicKey,
    ) -> Result<(), ConsensusError> {
        let first = self.bounded_answer(blocks)?;
        match &mut self.catch_up {
            Some(c) if !c.answered && c.peer == from && c.after == *after => c.answered = true,
            _ => return Err(ConsensusError::UnrequestedBlocks),
        }
        // Going up, the hash chain authenticates nothing by itself (anyone can name a
        // parent): the certificate inside each block, verified by the caller, does, and
        // only the commit rule over them makes any of these blocks final.
        if first.parent() != *after {
            return Err(ConsensusError::BrokenChain);
        }
        for pair in blocks.windows(2) {
            if pair[1].parent() != pair[0].id() || pair[1].round <= pair[0].round {
                return Err(ConsensusError::BrokenChain);
            }
        }
        Ok(())
    }

    /// Blocks held as orphans now.
    pub(super) fn orphan_count(&self) -> usize {
        self.orphan_count
    }

    /// Asks `from` for block `id` and the chain below it down to `above_round`, unless it
    /// is ourselves, the block is foreign, or the block was asked for too recently.
    /// Returns whether a request went out.
    pub(super) fn request(
        &mut self,
        id: Hash32,
        from: PublicKey,
        now: u64,
        above_round: Round,
        out: &mut Vec<Action>,
    ) -> bool {
        if from == self.me || self.foreign.contains(&id) {
            return false;
        }
        if let Some(r) = self.requested.get(&id) {
            if now < r.at.saturating_add(self.repeat_after_ms) {
                return false;
            }
        }
        if self.requested.len() > MAX_REQUESTED {
            let horizon = now.saturating_sub(self.repeat_after_ms);
            self.requested.retain(|_, r| r.at >= horizon);
        }
        self.requested.insert(
            id,
            Requested {
                at: now,
                peer: from,
                answered: false,
            },
        );
        out.push(Action::Send {
            to: from,
            message: Message::BlockRequest {
                block_id: id,
                above_round,
                max: self.batch,
            },
        });
        true
    }

    /// Takes a non-empty block response from `from` if it answers an outstanding request
    /// to that peer and is a hash chain going down from the block asked for; marks the
    /// request answered.
    pub(super) fn accept_response(
        &mut self,
        blocks: &[Block],
        from: PublicKey,
    ) -> Result<(), ConsensusError> {
        let first_id = self.bounded_answer(blocks)?.id();
        match self.requested.get_mut(&first_id) {
            // Only the peer asked may answer, once: a response from anyone else could
            // race the honest one with a chain of its choosing.
            Some(r) if !r.answered && (r.peer == from || INSECURE_SYNC) => r.answered = true,
            _ => return Err(ConsensusError::UnrequestedBlocks),
        }
        // The requested id came from a verified certificate, so the hash chain from it
        // authenticates every ancestor returned, certificates included (the id binds
        // them).
        for pair in blocks.windows(2) {
            if pair[0].parent() != pair[1].id() || pair[1].round >= pair[0].round {
                return Err(ConsensusError::BrokenChain);
            }
        }
        Ok(())
    }

    pub(super) fn is_foreign(&self, id: &Hash32) -> bool {
        self.foreign.contains(id)
    }

    pub(super) fn mark_foreign(&mut self, id: Hash32) {
        if self.foreign.len() >= MAX_FOREIGN {
            self.foreign.clear();
        }
        self.foreign.insert(id);
    }

    /// Whether block `id` is held as an orphan.
    pub(super) fn holds(&self, id: &Hash32) -> bool {
        self.orphan_parents.contains_key(id)
    }

    /// Holds an authentic block `id` until its missing `parent` arrives (while there is
    /// room). Returns whether the parent should be asked for.
    pub(super) fn hold(&mut self, id: Hash32, parent: Hash32, block: Block) -> bool {
        if self.orphan_parents.contains_key(&id) {
            return false;
        }
        if self.orphan_count < MAX_ORPHANS {
            self.orphan_count += 1;
            self.orphan_parents.insert(id, parent);
            self.orphans.entry(parent).or_default().push(block);
        }
        // A held parent's own ancestors are being fetched already: asking for it again
        // would start a second walk down the same chain (and every block of a response
        // would start one).
        !self.orphan_parents.contains_key(&parent)
    }

    /// Releases the blocks held for `parent`, which has joined the tree.
    pub(super) fn take_children(&mut self, parent: &Hash32) -> Vec<Block> {
        let children = self.orphans.remove(parent).unwrap_or_default();
        self.orphan_count -= children.len();
        for child in &children {
            self.orphan_parents.remove(&child.id());
        }
        children
    }

    /// The parents that held chains of orphans wait on, and that nobody holds (a few: each
    /// costs a request).
    pub(super) fn missing_roots(&self, tree: &BlockTree) -> Vec<Hash32> {
        let mut roots: Vec<Hash32> = self
            .orphans
            .keys()
            .filter(|p| !self.orphan_parents.contains_key(*p) && !tree.contains(p))
            .copied()
            .collect();
        // A map's order differs from one process to the next: sorted, the same events
        // give the same requests.
        roots.sort_unstable();
        roots.truncate(4);
        roots
    }

    /// The committed root moved to `root`: held blocks at or below it can never join.
    pub(super) fn prune(&mut self, root: Round) {
        self.orphans.retain(|_, v| {
            v.retain(|b| b.round > root);
            !v.is_empty()
        });
        self.orphan_count = self.orphans.values().map(Vec::len).sum();
        if self.orphan_parents.len() != self.orphan_count {
            self.orphan_parents = self
                .orphans
                .iter()
                .flat_map(|(parent, v)| v.iter().map(move |b| (b.id(), *parent)))
                .collect();
        }
    }

    /// Parks a proposal until its parent arrives, dropping the oldest beyond the bound.
    pub(super) fn park(&mut self, from: PublicKey, p: Proposal) {
        self.parked.push_back((from, p));
        while self.parked.len() > MAX_PENDING_PROPOSALS {
            self.parked.pop_front();
        }
    }

    /// Takes the parked proposals whose parent is `parent`, oldest first.
    pub(super) fn take_parked_children(&mut self, parent: &Hash32) -> Vec<(PublicKey, Proposal)> {
        if self.parked.is_empty() {
            return Vec::new();
        }
        let (taken, kept): (Vec<_>, Vec<_>) = self
            .parked
            .drain(..)
            .partition(|(_, p)| p.block.parent() == *parent);
        self.parked = kept.into();
        taken
    }

    /// Takes every parked proposal, oldest first.
    pub(super) fn take_parked(&mut self) -> Vec<(PublicKey, Proposal)> {
        self.parked.drain(..).collect()
    }

    pub(super) fn parked_len(&self) -> usize {
        self.parked.len()
    }
}
