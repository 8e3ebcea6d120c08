//! One validator's consensus state machine: events in, actions out.
//!
//! The protocol (2-chain HotStuff, Jolteon / DiemBFT v4):
//! - round r has one leader; it proposes a block extending its highest QC, with the TC of
//!   round r - 1 when r - 1 produced no QC;
//! - replicas vote for the first valid proposal of their current round (if the safety
//!   rules allow and its payload is available) and send the vote to the leader of r + 1;
//!   2f + 1 votes form a QC and move everyone who sees it to round r + 1;
//! - a QC for block B' whose parent B is of the round just before commits B and its
//!   ancestors;
//! - a replica whose round timer expires broadcasts a timeout (and repeats it until it
//!   leaves the round); f + 1 timeouts make it join, 2f + 1 form a TC that starts r + 1
//!   and that its former broadcasts once. The timer doubles with each round since the
//!   last QC. Timeouts carry the sender's latest commit proof, so replicas converge on
//!   the committed history that leader reputation reads;
//! - a leader with no payload and nothing uncommitted to push through waits up to
//!   `max_batch_delay_ms` before proposing an empty block.
//!
//! Invariants: no I/O, no clock, no randomness; the same events give the same actions.
//! A [`Action::Persist`] always precedes the vote or timeout it authorises in one action
//! list, and the driver must make it durable before executing the next action.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use ordo_types::{Hash32, PublicKey, Signature};
use tracing::{debug, trace, warn};

use crate::block_tree::{BlockTree, CommitRule, Insert};
use crate::committee::{Committee, Signer};
use crate::config::Config;
use crate::control::INSECURE_SYNC;
use crate::error::ConsensusError;
use crate::leader::LeaderElection;
use crate::messages::{
    proposal_digest, timeout_digest, vote_digest, Block, Message, Proposal, QuorumCert, Round,
    Timeout, TimeoutCert, ValidatorIndex, Vote,
};
use crate::safety::SafetyData;

/// What the driver feeds a replica.
// Events are moved once into `handle`; boxing the common case would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Event {
    /// A message from an authenticated peer.
    Message { from: PublicKey, message: Message },
    /// A timer set by [`Action::SetTimer`] fired (or any wake-up: ticks are idempotent).
    Tick,
    /// These payload digests are stored locally: they may be proposed, and blocks that
    /// carry them may be voted for.
    PayloadReady(Vec<Hash32>),
}

/// What a replica asks the driver to do, in order.
#[derive(Clone, Debug)]
pub enum Action {
    /// Store these safety data durably before executing the next action.
    Persist(SafetyData),
    Send {
        to: PublicKey,
        message: Message,
    },
    /// Send to every other validator.
    Broadcast(Message),
    /// These blocks are final, oldest first; `proof` is the QC that commits the last one.
    Commit {
        blocks: Vec<Block>,
        proof: QuorumCert,
    },
    /// This block joined the replica's tree: keep it where peers' block requests are
    /// answered from (see [`crate::sync`]). Memory will do: `Commit` is what makes
    /// committed blocks durable. The replica itself never answers block requests, so that
    /// serving laggards costs the consensus thread nothing.
    KeepBlock(Block),
    /// A valid proposal of the current round, the one this replica would vote for, names
    /// payload that is not reported available: fetch it, from the proposer first, and
    /// report it with [`Event::PayloadReady`]. Emitted once per block, and only after the
    /// proposal passed every check, so that nobody makes the node fetch by sending junk.
    FetchPayload {
        proposer: PublicKey,
        digests: Vec<Hash32>,
    },
    /// Deliver [`Event::Tick`] at or after this time; replaces any earlier timer.
    SetTimer {
        deadline_ms: u64,
    },
}

/// Counters a replica keeps about itself, for the simulator and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rounds_entered: u64,
    pub local_timeouts: u64,
    pub proposals: u64,
    pub empty_proposals: u64,
    pub votes: u64,
    pub qcs_formed: u64,
    pub tcs_formed: u64,
    pub committed_blocks: u64,
    pub invalid_messages: u64,
    pub block_requests: u64,
}

#[derive(Default)]
struct VoteBox {
    /// First vote per author: (vote digest, vote).
    by_author: BTreeMap<ValidatorIndex, (Hash32, Vote)>,
    done: bool,
}

/// One outstanding block request: only `peer`'s answer is taken, once.
struct Requested {
    at: u64,
    peer: PublicKey,
    answered: bool,
}

#[derive(Default)]
struct TimeoutBox {
    by_author: BTreeMap<ValidatorIndex, (Round, Signature, QuorumCert)>,
    done: bool,
}

const MAX_PENDING_PROPOSALS: usize = 64;
/// Votes further ahead of our round than this are of no use: we would have to catch up
/// before the QC could matter.
const MAX_VOTE_ROUNDS_AHEAD: Round = 16;
/// Blocks held while the chain below them is fetched. A validator that lost its data walks
/// back from the tip to its root one response at a time and holds everything until the
/// walk arrives, so this bounds how far behind it can rejoin (there is no state sync yet);
/// only requested, hash-chained blocks get here, at a few hundred bytes each.
const MAX_ORPHANS: usize = 65_536;
/// Blocks known not to extend our chain.
const MAX_FOREIGN: usize = 4_096;
const MAX_REMEMBERED_PROPOSALS: usize = 64;
/// Certificates recently verified. A block response of `sync_batch` (128) blocks adds as
/// many; twice that keeps the live rounds' certificates cached through one.
const MAX_VERIFIED_CACHE: usize = 256;
const MAX_COMMITTED_DIGESTS: usize = 65_536;

/// One validator's HotStuff replica. See the module note for the protocol.
pub struct Replica<S: Signer> {
    cfg: Config,
    committee: Committee,
    signer: S,
    me: Option<ValidatorIndex>,
    safety: SafetyData,
    tree: BlockTree,
    leaders: LeaderElection,
    genesis_qc: QuorumCert,

