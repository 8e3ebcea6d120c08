//! Proposal admission: the checks a proposal passes before anything in it is learnt from,
//! and the first proposal seen in each recent round.
//!
//! Invariants: a proposal is admitted only if it is of our epoch, within the payload limit,
//! justified in its round (its QC is of the round before, or its TC is) and signed by its
//! author; of two different proposals for one round only the first is ever voted for, and
//! the second is reported as the leader's equivocation.

use std::collections::BTreeMap;

use ordo_types::{Hash32, PublicKey};
use tracing::warn;

use crate::committee::VerifyFn;
use crate::error::ConsensusError;
use crate::messages::{proposal_digest, Epoch, Proposal, Round, ValidatorIndex};
use crate::state_roots::MAX_ROOTS_PER_BLOCK;

const MAX_REMEMBERED_PROPOSALS: usize = 64;

/// Checks what a proposal from `from` says about itself: epoch, size, round rules and its
/// signature. Its certificates are checked apart, through the cache.
pub(super) fn check_proposal(
    p: &Proposal,
    from: &PublicKey,
    epoch: Epoch,
    max_payload: usize,
    verify: VerifyFn,
) -> Result<(), ConsensusError> {
    let b = &p.block;
    if b.epoch != epoch {
        return Err(ConsensusError::WrongEpoch {
            got: b.epoch,
            expected: epoch,
        });
    }
    if b.payload.len() > max_payload {
        return Err(ConsensusError::PayloadTooLarge {
            got: b.payload.len(),
            max: max_payload,
        });
    }
    if b.state.roots.len() > MAX_ROOTS_PER_BLOCK {
        return Err(ConsensusError::BadStateRoots("too many roots"));
    }
    if b.qc.round >= b.round {
        return Err(ConsensusError::NonIncreasingRound {
            round: b.round,
            parent: b.qc.round,
        });
    }
    let by_tc = matches!(&p.tc, Some(tc) if tc.round.saturating_add(1) == b.round);
    if b.qc.round.saturating_add(1) != b.round && !by_tc {
        return Err(ConsensusError::UnjustifiedRound { round: b.round });
    }
    let id = b.id();
    let digest = proposal_digest(b.epoch, b.round, &id);
    verify(&[(digest.as_bytes(), from, &p.signature)]).map_err(|_| ConsensusError::BadSignature)
}

/// The first valid proposal's block per recent round: a second one is the leader's
/// equivocation, which we count and report, and never vote for.
#[derive(Default)]
pub(super) struct FirstProposals {
    by_round: BTreeMap<Round, Hash32>,
}

impl FirstProposals {
    /// Remembers the first proposal of `round`; a different one from its leader is an
    /// equivocation: counted and logged. Returns whether `id` is the round's first.
    pub(super) fn note(&mut self, round: Round, leader: ValidatorIndex, id: Hash32) -> bool {
        match self.by_round.get(&round) {
            Some(first) if *first != id => {
                metrics::counter!("ordo_consensus_equivocations_total", "kind" => "proposal")
                    .increment(1);
                warn!(round, leader, first = %first.short(), second = %id.short(), "leader equivocated: two proposals for one round");
                false
            }
            Some(_) => true,
            None => {
                self.by_round.insert(round, id);
                while self.by_round.len() > MAX_REMEMBERED_PROPOSALS {
                    self.by_round.pop_first();
                }
                true
            }
        }
    }
}
