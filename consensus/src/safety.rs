//! Safety rules: what a replica must remember so that it never contradicts itself.
//!
//! The rules (DiemBFT v4 / Jolteon, 2-chain):
//! - vote for a block of round r only if r > last_voted_round, and either the block
//!   extends the QC of round r - 1, or it carries a TC of round r - 1 and its QC is at
//!   least as high as every high QC in that TC;
//! - voting raises the lock (`locked_round`) to the voted block's QC round;
//! - time out in round r only with a high QC at or above the lock, r >= last_voted_round,
//!   and r justified by that QC or a TC of round r - 1; timing out stops voting in r.
//!
//! Invariant: the replica emits [`crate::Action::Persist`] with these data before the
//! vote or timeout they authorise, so a restarted replica never signs twice in a round.

use bincode::{Decode, Encode};
use ordo_types::codec;

use crate::error::ConsensusError;
use crate::messages::{Block, Epoch, Proposal, QuorumCert, Round, TimeoutCert};

/// Room for the proposal of a round (a block of `max_payload` digests, about 32 KiB at the
/// default 1,024, and a timeout certificate) with a wide margin.
const MAX_SAFETY_BYTES: usize = 1 << 20;

/// The durable part of a replica. Storage keeps it as opaque bytes.
#[derive(Clone, PartialEq, Eq, Encode, Decode, Debug)]
pub struct SafetyData {
    pub epoch: Epoch,
    /// Highest round in which this replica voted or timed out.
    pub last_voted_round: Round,
    /// Highest QC round among the blocks this replica voted for.
    pub locked_round: Round,
    /// The highest QC seen; restores liveness (not safety) after a restart.
    pub high_qc: QuorumCert,
    /// This replica's proposal for `last_voted_round`, if it led that round, persisted
    /// with its own vote, so that a leader restarted in its own round sends the same
    /// block again instead of timing out. What keeps a restarted leader from proposing
    /// a second block is [`SafetyData::restart_floor`], not this field.
    pub proposal: Option<Proposal>,
}