    now: u64,
    round: Round,
    round_started: u64,
    timeout_at: u64,
    propose_at: Option<u64>,
    last_timer: Option<u64>,
    high_qc: QuorumCert,
    /// The QC that committed the current root.
    commit_qc: QuorumCert,
    last_tc: Option<TimeoutCert>,
    proposed: Round,
    my_timeout: Option<Timeout>,
    waiting_vote: Option<(Hash32, Option<TimeoutCert>)>,
    /// The last block whose missing payload this replica asked the node to fetch.
    fetch_asked: Option<Hash32>,
    pending_commit: Option<QuorumCert>,

    votes: BTreeMap<Round, VoteBox>,
    timeouts: BTreeMap<Round, TimeoutBox>,
    /// The first valid proposal's block per recent round: a second one is the leader's
    /// equivocation, which we count and report, and never vote for.
    proposals: BTreeMap<Round, Hash32>,
    pending_proposals: VecDeque<(PublicKey, Proposal)>,
    orphans: HashMap<Hash32, Vec<Block>>,
    /// Each block in `orphans`, by id: its parent.
    orphan_parents: HashMap<Hash32, Hash32>,
    /// Blocks in `orphans`.
    orphan_count: usize,
    /// Block requests by the block asked for (kept to throttle repeats).
    requested: HashMap<Hash32, Requested>,
    /// Blocks known not to descend from our committed root; never fetched again.
    foreign: HashSet<Hash32>,

    pool: VecDeque<Hash32>,
    available: HashSet<Hash32>,
    committed_digests: HashSet<Hash32>,
    committed_digest_order: VecDeque<Hash32>,

    verified: HashSet<Hash32>,
    verified_order: VecDeque<Hash32>,
    stats: Stats,
}

impl<S: Signer> Replica<S> {
    /// A fresh replica at genesis.
    pub fn new(cfg: Config, committee: Committee, signer: S) -> Self {
        let epoch = committee.epoch();
        Self::restore(
            cfg,
            committee,
            signer,
            SafetyData::new(epoch),
            vec![Block::genesis(epoch)],
        )
    }

    /// A replica restarted from its persisted safety data and the most recent committed
    /// blocks from storage (oldest first, the last being the committed root; at least
    /// the leader-reputation window, so that it names the same leaders as its peers).
    pub fn restore(
        cfg: Config,
        committee: Committee,
        signer: S,
        safety: SafetyData,
        committed_tail: Vec<Block>,
    ) -> Self {
        let epoch = committee.epoch();
        let committed_tail = if committed_tail.is_empty() {
            vec![Block::genesis(epoch)]
        } else {
            committed_tail
        };
        let mut leaders = LeaderElection::new(cfg.leader_policy.clone(), epoch, committee.size());
        let mut committed_digests = HashSet::new();
        let mut committed_digest_order = VecDeque::new();
        for b in &committed_tail {
            leaders.record_commit(b);
            for d in &b.payload {
                if committed_digests.insert(*d) {
                    committed_digest_order.push_back(*d);
                }
            }
        }
        let tree = BlockTree::new(committed_tail, cfg.block_retention);
        let me = committee.index_of(&signer.public_key());
        let high_qc = safety.high_qc.clone();
        Self {
            me,
            genesis_qc: QuorumCert::genesis(epoch),
            tree,
            leaders,
            now: 0,
            round: 0,
            round_started: 0,
            timeout_at: u64::MAX,
            propose_at: None,
            last_timer: None,
            high_qc,
            commit_qc: QuorumCert::genesis(epoch),
            last_tc: None,
            proposed: 0,
            my_timeout: None,
            waiting_vote: None,
            fetch_asked: None,
            pending_commit: None,
            votes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            proposals: BTreeMap::new(),
            pending_proposals: VecDeque::new(),
            orphans: HashMap::new(),
            orphan_parents: HashMap::new(),
            orphan_count: 0,
            requested: HashMap::new(),
            foreign: HashSet::new(),
            pool: VecDeque::new(),
            available: HashSet::new(),
            committed_digests,
            committed_digest_order,
            verified: HashSet::new(),
            verified_order: VecDeque::new(),
            stats: Stats::default(),
            safety,
            cfg,
            committee,
            signer,
        }
    }

