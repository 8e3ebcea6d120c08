//! Who leads a round.
//!
//! Round-robin is the reference. Leader reputation (after Aptos' proposer-and-voter
//! election) looks at the last `window` committed blocks whose round is at most
//! `round - lag`: a validator that authored one of them or signed one of their QCs is
//! active and gets `active_weight`, any other gets `inactive_weight`; the leader is a
//! weighted draw seeded by the epoch and round. A crashed validator neither proposes nor
//! votes, so it soon drops to the low weight and stops costing a timeout every n rounds;
//! once it votes again it is active again. Until the window holds n blocks the choice is
//! round-robin.
//!
//! A validator that led a round the committed chain skipped (the rounds between a committed
//! block and the QC it carries produced nothing that lasted) failed to propose, to gather
//! votes, or to propose one block to everyone: it gets `inactive_weight`
//! while its newest outcome as a leader, over the last four windows, is such a failure rather
//! than an authored block. Voting alone does not save it: a validator cut off from the
//! others' votes, or one whose proposals never arrive, still signs QCs when
//! it hears proposals. This is what makes a crashed or isolated leader stop costing a
//! timeout after its first failure rather than once its signatures leave the window.
//!
//! Invariant: the leader of round r depends only on committed blocks of rounds at most
//! r - lag. With the 2-chain rule a replica holding the QC of round r - 1 has committed
//! through r - 2, so a lag of 3 lets every replica that can vote in r name the leader of
//! r + 1, and replicas that agree on the committed chain agree on every leader.

use std::collections::{HashMap, VecDeque};

use ordo_types::Hash32;

use crate::messages::{Block, Epoch, Round, ValidatorIndex};

/// How leaders are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderPolicy {
    RoundRobin,
    Reputation {
        /// Committed blocks looked at.
        window: usize,
        /// Rounds between the newest block looked at and the round being decided; >= 3.
        lag: Round,
        active_weight: u64,
        inactive_weight: u64,
    },
}

impl LeaderPolicy {
    /// Reputation with a window of two blocks per validator (at least 8). Short on
    /// purpose: a crashed validator stays "active" until the window no longer holds a
    /// block it signed, and every round it leads until then costs a timeout, and so does
    /// the round before (whose votes go to it). Ten blocks per validator kept a crashed
    /// validator of four in the draw for about 40 s of timeouts on a local testnet.
    pub fn reputation(n: usize) -> Self {
        LeaderPolicy::Reputation {
            window: (2 * n).max(8),
            lag: 3,
            active_weight: 100,
            inactive_weight: 1,
        }
    }
}

/// How many windows back a failure as leader is remembered.
const FAILURE_MEMORY: usize = 4;
/// Skipped rounds blamed per committed block: the last ones of a long gap (a partition)
/// say as much as all of them.
const MAX_BLAMED_ROUNDS: u64 = 8;

struct Entry {
    round: Round,
    author: ValidatorIndex,
    voters: Vec<ValidatorIndex>,
    /// Leaders of the rounds skipped between this block's QC and this block.
    failed: Vec<ValidatorIndex>,
}

pub struct LeaderElection {
    policy: LeaderPolicy,
    epoch: Epoch,
    n: usize,
    history: VecDeque<Entry>,
    cache: HashMap<Round, ValidatorIndex>,
}

impl LeaderElection {
    pub fn new(policy: LeaderPolicy, epoch: Epoch, n: usize) -> Self {
        let policy = match policy {
            LeaderPolicy::Reputation {
                window,
                lag,
                active_weight,
                inactive_weight,
            } => LeaderPolicy::Reputation {
                window: window.max(1),
                lag: lag.max(3),
                active_weight,
                inactive_weight: inactive_weight.max(1),
            },
            p => p,
        };
        Self {
            policy,
            epoch,
            n: n.max(1),
            history: VecDeque::new(),
            cache: HashMap::new(),
        }
    }

