//! Vote and timeout aggregation: 2f + 1 matching votes form a QC, 2f + 1 timeouts of one
//! round form a TC.
//!
//! Owns the per-round boxes of votes and timeouts received (our own included) for the
//! rounds still live: the one before the current round and later, for votes (the next
//! leader collects the votes of the round it just left); the current round and later,
//! for timeouts.
//!
//! Invariants: each box keeps the first vote or timeout of each author, and a second,
//! different vote from an author is an equivocation, reported and never counted; a box
//! forms at most one certificate; a QC is formed only from signatures that verified, in one
//! batch, and a bad signature is dropped so that the box can complete with other votes.

use std::collections::BTreeMap;

use ordo_types::{Hash32, PublicKey, Signature};

use crate::committee::{Committee, VerifyFn};
use crate::error::ConsensusError;
use crate::messages::{vote_digest, QuorumCert, Round, Timeout, TimeoutCert, ValidatorIndex, Vote};

/// Votes further ahead of our round than this are of no use: we would have to catch up
/// before the QC could matter.
const MAX_VOTE_ROUNDS_AHEAD: Round = 16;

#[derive(Default)]
struct VoteBox {
    /// First vote per author: (vote digest, vote).
    by_author: BTreeMap<ValidatorIndex, (Hash32, Vote)>,
    done: bool,
}

#[derive(Default)]
struct TimeoutBox {
    by_author: BTreeMap<ValidatorIndex, (Round, Signature, QuorumCert)>,
    done: bool,
}

/// What adding a timeout did.
pub(super) enum TimeoutTally {
    /// Out of the live rounds, already counted, or its round's TC exists.
    Ignored,
    /// Counted: this many distinct authors timed out in its round, short of a quorum.
    Counted(usize),
    /// It completed the round's TC.
    Formed(TimeoutCert),
}

/// Votes and timeouts by round, until they form certificates.
#[derive(Default)]
pub(super) struct Aggregator {
    votes: BTreeMap<Round, VoteBox>,
    timeouts: BTreeMap<Round, TimeoutBox>,
}

impl Aggregator {
    /// Drops the boxes of rounds that can no longer matter once `round` is current.
    pub(super) fn enter_round(&mut self, round: Round) {
        let keep_from = round.saturating_sub(1);
        self.votes = self.votes.split_off(&keep_from);
        self.timeouts = self.timeouts.split_off(&round);
    }

    /// Counts a vote whose author is checked; returns the QC it completes, if any.
    /// `current` is our round and `root` our committed root's round.
    pub(super) fn add_vote(
        &mut self,
        v: Vote,
        current: Round,
        root: Round,
        committee: &Committee,
        verify: VerifyFn,
    ) -> Result<Option<QuorumCert>, ConsensusError> {
        if v.round.saturating_add(1) < current || v.round <= root {
            return Err(ConsensusError::StaleRound {
                round: v.round,
                current,
            });
        }
        if v.round > current.saturating_add(MAX_VOTE_ROUNDS_AHEAD) {
            return Err(ConsensusError::RoundTooFarAhead {
                round: v.round,
                current,
            });
        }
        // Any valid quorum makes a valid QC, so votes are aggregated without asking
        // whether we lead the next round: a vote can overtake the proposal that would
        // bring our committed history (and so our leader view) up to date.
        let epoch = committee.epoch();
        let digest = vote_digest(epoch, v.round, &v.block_id, v.parent_round, &v.parent_id);
        let quorum = committee.quorum();
        let round = v.round;
        let author = v.author;
        let vbox = self.votes.entry(round).or_default();
        if let Some((d, _)) = vbox.by_author.get(&author) {
            return if *d == digest {
                Ok(None)
            } else {
                metrics::counter!("ordo_consensus_equivocations_total", "kind" => "vote")
                    .increment(1);
                Err(ConsensusError::Equivocation { round, author })
            };
        }
        vbox.by_author.insert(author, (digest, v));
        if vbox.done {
            return Ok(None);
        }
        let matching: Vec<ValidatorIndex> = vbox
            .by_author
            .iter()
            .filter(|(_, (d, _))| *d == digest)
            .map(|(a, _)| *a)
            .collect();
        if matching.len() < quorum {
            return Ok(None);
        }
        // Verify the quorum in one batch; drop any bad member and wait for more.
        let keys: Vec<PublicKey> = matching
            .iter()
            .map(|a| committee.validators()[usize::from(*a)])
            .collect();
        let sigs: Vec<Signature> = matching
            .iter()
            .map(|a| vbox.by_author[a].1.signature)
            .collect();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = keys
            .iter()
            .zip(&sigs)
            .map(|(k, s)| (digest.as_bytes().as_slice(), k, s))
            .collect();
        if let Err(bad) = verify(&items) {
            for i in &bad {
                if let Some(a) = matching.get(*i) {
                    vbox.by_author.remove(a);
                }
            }
            return Err(ConsensusError::BadSignature);
        }
        vbox.done = true;
        let first = &vbox.by_author[&matching[0]].1;
        Ok(Some(QuorumCert {
            round,
            block_id: first.block_id,
            parent_round: first.parent_round,
            parent_id: first.parent_id,
            signatures: matching.iter().zip(sigs).map(|(a, s)| (*a, s)).collect(),
        }))
    }

    /// Counts a verified timeout (its certificates already learnt from). `current` is our
    /// round.
    pub(super) fn add_timeout(
        &mut self,
        t: Timeout,
        current: Round,
        committee: &Committee,
    ) -> TimeoutTally {
        // Far-ahead timeouts still taught us their certificates; storing them would only
        // let a faulty validator fill memory.
        if t.round < current || t.round > current.saturating_add(MAX_VOTE_ROUNDS_AHEAD) {
            return TimeoutTally::Ignored;
        }
        let round = t.round;
        let tbox = self.timeouts.entry(round).or_default();
        if tbox.done || tbox.by_author.contains_key(&t.author) {
            return TimeoutTally::Ignored;
        }
        tbox.by_author
            .insert(t.author, (t.high_qc.round, t.signature, t.high_qc));
        let count = tbox.by_author.len();
        if count < committee.quorum() {
            return TimeoutTally::Counted(count);
        }
        tbox.done = true;
        let high_qc = tbox
            .by_author
            .values()
            .max_by_key(|e| e.0)
            .map(|e| e.2.clone())
            .unwrap_or_else(|| QuorumCert::genesis(committee.epoch()));
        TimeoutTally::Formed(TimeoutCert {
            round,
            high_qc,
            signatures: tbox
                .by_author
                .iter()
                .map(|(a, (r, s, _))| (*a, *r, *s))
                .collect(),
        })
    }
}