    /// Enters the first round; call once, before any event.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        self.now = self.now.max(now_ms);
        let mut out = Vec::new();
        let round = self.high_qc.round.saturating_add(1);
        self.enter_round(round, &mut out);
        self.schedule_timer(&mut out);
        out
    }

    /// Feeds one event at time `now_ms` (the driver's clock); returns what the node must
    /// do, in order.
    pub fn handle(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        self.now = self.now.max(now_ms);
        let mut out = Vec::new();
        match event {
            Event::Tick => self.on_tick(&mut out),
            Event::PayloadReady(digests) => self.on_payload(digests, &mut out),
            Event::Message { from, message } => {
                let kind = message.kind();
                if let Err(e) = self.on_message(from, message, &mut out) {
                    if matches!(e, ConsensusError::StaleRound { .. }) {
                        metrics::counter!("ordo_consensus_stale_messages_total", "kind" => kind)
                            .increment(1);
                    } else {
                        self.stats.invalid_messages += 1;
                        metrics::counter!(
                            "ordo_consensus_invalid_messages_total",
                            "reason" => e.reason()
                        )
                        .increment(1);
                        debug!(from = %short_key(&from), kind, error = %e, "dropped message");
                    }
                }
            }
        }
        self.schedule_timer(&mut out);
        out
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn high_qc(&self) -> &QuorumCert {
        &self.high_qc
    }

    pub fn committed_root(&self) -> (Round, Hash32) {
        self.tree.root()
    }

    pub fn safety_data(&self) -> &SafetyData {
        &self.safety
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One line of the replica's pacemaker and safety state, for failure reports.
    pub fn describe(&self) -> String {
        format!(
            "round {} (since {} ms, timeout at {}), high {}, last TC {}, voted {}, locked {}, \
             root R{}, tree {} blocks, timed out {}, proposed R{}, waiting vote {}, pending {}",
            self.round,
            self.round_started,
            self.timeout_at,
            self.high_qc,
            self.last_tc
                .as_ref()
                .map_or("none".to_string(), |t| t.to_string()),
            self.safety.last_voted_round,
            self.safety.locked_round,
            self.tree.root().0,
            self.tree.len(),
            self.my_timeout.is_some(),
            self.proposed,
            self.waiting_vote.is_some(),
            self.pending_proposals.len(),
        )
    }

    /// The leader this replica expects for `round`.
    pub fn leader_of(&mut self, round: Round) -> PublicKey {
        let l = self.leaders.leader(round);
        self.committee.validators()[usize::from(l)]
    }

    // ---- events ----

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        if matches!(self.propose_at, Some(at) if self.now >= at) {
            self.propose_at = None;
            self.try_propose(out);
        }
        if self.now >= self.timeout_at {
            self.local_timeout(out);
        }
    }

    fn on_payload(&mut self, digests: Vec<Hash32>, out: &mut Vec<Action>) {
        for d in digests {
            if self.committed_digests.contains(&d) || !self.available.insert(d) {
                continue;
            }
            self.pool.push_back(d);
        }
        while self.pool.len() > self.cfg.max_pool {
            if let Some(d) = self.pool.pop_front() {
                self.available.remove(&d);
            }
        }
        if let Some((id, tc)) = self.waiting_vote.take() {
            self.try_vote(&id, tc, out);
        }
        if self.propose_at.is_some() {
            self.try_propose(out);
        }
    }

    fn on_message(
        &mut self,
        from: PublicKey,
        message: Message,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        let sender = self
            .committee
            .index_of(&from)
            .ok_or(ConsensusError::UnknownSender)?;
        trace!(round = self.round, from = sender, %message, "received");
        match message {
            Message::Proposal(p) => self.on_proposal(from, sender, p, out),
            Message::Vote(v) => self.on_vote(sender, v, out),
            Message::Timeout(t) => self.on_timeout(from, sender, t, out),
            Message::TimeoutCert(tc) => {
                if tc.round < self.round {
                    return Err(ConsensusError::StaleRound {
                        round: tc.round,
                        current: self.round,
                    });
                }
                // A certificate far ahead is still learnt from once verified (see
                // `on_proposal`): it holds no per-round state.
                let far = self.check_round(tc.round);
                self.verify_tc(&tc)?;
                self.process_tc(&tc, from, out);
                far
            }
            // Answered by the node's block server from the blocks the replica asked it to
            // keep (see `crate::sync`), off the consensus thread.
            Message::BlockRequest { .. } => Ok(()),
            Message::BlockResponse { blocks } => self.on_blocks(from, blocks, out),
        }
    }

    fn on_proposal(
        &mut self,
        from: PublicKey,
        sender: ValidatorIndex,
        p: Proposal,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        let b = &p.block;
        if b.author != sender {
            return Err(ConsensusError::AuthorMismatch { author: b.author });
        }
        if let Err(e) = self.check_round(b.round) {
            // Too far ahead to hold, but its certificate, once verified, is worth learning
            // from: a validator that lost its data, or slept through thousands of rounds,
            // catches up by it (it enters the certified round and fetches the chain).
            if self.verify_qc(&b.qc).is_ok() {
                self.process_qc(&b.qc, from, out);
            }
            return Err(e);
        }
        if b.epoch != self.committee.epoch() {
            return Err(ConsensusError::WrongEpoch {
                got: b.epoch,
                expected: self.committee.epoch(),
            });
        }
        if b.payload.len() > self.cfg.max_payload {
            return Err(ConsensusError::PayloadTooLarge {
                got: b.payload.len(),
                max: self.cfg.max_payload,
            });
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
        (self.cfg.verify)(&[(digest.as_bytes(), &from, &p.signature)])
            .map_err(|_| ConsensusError::BadSignature)?;
        self.verify_qc(&b.qc)?;
        if let Some(tc) = &p.tc {
            self.verify_tc(tc)?;
        }

        // The certificates are valid whatever the block is: learn from them first, so
        // that commits they carry shape the leader check below.
        self.process_qc(&p.block.qc, from, out);
        if let Some(tc) = &p.tc {
            self.process_tc(tc, from, out);
        }
        self.accept_proposal(from, sender, p, out)
    }

    /// The part of proposal handling that needs the parent block.
    fn accept_proposal(
        &mut self,
        from: PublicKey,
        sender: ValidatorIndex,
        p: Proposal,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        let b = &p.block;
        if b.round <= self.tree.root().0 {
            return Err(ConsensusError::StaleRound {
                round: b.round,
                current: self.round,
            });
        }
        if b.qc.round <= self.tree.root().0 && !self.tree.contains(&b.parent()) {
            self.mark_foreign(b.id());
            return Err(ConsensusError::StaleRound {
                round: b.round,
                current: self.round,
            });
        }
        let Some(parent) = self.tree.get(&b.parent()) else {
            // The parent may still be on its way: park the proposal and ask for it, or,
            // when it is held already, for what the held chain still misses.
            if self.orphan_parents.contains_key(&b.parent()) {
                self.request_missing_roots(from, out);
            } else {
                self.request_block(b.parent(), from, out);
            }
            self.pending_proposals.push_back((from, p));
            while self.pending_proposals.len() > MAX_PENDING_PROPOSALS {
                self.pending_proposals.pop_front();
            }
            return Ok(());
        };
        if b.timestamp_ms < parent.timestamp_ms
            || b.timestamp_ms > self.now.saturating_add(self.cfg.max_clock_skew_ms)
        {
            return Err(ConsensusError::BadTimestamp {
                got: b.timestamp_ms,
                parent: parent.timestamp_ms,
            });
        }
        if self.leaders.leader(b.round) != sender {
            return Err(ConsensusError::WrongLeader {
                round: b.round,
                author: sender,
            });
        }
        let id = b.id();
        let round = b.round;
        let first = self.note_proposal(round, sender, id);
        match self.add_block(id, p.block, out) {
            Insert::Added => self.adopt_orphans(id, out),
            Insert::Inconsistent => {
                return Err(ConsensusError::MalformedCertificate(
                    "block's QC does not name its parent's round",
                ))
            }
            _ => {}
        }
        // Only the round's first proposal gets our vote. The safety rules already refuse a
        // second vote, but a vote still waiting for its payload would otherwise move to
        // the twin, splitting the honest votes so that neither block is certified.
        if round == self.round && first {
            self.try_vote(&id, p.tc, out);
        }
        // We may be the next leader, holding a QC for this block but not the block.
        self.try_propose(out);
        Ok(())
    }

    /// Remembers the first proposal of `round`; a different one from its leader is an
    /// equivocation: counted and logged. Returns whether `id` is the round's first.
    fn note_proposal(&mut self, round: Round, leader: ValidatorIndex, id: Hash32) -> bool {
        match self.proposals.get(&round) {
            Some(first) if *first != id => {
                metrics::counter!("ordo_consensus_equivocations_total", "kind" => "proposal")
                    .increment(1);
                warn!(round, leader, first = %first.short(), second = %id.short(), "leader equivocated: two proposals for one round");
                false
            }
            Some(_) => true,
            None => {
                self.proposals.insert(round, id);
                while self.proposals.len() > MAX_REMEMBERED_PROPOSALS {
                    self.proposals.pop_first();
                }
                true
            }
        }
    }

    fn on_vote(
        &mut self,
        sender: ValidatorIndex,
        v: Vote,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        if v.author != sender {
            return Err(ConsensusError::AuthorMismatch { author: v.author });
        }
        self.add_vote(v, out)
    }

    fn add_vote(&mut self, v: Vote, out: &mut Vec<Action>) -> Result<(), ConsensusError> {
        if v.round.saturating_add(1) < self.round || v.round <= self.tree.root().0 {
            return Err(ConsensusError::StaleRound {
                round: v.round,
                current: self.round,
            });
        }
        if v.round > self.round.saturating_add(MAX_VOTE_ROUNDS_AHEAD) {
            return Err(ConsensusError::RoundTooFarAhead {
                round: v.round,
                current: self.round,
            });
        }
        // Any valid quorum makes a valid QC, so votes are aggregated without asking
        // whether we lead the next round: a vote can overtake the proposal that would
        // bring our committed history (and so our leader view) up to date.
        let epoch = self.committee.epoch();
        let digest = vote_digest(epoch, v.round, &v.block_id, v.parent_round, &v.parent_id);
        let quorum = self.committee.quorum();
        let round = v.round;
        let author = v.author;
        let vbox = self.votes.entry(round).or_default();
        if let Some((d, _)) = vbox.by_author.get(&author) {
            return if *d == digest {
                Ok(())
            } else {
                metrics::counter!("ordo_consensus_equivocations_total", "kind" => "vote")
                    .increment(1);
                Err(ConsensusError::Equivocation { round, author })
            };
        }
        vbox.by_author.insert(author, (digest, v));
        if vbox.done {
            return Ok(());
        }
        let matching: Vec<ValidatorIndex> = vbox
            .by_author
            .iter()
            .filter(|(_, (d, _))| *d == digest)
            .map(|(a, _)| *a)
            .collect();
        if matching.len() < quorum {
            return Ok(());
        }
        // Verify the quorum in one batch; drop any bad member and wait for more.
        let keys: Vec<PublicKey> = matching
            .iter()
            .map(|a| self.committee.validators()[usize::from(*a)])
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
        if let Err(bad) = (self.cfg.verify)(&items) {
            for i in &bad {
                if let Some(a) = matching.get(*i) {
                    vbox.by_author.remove(a);
                }
            }
            return Err(ConsensusError::BadSignature);
        }
        vbox.done = true;
        let first = &vbox.by_author[&matching[0]].1;
        let qc = QuorumCert {
            round,
            block_id: first.block_id,
            parent_round: first.parent_round,
            parent_id: first.parent_id,
            signatures: matching.iter().zip(sigs).map(|(a, s)| (*a, s)).collect(),
        };
        self.remember_verified(qc.cache_key());
        self.stats.qcs_formed += 1;
        debug!(%qc, "formed QC");
        let proposer = self.leaders.leader(round);
        let from = self.committee.validators()[usize::from(proposer)];
        self.process_qc(&qc, from, out);
        Ok(())
    }

    fn on_timeout(
        &mut self,
        from: PublicKey,
        sender: ValidatorIndex,
        t: Timeout,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        if t.author != sender {
            return Err(ConsensusError::AuthorMismatch { author: t.author });
        }
        if t.round < self.round {
            return Err(ConsensusError::StaleRound {
                round: t.round,
                current: self.round,
            });
        }
        self.check_round(t.round)?;
        if t.high_qc.round >= t.round {
            return Err(ConsensusError::MalformedCertificate(
                "timeout's high QC is not below its round",
            ));
        }
        let digest = timeout_digest(self.committee.epoch(), t.round, t.high_qc.round);
        (self.cfg.verify)(&[(digest.as_bytes(), &from, &t.signature)])
            .map_err(|_| ConsensusError::BadSignature)?;
        self.verify_qc(&t.high_qc)?;
        self.verify_qc(&t.commit_qc)?;
        if let Some(tc) = &t.last_tc {
            self.verify_tc(tc)?;
        }
        if t.commit_qc
            .commits()
            .is_some_and(|(r, _)| r > self.tree.root().0)
        {
            self.process_qc(&t.commit_qc, from, out);
        }
        self.process_qc(&t.high_qc, from, out);
        if let Some(tc) = &t.last_tc {
            self.process_tc(tc, from, out);
        }
        self.add_timeout(t, out);
        Ok(())
    }

    fn add_timeout(&mut self, t: Timeout, out: &mut Vec<Action>) {
        // Far-ahead timeouts still taught us their certificates; storing them would only
        // let a faulty validator fill memory.
        if t.round < self.round || t.round > self.round.saturating_add(MAX_VOTE_ROUNDS_AHEAD) {
            return;
        }
        let round = t.round;
        let tbox = self.timeouts.entry(round).or_default();
        if tbox.done || tbox.by_author.contains_key(&t.author) {
            return;
        }
        tbox.by_author
            .insert(t.author, (t.high_qc.round, t.signature, t.high_qc));
        let count = tbox.by_author.len();
        if count >= self.committee.quorum() {
            tbox.done = true;
            let high_qc = tbox
                .by_author
                .values()
                .max_by_key(|e| e.0)
                .map(|e| e.2.clone())
                .unwrap_or_else(|| self.genesis_qc.clone());
            let tc = TimeoutCert {
                round,
                high_qc,
                signatures: tbox
                    .by_author
                    .iter()
                    .map(|(a, (r, s, _))| (*a, *r, *s))
                    .collect(),
            };
            self.stats.tcs_formed += 1;
            debug!(%tc, "formed TC");
            out.push(Action::Broadcast(Message::TimeoutCert(tc.clone())));
            let me = self.signer.public_key();
            self.process_tc(&tc, me, out);
        } else if count > self.committee.max_faulty()
            && round == self.round
            && self.my_timeout.is_none()
        {
            // f + 1 replicas gave up on this round, so at least one honest one did: join
            // them rather than wait out the full timer.
            self.local_timeout(out);
        }
    }

    fn on_blocks(
        &mut self,
        from: PublicKey,
        blocks: Vec<Block>,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        if blocks.len() > usize::from(self.cfg.sync_batch) {
            return Err(ConsensusError::UnrequestedBlocks);
        }
        let first_id = first.id();
        match self.requested.get_mut(&first_id) {
            // Only the peer asked may answer, once: a response from anyone else could
            // race the honest one with a chain of its choosing.
            Some(r) if !r.answered && (r.peer == from || INSECURE_SYNC) => r.answered = true,
            _ => return Err(ConsensusError::UnrequestedBlocks),
        }
        // The requested id came from a verified certificate, so the hash chain from it
        // authenticates every ancestor returned, certificates included (the id binds
        // them); their signatures are checked as well, in one batch, so that nothing
        // unverified is ever trusted as a certificate.
        for pair in blocks.windows(2) {
            if pair[0].parent() != pair[1].id() || pair[1].round >= pair[0].round {
                return Err(ConsensusError::BrokenChain);
            }
        }
        if !INSECURE_SYNC {
            self.verify_qcs(blocks.iter().map(|b| &b.qc))?;
        }
        for block in blocks.into_iter().rev() {
            self.offer_block(block, from, out);
        }
        self.after_new_blocks(out);
        Ok(())
    }

    /// Inserts a block into the tree and, when it is new there, asks the node to keep it
    /// for peers' block requests.
    fn add_block(&mut self, id: Hash32, block: Block, out: &mut Vec<Action>) -> Insert {
        let outcome = self.tree.insert_with_id(id, block);
        if outcome == Insert::Added {
            if let Some(b) = self.tree.get(&id) {
                out.push(Action::KeepBlock(b.clone()));
            }
        }
        outcome
    }

    /// Inserts a block known to be authentic (by hash chain), or keeps it as an orphan.
    fn offer_block(&mut self, block: Block, from: PublicKey, out: &mut Vec<Action>) {
        let id = block.id();
        let qc = block.qc.clone();
        match self.add_block(id, block.clone(), out) {
            Insert::Added => {
                self.note_certified(&qc, out);
                self.adopt_orphans(id, out);
            }
            Insert::Inconsistent => {
                debug!(%block, "synced block does not match its parent's round");
            }
            Insert::MissingParent(parent) if self.foreign.contains(&parent) => {
                self.mark_foreign(id);
            }
            Insert::MissingParent(parent) => {
                if self.orphan_parents.contains_key(&id) {
                    return;
                }
                if self.orphan_count < MAX_ORPHANS {
                    self.orphan_count += 1;
                    self.orphan_parents.insert(id, parent);
                    self.orphans.entry(parent).or_default().push(block);
                }
                // A held parent's own ancestors are being fetched already: asking for it
                // again would start a second walk down the same chain (and every block of
                // a response would start one).
                if !self.orphan_parents.contains_key(&parent) {
                    self.request_block(parent, from, out);
                }
            }
            Insert::Stale => {
                if block.round > self.tree.root().0 {
                    self.mark_foreign(id);
                }
            }
            Insert::Known => {}
        }
    }

    fn mark_foreign(&mut self, id: Hash32) {
        if self.foreign.len() >= MAX_FOREIGN {
            self.foreign.clear();
        }
        self.foreign.insert(id);
    }

    fn adopt_orphans(&mut self, parent: Hash32, out: &mut Vec<Action>) {
        let mut stack = vec![parent];
        while let Some(p) = stack.pop() {
            let children = self.orphans.remove(&p).unwrap_or_default();
            self.orphan_count -= children.len();
            for child in children {
                let id = child.id();
                self.orphan_parents.remove(&id);
                let qc = child.qc.clone();
                if self.add_block(id, child, out) == Insert::Added {
                    self.note_certified(&qc, out);
                    stack.push(id);
                }
            }
        }
    }

    /// A QC carried inside an authenticated block: update the high QC and try to commit.
    fn note_certified(&mut self, qc: &QuorumCert, out: &mut Vec<Action>) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc.clone();
        }
        self.try_commit(qc.clone(), out);
    }

    fn after_new_blocks(&mut self, out: &mut Vec<Action>) {
        if let Some(qc) = self.pending_commit.take() {
            self.try_commit(qc, out);
        }
        let pending: Vec<_> = self.pending_proposals.drain(..).collect();
        for (from, p) in pending {
            if self.tree.contains(&p.block.parent()) {
                if let Some(sender) = self.committee.index_of(&from) {
                    if let Err(e) = self.accept_proposal(from, sender, p, out) {
                        debug!(error = %e, "parked proposal rejected");
                    }
                }
            } else if p.block.round >= self.round {
                self.pending_proposals.push_back((from, p));
            }
        }
        if self.round > 0 {
            self.high_qc_round_advance(out);
            self.try_propose(out);
        }
    }

    fn high_qc_round_advance(&mut self, out: &mut Vec<Action>) {
        if self.high_qc.round.saturating_add(1) > self.round {
            self.enter_round(self.high_qc.round.saturating_add(1), out);
        }
    }

    // ---- certificates ----

    fn check_round(&self, round: Round) -> Result<(), ConsensusError> {
        if round > self.round.saturating_add(self.cfg.max_rounds_ahead) {
            return Err(ConsensusError::RoundTooFarAhead {
                round,
                current: self.round,
            });
        }
        Ok(())
    }

    fn remember_verified(&mut self, key: Hash32) {
        if self.verified.insert(key) {
            self.verified_order.push_back(key);
            while self.verified_order.len() > MAX_VERIFIED_CACHE {
                if let Some(old) = self.verified_order.pop_front() {
                    self.verified.remove(&old);
                }
            }
        }
    }

    fn check_signers(
        &self,
        signers: impl Iterator<Item = ValidatorIndex>,
        len: usize,
    ) -> Result<(), ConsensusError> {
        let quorum = self.committee.quorum();
        if len < quorum {
            return Err(ConsensusError::NoQuorum { got: len, quorum });
        }
        let mut prev: Option<ValidatorIndex> = None;
        for s in signers {
            if usize::from(s) >= self.committee.size() || prev.is_some_and(|p| p >= s) {
                return Err(ConsensusError::BadSigners);
            }
            prev = Some(s);
        }
        Ok(())
    }

    /// Checks a QC: 2f + 1 distinct known signers whose signatures verify in one batch.
    pub fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), ConsensusError> {
        self.verify_qcs(std::iter::once(qc))
    }

    /// Checks certificates together: their signatures go to one batch verification.
    /// Certificates verified before (the cache) cost nothing.
    fn verify_qcs<'q>(
        &mut self,
        qcs: impl IntoIterator<Item = &'q QuorumCert>,
    ) -> Result<(), ConsensusError> {
        let epoch = self.committee.epoch();
        let mut fresh: Vec<(Hash32, Hash32, &QuorumCert)> = Vec::new();
        for qc in qcs {
            if qc.round == 0 {
                if *qc != self.genesis_qc {
                    return Err(ConsensusError::MalformedCertificate(
                        "round-0 QC is not genesis",
                    ));
                }
                continue;
            }
            if qc.parent_round >= qc.round {
                return Err(ConsensusError::MalformedCertificate(
                    "parent round not below QC round",
                ));
            }
            let key = qc.cache_key();
            if self.verified.contains(&key) || fresh.iter().any(|f| f.0 == key) {
                continue;
            }
            self.check_signers(qc.signatures.iter().map(|s| s.0), qc.signatures.len())?;
            fresh.push((key, qc.signed_digest(epoch), qc));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let validators = self.committee.validators();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = fresh
            .iter()
            .flat_map(|(_, digest, qc)| {
                qc.signatures.iter().map(move |(i, s)| {
                    (
                        digest.as_bytes().as_slice(),
                        &validators[usize::from(*i)],
                        s,
                    )
                })
            })
            .collect();
        (self.cfg.verify)(&items).map_err(|_| ConsensusError::BadSignature)?;
        for (key, _, _) in fresh {
            self.remember_verified(key);
        }
        Ok(())
    }

    /// Checks a TC: 2f + 1 distinct known signers, its high QC valid and the highest of
    /// the signers' high-QC rounds, and every signature.
    pub fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), ConsensusError> {
        let key = Hash32::digest(b"ordo/tc-cache\0", &ordo_types::codec::encode(tc));
        if self.verified.contains(&key) {
            return Ok(());
        }
        self.check_signers(tc.signatures.iter().map(|s| s.0), tc.signatures.len())?;
        if tc.high_qc.round != tc.max_high_qc_round() || tc.high_qc.round >= tc.round {
            return Err(ConsensusError::MalformedCertificate(
                "TC's high QC is not the highest of its signers'",
            ));
        }
        self.verify_qc(&tc.high_qc)?;
        let epoch = self.committee.epoch();
        let digests: Vec<Hash32> = tc
            .signatures
            .iter()
            .map(|(_, r, _)| timeout_digest(epoch, tc.round, *r))
            .collect();
        let validators = self.committee.validators();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = tc
            .signatures
            .iter()
            .zip(&digests)
            .map(|((i, _, s), d)| (d.as_bytes().as_slice(), &validators[usize::from(*i)], s))
            .collect();
        (self.cfg.verify)(&items).map_err(|_| ConsensusError::BadSignature)?;
        self.remember_verified(key);
        Ok(())
    }

    /// A verified QC: raise the high QC, fetch its block if unknown, commit, advance.
    fn process_qc(&mut self, qc: &QuorumCert, from: PublicKey, out: &mut Vec<Action>) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc.clone();
        }
        if qc.round > self.tree.root().0 && !self.tree.contains(&qc.block_id) {
            if self.foreign.contains(&qc.parent_id) || self.foreign.contains(&qc.block_id) {
                // Certified on a fork that cannot reach our root: only possible when
                // more than f validators are faulty. Do not keep fetching it.
                self.mark_foreign(qc.block_id);
            } else if self.orphan_parents.contains_key(&qc.block_id) {
                self.request_missing_roots(from, out);
            } else {
                self.request_block(qc.block_id, from, out);
            }
        }
        self.try_commit(qc.clone(), out);
        if qc.round.saturating_add(1) > self.round {
            self.enter_round(qc.round.saturating_add(1), out);
        }
    }

    fn process_tc(&mut self, tc: &TimeoutCert, from: PublicKey, out: &mut Vec<Action>) {
        self.process_qc(&tc.high_qc, from, out);
        if self.last_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.last_tc = Some(tc.clone());
        }
        if tc.round.saturating_add(1) > self.round {
            self.enter_round(tc.round.saturating_add(1), out);
        }
    }

    /// Commits what `qc` (verified, or bound by the id of a block it came in) commits.
    /// What that is comes from the tree: the certified block's parent, if the certified
    /// block directly follows it. Until the certified block arrives, the QC waits.
    fn try_commit(&mut self, qc: QuorumCert, out: &mut Vec<Action>) {
        let target = if INSECURE_SYNC {
            qc.commits()
        } else {
            match self.tree.committed_by(&qc.block_id, qc.round) {
                CommitRule::Commits(round, id) => Some((round, id)),
                CommitRule::Nothing => None,
                CommitRule::Unknown if qc.commits().is_some() => {
                    if qc.round > self.tree.root().0
                        && self
                            .pending_commit
                            .as_ref()
                            .is_none_or(|p| p.round < qc.round)
                    {
                        self.pending_commit = Some(qc);
                    }
                    return;
                }
                CommitRule::Unknown => None,
            }
        };
        let Some((round, id)) = target else {
            return;
        };
        if round <= self.tree.root().0 {
            return;
        }
        let blocks = self.tree.commit(&id, round);
        if blocks.is_empty() {
            // Some block on the way down is missing; retry once sync fills it in.
            if self
                .pending_commit
                .as_ref()
                .is_none_or(|p| p.round < qc.round)
            {
                self.pending_commit = Some(qc);
            }
            return;
        }
        for b in &blocks {
            self.leaders.record_commit(b);
            for d in &b.payload {
                self.available.remove(d);
                if self.committed_digests.insert(*d) {
                    self.committed_digest_order.push_back(*d);
                }
            }
        }
        while self.committed_digest_order.len() > MAX_COMMITTED_DIGESTS {
            if let Some(d) = self.committed_digest_order.pop_front() {
                self.committed_digests.remove(&d);
            }
        }
        let committed = &self.committed_digests;
        self.pool.retain(|d| !committed.contains(d));
        self.stats.committed_blocks += blocks.len() as u64;
        metrics::counter!("ordo_consensus_committed_blocks_total").increment(blocks.len() as u64);
        debug!(count = blocks.len(), last = %blocks[blocks.len() - 1], "committed");
        if self
            .pending_commit
            .as_ref()
            .is_some_and(|p| p.round <= qc.round)
        {
            self.pending_commit = None;
        }
        self.commit_qc = qc.clone();
        let root = self.tree.root().0;
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
        out.push(Action::Commit { blocks, proof: qc });
    }

    /// Asks again for the parents that held chains of orphans wait on (a lost response
    /// would otherwise stall the walk; `request_block` spaces repeats by a base timeout).
    fn request_missing_roots(&mut self, from: PublicKey, out: &mut Vec<Action>) {
        let roots: Vec<Hash32> = self
            .orphans
            .keys()
            .filter(|p| !self.orphan_parents.contains_key(*p) && !self.tree.contains(p))
            .copied()
            .take(4)
            .collect();
        for root in roots {
            self.request_block(root, from, out);
        }
    }

    fn request_block(&mut self, id: Hash32, from: PublicKey, out: &mut Vec<Action>) {
        if from == self.signer.public_key() || self.foreign.contains(&id) {
            return;
        }
        if let Some(r) = self.requested.get(&id) {
            if self.now < r.at.saturating_add(self.cfg.base_timeout_ms) {
                return;
            }
        }
        if self.requested.len() > 1_024 {
            let horizon = self.now.saturating_sub(self.cfg.base_timeout_ms);
            self.requested.retain(|_, r| r.at >= horizon);
        }
        self.requested.insert(
            id,
            Requested {
                at: self.now,
                peer: from,
                answered: false,
            },
        );
        self.stats.block_requests += 1;
        out.push(Action::Send {
            to: from,
            message: Message::BlockRequest {
                block_id: id,
                above_round: self.tree.root().0,
                max: self.cfg.sync_batch,
            },
        });
    }

    // ---- pacemaker ----

    fn round_timeout(&self) -> u64 {
        let behind = self
            .round
            .saturating_sub(self.high_qc.round.saturating_add(1));
        let exp = behind.min(u64::from(self.cfg.max_timeout_exponent)) as u32;
        self.cfg.base_timeout_ms.saturating_mul(1u64 << exp)
    }

    fn enter_round(&mut self, round: Round, out: &mut Vec<Action>) {
        if round <= self.round {
            return;
        }
        self.round = round;
        self.round_started = self.now;
        self.my_timeout = None;
        self.propose_at = None;
        self.timeout_at = self.now.saturating_add(self.round_timeout());
        self.stats.rounds_entered += 1;
        metrics::gauge!("ordo_consensus_round").set(round as f64);
        if self
            .waiting_vote
            .as_ref()
            .is_some_and(|(id, _)| self.tree.get(id).is_none_or(|b| b.round < round))
        {
            self.waiting_vote = None;
        }
        let keep_from = round.saturating_sub(1);
        self.votes = self.votes.split_off(&keep_from);
        self.timeouts = self.timeouts.split_off(&round);
        trace!(round, "entered round");
        self.try_propose(out);
    }

    fn local_timeout(&mut self, out: &mut Vec<Action>) {
        self.timeout_at = self.now.saturating_add(self.round_timeout());
        if let Some(t) = &self.my_timeout {
            out.push(Action::Broadcast(Message::Timeout(t.clone())));
            return;
        }
        let round = self.round;
        let Some(me) = self.me else { return };
        if !self
            .safety
            .safe_to_timeout(round, &self.high_qc, self.last_tc.as_ref())
        {
            return;
        }
        self.stats.local_timeouts += 1;
        metrics::counter!("ordo_consensus_timeouts_total").increment(1);
        debug!(round, high_qc = %self.high_qc, "round timed out");
        self.safety.record_timeout(round);
        self.safety.high_qc = self.high_qc.clone();
        self.waiting_vote = None;
        out.push(Action::Persist(self.safety.clone()));
        let digest = timeout_digest(self.committee.epoch(), round, self.high_qc.round);
        let last_tc = self
            .last_tc
            .as_ref()
            .filter(|tc| tc.round.saturating_add(1) == round)
            .cloned();
        let t = Timeout {
            round,
            high_qc: self.high_qc.clone(),
            last_tc,
            commit_qc: self.commit_qc.clone(),
            author: me,
            signature: self.signer.sign(digest.as_bytes()),
        };
        self.my_timeout = Some(t.clone());
        out.push(Action::Broadcast(Message::Timeout(t.clone())));
        self.add_timeout(t, out);
    }

    fn schedule_timer(&mut self, out: &mut Vec<Action>) {
        let deadline = match self.propose_at {
            Some(p) => p.min(self.timeout_at),
            None => self.timeout_at,
        };
        if deadline != u64::MAX && self.last_timer != Some(deadline) {
            self.last_timer = Some(deadline);
            out.push(Action::SetTimer {
                deadline_ms: deadline,
            });
        }
    }

    // ---- proposing and voting ----

    fn try_propose(&mut self, out: &mut Vec<Action>) {
        let round = self.round;
        let Some(me) = self.me else { return };
        if self.proposed >= round || self.my_timeout.is_some() || self.leaders.leader(round) != me {
            return;
        }
        if let Some(p) = self.safety.proposal_for(round).cloned() {
            // Restarted in a round it had proposed in: the same block again, never a
            // second one (its vote, if it voted, was recorded with it).
            self.propose_at = None;
            self.proposed = round;
            debug!(block = %p.block, "proposing again after a restart");
            out.push(Action::Broadcast(Message::Proposal(p.clone())));
            let id = p.block.id();
            self.add_block(id, p.block, out);
            return;
        }
        let tc = if self.high_qc.round.saturating_add(1) == round {
            None
        } else {
            match &self.last_tc {
                Some(tc) if tc.round.saturating_add(1) == round => Some(tc.clone()),
                _ => return,
            }
        };
        let parent_id = self.high_qc.block_id;
        let Some(parent) = self.tree.get(&parent_id) else {
            return;
        };
        let parent_ts = parent.timestamp_ms;
        let mut in_flight = HashSet::new();
        let mut pending_payload = false;
        for b in self.tree.uncommitted_path(&parent_id) {
            pending_payload |= !b.payload.is_empty();
            in_flight.extend(b.payload.iter().copied());
        }
        let payload: Vec<Hash32> = self
            .pool
            .iter()
            .filter(|d| !in_flight.contains(*d))
            .take(self.cfg.max_payload)
            .copied()
            .collect();
        let wait_until = self
            .round_started
            .saturating_add(self.cfg.max_batch_delay_ms);
        if payload.is_empty() && !pending_payload && self.now < wait_until {
            // Nothing to order and nothing in flight to push through: wait for payload
            // rather than race through empty rounds.
            self.propose_at = Some(wait_until);
            return;
        }
        self.propose_at = None;
        self.proposed = round;
        let block = Block {
            epoch: self.committee.epoch(),
            round,
            author: me,
            timestamp_ms: self.now.max(parent_ts),
            payload,
            qc: self.high_qc.clone(),
        };
        let id = block.id();
        let signature = self
            .signer
            .sign(proposal_digest(block.epoch, round, &id).as_bytes());
        self.stats.proposals += 1;
        if block.payload.is_empty() {
            self.stats.empty_proposals += 1;
        }
        debug!(%block, "proposing");
        let proposal = Proposal {
            block,
            tc: tc.clone(),
            signature,
        };
        if self.add_block(id, proposal.block.clone(), out) != Insert::Added {
            return;
        }
        // One durable write covers the proposal and the leader's own vote, and both
        // precede the broadcast.
        let vote = self.prepare_vote(&id, tc, out);
        self.safety.record_proposal(proposal.clone());
        self.safety.high_qc = self.high_qc.clone();
        out.push(Action::Persist(self.safety.clone()));
        out.push(Action::Broadcast(Message::Proposal(proposal)));
        if let Some(vote) = vote {
            self.send_vote(vote, out);
        }
    }

    fn try_vote(&mut self, id: &Hash32, tc: Option<TimeoutCert>, out: &mut Vec<Action>) {
        if let Some(vote) = self.prepare_vote(id, tc, out) {
            out.push(Action::Persist(self.safety.clone()));
            self.send_vote(vote, out);
        }
    }

    /// Decides whether to vote for block `id`. If so, records the vote in the safety data
    /// and returns it: the caller persists the safety data before sending it. A block
    /// whose payload is not all available waits for it, and its payload is asked for once.
    fn prepare_vote(
        &mut self,
        id: &Hash32,
        tc: Option<TimeoutCert>,
        out: &mut Vec<Action>,
    ) -> Option<Vote> {
        let me = self.me?;
        let block = self.tree.get(id)?;
        if block.round != self.round || self.my_timeout.is_some() {
            return None;
        }
        if self.cfg.require_payload_available {
            let missing: Vec<Hash32> = block
                .payload
                .iter()
                .filter(|d| !self.available.contains(*d))
                .copied()
                .collect();
            if !missing.is_empty() {
                // The data named here may still be on its way; vote when the node
                // reports it.
                if self.fetch_asked != Some(*id) {
                    self.fetch_asked = Some(*id);
                    if let Some(proposer) = self.committee.key(block.author) {
                        out.push(Action::FetchPayload {
                            proposer: *proposer,
                            digests: missing,
                        });
                    }
                }
                self.waiting_vote = Some((*id, tc));
                return None;
            }
        }
        if !self.safety.safe_to_vote(block, tc.as_ref()) {
            return None;
        }
        let (epoch, round, parent_round, parent_id) =
            (block.epoch, block.round, block.qc.round, block.qc.block_id);
        self.safety.record_vote(block);
        self.safety.high_qc = self.high_qc.clone();
        let digest = vote_digest(epoch, round, id, parent_round, &parent_id);
        Some(Vote {
            round,
            block_id: *id,
            parent_round,
            parent_id,
            author: me,
            signature: self.signer.sign(digest.as_bytes()),
        })
    }

    /// Sends a vote whose safety data the caller has persisted: to the next round's
    /// leader, or into our own aggregation when that is us.
    fn send_vote(&mut self, vote: Vote, out: &mut Vec<Action>) {
        self.stats.votes += 1;
        let next = self.leaders.leader(vote.round.saturating_add(1));
        if Some(next) == self.me {
            if let Err(e) = self.add_vote(vote, out) {
                debug!(error = %e, "own vote rejected");
            }
        } else {
            out.push(Action::Send {
                to: self.committee.validators()[usize::from(next)],
                message: Message::Vote(vote),
            });
        }
    }
}

/// The first four bytes of a key, for logs.
fn short_key(key: &PublicKey) -> String {
    Hash32(key.0).short()
}