    /// Feeds a committed block; blocks arrive in commit order.
    pub fn record_commit(&mut self, block: &Block) {
        let LeaderPolicy::Reputation { window, .. } = self.policy else {
            return;
        };
        if block.round == 0 {
            return;
        }
        // Blame the leaders of the skipped rounds (the last few of a long gap). When a
        // round's votes go to a next leader that is down, the honest leader before it is
        // blamed too, and sits out a while; blaming only the last round instead would never
        // blame a leader that equivocates, since the round after it is the one that times
        // out. Their leaders depend only on blocks at least `lag` rounds older, all
        // recorded already, so every replica names the same ones.
        let first_skipped = block
            .qc
            .round
            .saturating_add(1)
            .max(block.round.saturating_sub(MAX_BLAMED_ROUNDS));
        let mut failed: Vec<ValidatorIndex> = (first_skipped..block.round)
            .map(|r| self.leader(r))
            .collect();
        failed.sort_unstable();
        failed.dedup();
        self.history.push_back(Entry {
            round: block.round,
            author: block.author,
            voters: block.qc.signatures.iter().map(|s| s.0).collect(),
            failed,
        });
        while self.history.len() > FAILURE_MEMORY * window + 8 {
            self.history.pop_front();
        }
        self.cache.clear();
    }

    pub fn leader(&mut self, round: Round) -> ValidatorIndex {
        if let Some(l) = self.cache.get(&round) {
            return *l;
        }
        let leader = self.compute(round);
        if self.cache.len() > 64 {
            self.cache.clear();
        }
        self.cache.insert(round, leader);
        leader
    }

