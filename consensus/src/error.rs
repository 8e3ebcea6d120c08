//! The one error type of the consensus crate, and the counter of rejected input.
//!
//! Every message a replica drops is counted under `ordo_consensus_invalid_messages_total`
//! with the error's short `reason`, so an operator can tell a flaky link from an attack.

use crate::messages::{Epoch, Round, ValidatorIndex};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    #[error("bad committee: {0}")]
    BadCommittee(String),
    #[error("message from a key outside the committee")]
    UnknownSender,
    #[error("message author #{author} is not its sender")]
    AuthorMismatch { author: ValidatorIndex },
    #[error("epoch {got}, expected {expected}")]
    WrongEpoch { got: Epoch, expected: Epoch },
    #[error("round {round} is stale (current {current})")]
    StaleRound { round: Round, current: Round },
    #[error("round {round} is too far ahead (current {current})")]
    RoundTooFarAhead { round: Round, current: Round },
    #[error("block round {round} is not justified by its QC or TC")]
    UnjustifiedRound { round: Round },
    #[error("block round {round} does not exceed its parent's round {parent}")]
    NonIncreasingRound { round: Round, parent: Round },
    #[error("#{author} is not the leader of round {round}")]
    WrongLeader {
        round: Round,
        author: ValidatorIndex,
    },
    #[error("bad signature")]
    BadSignature,
    #[error("certificate has {got} signers, quorum is {quorum}")]
    NoQuorum { got: usize, quorum: usize },
    #[error("certificate signers are unknown, repeated or unordered")]
    BadSigners,
    #[error("certificate is malformed: {0}")]
    MalformedCertificate(&'static str),
    #[error("block timestamp {got} is before its parent's {parent} or too far ahead")]
    BadTimestamp { got: u64, parent: u64 },
    #[error("payload of {got} digests exceeds the limit of {max}")]
    PayloadTooLarge { got: usize, max: usize },
    #[error("block response does not match an outstanding request")]
    UnrequestedBlocks,
    #[error("block response is not a chain of ancestors")]
    BrokenChain,
    #[error("vote conflicts with the vote already received from #{author} for round {round}")]
    Equivocation {
        round: Round,
        author: ValidatorIndex,
    },
    #[error("block's state roots are malformed: {0}")]
    BadStateRoots(&'static str),
    #[error("safety data could not be decoded: {0}")]
    BadSafetyData(String),
}

impl ConsensusError {
    /// A short, stable label for the `reason` of the invalid-message counter.
    pub fn reason(&self) -> &'static str {
        match self {
            ConsensusError::BadCommittee(_) => "bad_committee",
            ConsensusError::UnknownSender => "unknown_sender",
            ConsensusError::AuthorMismatch { .. } => "author_mismatch",
            ConsensusError::WrongEpoch { .. } => "wrong_epoch",
            ConsensusError::StaleRound { .. } => "stale_round",
            ConsensusError::RoundTooFarAhead { .. } => "round_too_far_ahead",
            ConsensusError::UnjustifiedRound { .. } => "unjustified_round",
            ConsensusError::NonIncreasingRound { .. } => "non_increasing_round",
            ConsensusError::WrongLeader { .. } => "wrong_leader",
            ConsensusError::BadSignature => "bad_signature",
            ConsensusError::NoQuorum { .. } => "no_quorum",
            ConsensusError::BadSigners => "bad_signers",
            ConsensusError::MalformedCertificate(_) => "malformed_certificate",
            ConsensusError::BadTimestamp { .. } => "bad_timestamp",
            ConsensusError::PayloadTooLarge { .. } => "payload_too_large",
            ConsensusError::UnrequestedBlocks => "unrequested_blocks",
            ConsensusError::BrokenChain => "broken_chain",
            ConsensusError::Equivocation { .. } => "equivocation",
            ConsensusError::BadSafetyData(_) => "bad_safety_data",
            ConsensusError::BadStateRoots(_) => "bad_state_roots",
        }
    }
}
