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

/// Rounds past the usual lag without a newer committed block after which leaders rotate.
/// One: two skipped rounds in a row (a dead leader and the round whose votes went to it)
/// already stop commits, and each further round under a history that favours a lost
/// validator costs a whole timeout (with 3, a 3|1 split on a local testnet lost 10 s).
const STALL_ROUNDS: Round = 1;
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
        // blamed too, and sits out a while: the price of catching a failed leader whose
        // round is followed by other skipped rounds (a partition, a stall over several
        // rounds), which blaming only the last round would miss. Their leaders depend only
        // on blocks at least `lag` rounds older, all recorded already, so every replica
        // names the same ones.
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
        if round > remembered[0].round.saturating_add(lag + STALL_ROUNDS) {
            // Nothing committed for a while: the history cannot change until something is,
            // and if it favours a validator that is now down (the one that led just before
            // it was cut off, say), reputation would keep choosing it. Round-robin gives
            // every validator its turn, so the live ones commit and the history moves on.
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
            state: Default::default(),
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

    /// Runs rounds `from..to` as a chain would: each round's leader proposes unless it is
    /// `dead`, whose rounds are skipped (the next block's QC certifies the last round that
    /// produced one). Returns each round's leader.
    fn run(
        e: &mut LeaderElection,
        from: Round,
        to: Round,
        dead: Option<ValidatorIndex>,
        voters: &[ValidatorIndex],
    ) -> Vec<ValidatorIndex> {
        let mut certified = from.saturating_sub(1);
        (from..to)
            .map(|r| {
                let leader = e.leader(r);
                if Some(leader) != dead {
                    let mut b = committed(r, leader, voters);
                    b.qc.round = certified;
                    e.record_commit(&b);
                    certified = r;
                }
                leader
            })
            .collect()
    }

    #[test]
    fn silent_validator_is_rarely_chosen_and_choice_is_deterministic() {
        let policy = LeaderPolicy::reputation(4);
        let mut a = LeaderElection::new(policy.clone(), 0, 4);
        let mut b = LeaderElection::new(policy, 0, 4);
        let picks = run(&mut a, 1, 1041, Some(3), &[0, 1, 2]);
        assert_eq!(picks, run(&mut b, 1, 1041, Some(3), &[0, 1, 2]));
        let after_warm_up = &picks[40..];
        let silent = after_warm_up.iter().filter(|l| **l == 3).count();
        assert!(silent < 20, "validator 3 led {silent} of 1000 rounds");
        for v in 0..3 {
            assert!(after_warm_up.iter().filter(|l| **l == v).count() > 200);
        }
    }

    #[test]
    fn a_crashed_validator_drops_out_within_the_window() {
        let n = 4;
        let mut e = LeaderElection::new(LeaderPolicy::reputation(n), 0, n);
        run(&mut e, 1, 21, None, &[0, 1, 2, 3]);
        // Validator 3 crashes: it neither proposes nor signs from round 21 on.
        let picks = run(&mut e, 21, 1021, Some(3), &[0, 1, 2]);
        let led = picks[2 * n + 3..].iter().filter(|l| **l == 3).count();
        assert!(
            led < 20,
            "crashed validator 3 still led {led} of ~1000 rounds"
        );
    }

    #[test]
    fn a_leader_that_failed_drops_out_at_once_though_it_still_votes() {
        let n = 4;
        let mut e = LeaderElection::new(LeaderPolicy::reputation(n), 0, n);
        run(&mut e, 1, 21, None, &[0, 1, 2, 3]);
        // Validator 3's proposals stop lasting (cut off from the next leader, say) while it
        // goes on signing QCs: each failure benches it for four windows, after which its
        // votes make it active again and it is retried. Without the failure rule it would
        // lead a quarter of the rounds.
        let picks = run(&mut e, 21, 1021, Some(3), &[0, 1, 2, 3]);
        let led = picks.iter().filter(|l| **l == 3).count();
        assert!(
            led < 60,
            "validator 3 kept failing yet led {led} of 1000 rounds"
        );
    }

    #[test]
    fn a_stall_falls_back_to_round_robin_so_a_favoured_dead_leader_is_passed_over() {
        let n = 4;
        let mut e = LeaderElection::new(LeaderPolicy::reputation(n), 0, n);
        // Only validator 0 authored and signed lately: reputation favours it heavily.
        for r in 1..=40 {
            e.record_commit(&committed(r, 0, &[0]));
        }
        let lag = 3;
        let favoured = (41..=40 + lag + STALL_ROUNDS)
            .filter(|r| e.leader(*r) == 0)
            .count();
        assert!(
            favoured as u64 >= lag + STALL_ROUNDS - 1,
            "reputation still decides right after the history: 0 led {favoured}"
        );
        // Then nothing commits (0 is cut off): beyond the stall, every validator leads in
        // turn.
        let after: Vec<_> = (1..=8)
            .map(|k| e.leader(40 + lag + STALL_ROUNDS + k))
            .collect();
        for v in 0..4 {
            assert!(
                after.contains(&v),
                "validator {v} never leads in a stall: {after:?}"
            );
        }
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