    fn compute(&self, round: Round) -> ValidatorIndex {
        let LeaderPolicy::Reputation {
            window,
            lag,
            active_weight,
            inactive_weight,
        } = self.policy
        else {
            return (round % self.n as u64) as ValidatorIndex;
        };
        let cutoff = round.saturating_sub(lag);
        // Newest first: the window decides who is active; failures are remembered over a
        // longer stretch, so that a leader that keeps failing (crashed, cut off, or
        // equivocating) is not retried every `window` commits.
        let remembered: Vec<&Entry> = self
            .history
            .iter()
            .rev()
            .filter(|e| e.round <= cutoff)
            .take(FAILURE_MEMORY * window)
            .collect();
        if remembered.len().min(window) < self.n {
            // Too little history to judge anyone (warm-up, or a fresh epoch): a handful of
            // blocks would make their few authors the only likely leaders.
            return (round % self.n as u64) as ValidatorIndex;
        }
        let mut active = vec![false; self.n];
        for e in remembered.iter().take(window) {
            for v in std::iter::once(&e.author).chain(e.voters.iter()) {
                if let Some(a) = active.get_mut(usize::from(*v)) {
                    *a = true;
                }
            }
        }
        // Each validator's newest outcome as a leader: true if it authored, false if it led
        // a skipped round.
        let mut last_outcome: Vec<Option<bool>> = vec![None; self.n];
        for e in &remembered {
            // Within one entry the skipped rounds come before the block itself.
            if let Some(o) = last_outcome.get_mut(usize::from(e.author)) {
                o.get_or_insert(true);
            }
            for v in &e.failed {
                if let Some(o) = last_outcome.get_mut(usize::from(*v)) {
                    o.get_or_insert(false);
                }
            }
        }
        for (a, outcome) in active.iter_mut().zip(&last_outcome) {
            if *outcome == Some(false) {
                *a = false;
            }
        }
        let weights: Vec<u64> = active
            .iter()
            .map(|a| if *a { active_weight } else { inactive_weight })
            .collect();
        let total: u64 = weights.iter().sum();
        let seed = Hash32::digest_parts(
            b"ordo/leader\0",
            &[&self.epoch.to_le_bytes(), &round.to_le_bytes()],
        );
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&seed.0[..8]);
        let mut pick = u64::from_le_bytes(bytes) % total.max(1);
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                return i as ValidatorIndex;
            }
            pick -= w;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::QuorumCert;
    use ordo_types::Signature;

    fn committed(round: Round, author: ValidatorIndex, voters: &[ValidatorIndex]) -> Block {
        let mut qc = QuorumCert::genesis(0);
        qc.signatures = voters.iter().map(|v| (*v, Signature([0; 64]))).collect();
        // Certifies the round before: no round skipped unless a test says so.
        qc.round = round.saturating_sub(1);
        Block {
            epoch: 0,
            round,
            author,
            timestamp_ms: 0,
            payload: vec![],
            qc,
        }
    }

    #[test]
    fn round_robin_rotates() {
        let mut e = LeaderElection::new(LeaderPolicy::RoundRobin, 0, 4);
        assert_eq!(
            (0..8).map(|r| e.leader(r)).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 0, 1, 2, 3]
        );
    }

    #[test]
    fn silent_validator_is_rarely_chosen_and_choice_is_deterministic() {
        let policy = LeaderPolicy::reputation(4);
        let mut a = LeaderElection::new(policy.clone(), 0, 4);
        let mut b = LeaderElection::new(policy, 0, 4);
        for r in 1..=40u64 {
            let author = (r % 3) as ValidatorIndex;
            let blk = committed(r, author, &[0, 1, 2]);
            a.record_commit(&blk);
            b.record_commit(&blk);
        }
        let picks: Vec<_> = (44..1044).map(|r| a.leader(r)).collect();
        let silent = picks.iter().filter(|l| **l == 3).count();
        assert!(silent < 20, "validator 3 led {silent} of 1000 rounds");
        assert_eq!(picks, (44..1044).map(|r| b.leader(r)).collect::<Vec<_>>());
        for v in 0..3 {
            assert!(picks.iter().filter(|l| **l == v).count() > 200);
        }
    }

    #[test]
    fn a_crashed_validator_drops_out_within_the_window() {
        let n = 4;
        let mut e = LeaderElection::new(LeaderPolicy::reputation(n), 0, n);
        for r in 1..=20u64 {
            e.record_commit(&committed(r, (r % 4) as ValidatorIndex, &[0, 1, 2, 3]));
        }
        // Validator 3 crashes: it neither authors nor signs from round 21 on.
        for r in 21..=(20 + 2 * n as u64) {
            e.record_commit(&committed(r, (r % 3) as ValidatorIndex, &[0, 1, 2]));
        }
        let from = 20 + 2 * n as u64 + 3;
        let led = (from..from + 1000).filter(|r| e.leader(*r) == 3).count();
        assert!(
            led < 20,
            "crashed validator 3 still led {led} of 1000 rounds"
        );
    }

    #[test]
    fn a_leader_that_failed_drops_out_at_once_though_it_still_votes() {
        let n = 4;
        let mut e = LeaderElection::new(LeaderPolicy::reputation(n), 0, n);
        // Everyone authors and votes for a while.
        let mut round = 0u64;
        for _ in 0..20 {
            round += 1;
            let leader = e.leader(round);
            e.record_commit(&committed(round, leader, &[0, 1, 2, 3]));
        }
        // Then validator 3's proposals stop lasting (its next leader never hears the votes,
        // say) while it goes on signing QCs: its round is skipped by the next commit.
        let mut failures = 0;
        while failures == 0 {
            round += 1;
            if e.leader(round) == 3 {
                failures += 1;
                round += 1;
            }
            let leader = e.leader(round);
            let mut b = committed(round, leader, &[0, 1, 2, 3]);
            b.qc.round = if failures == 1 { round - 2 } else { round - 1 };
            e.record_commit(&b);
            if failures == 1 {
                break;
            }
        }
        let led = (round + 3..round + 1003)
            .filter(|r| e.leader(*r) == 3)
            .count();
        assert!(
            led < 20,
            "validator 3 failed once yet still led {led} of 1000 rounds"
        );
    }

    #[test]
    fn the_lag_hides_recent_commits() {
        let mut e = LeaderElection::new(LeaderPolicy::reputation(4), 0, 4);
        let before: Vec<_> = (10..53).map(|r| e.leader(r)).collect();
        e.record_commit(&committed(50, 0, &[0]));
        let after: Vec<_> = (10..53).map(|r| e.leader(r)).collect();
        assert_eq!(
            before, after,
            "a commit at round 50 decides nothing before round 53"
        );
    }
}