impl SafetyData {
    pub fn new(epoch: Epoch) -> Self {
        Self {
            epoch,
            last_voted_round: 0,
            locked_round: 0,
            high_qc: QuorumCert::genesis(epoch),
            proposal: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConsensusError> {
        codec::decode::<Self, MAX_SAFETY_BYTES>(bytes)
            .map_err(|e| ConsensusError::BadSafetyData(e.to_string()))
    }

    /// May this replica vote for `block`, proposed with `tc`?
    pub fn safe_to_vote(&self, block: &Block, tc: Option<&TimeoutCert>) -> bool {
        let r = block.round;
        let qc_round = block.qc.round;
        if r <= self.last_voted_round || qc_round < self.locked_round {
            return false;
        }
        if qc_round.saturating_add(1) == r {
            return true;
        }
        matches!(tc, Some(tc) if tc.round.saturating_add(1) == r && qc_round >= tc.max_high_qc_round())
    }

    /// Records a vote for `block`; the caller persists before sending.
    pub fn record_vote(&mut self, block: &Block) {
        self.last_voted_round = block.round;
        self.locked_round = self.locked_round.max(block.qc.round);
        self.forget_older_proposal();
    }

    /// Records this replica's own proposal; the caller persists before sending it unless
    /// [`SafetyData::restart_floor`] already covers its round.
    pub fn record_proposal(&mut self, proposal: Proposal) {
        self.proposal = Some(proposal);
    }

    /// After a restart from these data, this replica proposes no new block in any round
    /// up to and including the one returned (it may send [`SafetyData::proposal`] again).
    ///
    /// A leader sends its proposal for round r before persisting it when
    /// `restart_floor() >= r` already holds in what is durable, and persists first
    /// otherwise: either way no restart can lead to a second block in r. In steady state
    /// the leader of r voted or timed out in r - 1 (durably), so its proposal leaves
    /// without waiting for a write; the price is that a validator restarted just before
    /// its own round lets that round time out.
    pub fn restart_floor(&self) -> Round {
        if self.last_voted_round == 0 {
            // Nothing signed yet: round 1 is not covered (a fresh replica must propose).
            0
        } else {
            self.last_voted_round.saturating_add(1)
        }
    }

    /// The proposal this replica made for `round`, if any.
    pub fn proposal_for(&self, round: Round) -> Option<&Proposal> {
        self.proposal.as_ref().filter(|p| p.block.round == round)
    }

    /// A proposal matters only in its own round; dropping it later keeps every other
    /// persist small.
    fn forget_older_proposal(&mut self) {
        if self
            .proposal
            .as_ref()
            .is_some_and(|p| p.block.round < self.last_voted_round)
        {
            self.proposal = None;
        }
    }

    /// May this replica time out in `round` holding `high_qc`, having entered through `tc`?
    pub fn safe_to_timeout(
        &self,
        round: Round,
        high_qc: &QuorumCert,
        tc: Option<&TimeoutCert>,
    ) -> bool {
        if high_qc.round < self.locked_round
            || round < self.last_voted_round
            || round <= high_qc.round
        {
            return false;
        }
        high_qc.round.saturating_add(1) == round
            || matches!(tc, Some(tc) if tc.round.saturating_add(1) == round)
    }

    pub fn record_timeout(&mut self, round: Round) {
        self.last_voted_round = self.last_voted_round.max(round);
        self.forget_older_proposal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::Hash32;

    fn block(round: Round, qc_round: Round) -> Block {
        let mut b = Block::genesis(0);
        b.round = round;
        b.qc.round = qc_round;
        b.qc.block_id = Hash32([qc_round as u8; 32]);
        b
    }

    fn tc(round: Round, hqc: Round) -> TimeoutCert {
        TimeoutCert {
            round,
            high_qc: QuorumCert::genesis(0),
            signatures: vec![(0, hqc, ordo_types::Signature([0; 64]))],
        }
    }

    #[test]
    fn votes_once_per_round_and_only_on_justified_blocks() {
        let mut s = SafetyData::new(0);
        assert!(s.safe_to_vote(&block(1, 0), None));
        s.record_vote(&block(1, 0));
        assert!(
            !s.safe_to_vote(&block(1, 0), None),
            "second vote in round 1"
        );
        assert!(!s.safe_to_vote(&block(3, 1), None), "gap without a TC");
        assert!(s.safe_to_vote(&block(3, 1), Some(&tc(2, 1))));
        assert!(
            !s.safe_to_vote(&block(3, 1), Some(&tc(2, 2))),
            "QC below the TC's highest"
        );
    }

    #[test]
    fn lock_forbids_older_qcs() {
        let mut s = SafetyData::new(0);
        s.record_vote(&block(5, 4));
        assert_eq!(s.locked_round, 4);
        assert!(!s.safe_to_vote(&block(7, 3), Some(&tc(6, 3))));
        let mut hqc = QuorumCert::genesis(0);
        hqc.round = 3;
        assert!(!s.safe_to_timeout(6, &hqc, Some(&tc(5, 3))));
    }

    #[test]
    fn timeout_stops_voting_in_that_round() {
        let mut s = SafetyData::new(0);
        let mut hqc = QuorumCert::genesis(0);
        hqc.round = 1;
        assert!(s.safe_to_timeout(2, &hqc, None));
        s.record_timeout(2);
        assert!(!s.safe_to_vote(&block(2, 1), None));
        assert!(
            s.safe_to_timeout(2, &hqc, None),
            "re-sending the same timeout"
        );
    }

    #[test]
    fn bytes_round_trip_and_garbage_is_an_error() {
        let mut s = SafetyData::new(3);
        s.record_vote(&block(9, 8));
        assert_eq!(SafetyData::from_bytes(&s.to_bytes()).unwrap(), s);
        assert!(SafetyData::from_bytes(&[1, 2, 3]).is_err());
    }
}
