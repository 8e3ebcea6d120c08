//! Byzantine block sync for the simulator: validators that answer block requests with
//! forged chains, push chains nobody asked for, and answer requests sent to others.
//!
//! The forger is omniscient: it sees every block any node proposed, so it can aim a
//! forged certificate at exactly the block a victim holds, the twin of a certified block
//! (twinned keys propose one block per copy). Each forgery keeps the requested block's
//! hash chain intact as far as the id lets it: under the ids of [`crate::control`]'s
//! control build, the forged chain hashes like the genuine one; under the real ids it
//! does not, and the replica must refuse it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ordo_types::Hash32;
use rand::rngs::StdRng;
use rand::Rng;

use crate::messages::{Block, Round, ValidatorIndex};
use crate::sync;

/// What a Byzantine validator does with block sync in [`super::Fault::ForgedSync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Forgery {
    /// Asked for blocks, it answers with certificates whose parent fields name another
    /// block of the parent's round (a twin's), so that they commit that block.
    Certificate,
    /// Asked for blocks, it answers with certificates whose signer lists are altered,
    /// which is what leader reputation reads.
    Signers,
    /// It pushes forged chains to validators that asked nobody for them.
    Unrequested,
    /// It answers, before anyone else can, the block requests honest validators sent to
    /// other validators.
    Misattributed,
}

impl Forgery {
    pub const ALL: [Forgery; 4] = [
        Forgery::Certificate,
        Forgery::Signers,
        Forgery::Unrequested,
        Forgery::Misattributed,
    ];
}

impl fmt::Display for Forgery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forgery::Certificate => "certificate",
            Forgery::Signers => "signers",
            Forgery::Unrequested => "unrequested",
            Forgery::Misattributed => "misattributed",
        })
    }
}

/// Everything the forgers know: every proposed block.
pub struct Forger {
    pub kind: Forgery,
    n: usize,
    seen: HashMap<Hash32, Block>,
    by_round: BTreeMap<Round, Vec<Hash32>>,
    /// Forged responses sent, for the report.
    pub sent: u64,
}

impl Forger {
    pub fn new(kind: Forgery, n: usize) -> Self {
        Forger {
            kind,
            n,
            seen: HashMap::new(),
            by_round: BTreeMap::new(),
            sent: 0,
        }
    }

    /// Learns a proposed block.
    pub fn observe(&mut self, block: &Block) {
        let id = block.id();
        if self.seen.insert(id, block.clone()).is_none() {
            self.by_round.entry(block.round).or_default().push(id);
        }
    }

    /// A block seen recently, to aim an unrequested push at.
    pub fn recent(&self, rng: &mut StdRng) -> Option<Hash32> {
        let (_, ids) = self.by_round.iter().next_back()?;
        Some(ids[rng.gen_range(0..ids.len())])
    }

    /// A forged answer to a request for `block_id` above `above_round`: the genuine
    /// chain as far as the forger knows it, then altered. Empty if it knows nothing.
    pub fn answer(
        &mut self,
        block_id: Hash32,
        above_round: Round,
        max: usize,
        rng: &mut StdRng,
    ) -> Vec<Block> {
        let seen = &self.seen;
        let mut blocks = sync::answer(
            |id| seen.get(id).map(|b| (b.clone(), 0)),
            block_id,
            above_round,
            max,
            usize::MAX,
        );
        for b in &mut blocks {
            match self.kind {
                Forgery::Signers => self.alter_signers(b),
                _ => self.alter_parent(b, rng),
            }
        }
        if !blocks.is_empty() {
            self.sent += 1;
        }
        blocks
    }

    /// Points the block's certificate at another block of the round below the certified
    /// one, making it a direct (committing) certificate of that block.
    fn alter_parent(&self, block: &mut Block, rng: &mut StdRng) {
        let qc = &mut block.qc;
        let Some(target_round) = qc.round.checked_sub(1).filter(|r| *r > 0) else {
            return;
        };
        let Some(candidates) = self.by_round.get(&target_round) else {
            return;
        };
        let others: Vec<Hash32> = candidates
            .iter()
            .filter(|id| **id != qc.parent_id)
            .copied()
            .collect();
        if others.is_empty() {
            return;
        }
        qc.parent_round = target_round;
        qc.parent_id = others[rng.gen_range(0..others.len())];
    }

    /// Moves every signer to the next validator (signature bytes unchanged).
    fn alter_signers(&self, block: &mut Block) {
        let n = self.n as ValidatorIndex;
        let sigs = &mut block.qc.signatures;
        if sigs.is_empty() || sigs.len() >= self.n {
            // A full certificate has no other signer list of its size: drop one signer.
            sigs.pop();
            return;
        }
        for s in sigs.iter_mut() {
            s.0 = (s.0 + 1) % n;
        }
        sigs.sort_by_key(|s| s.0);
    }
}
