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
//!
//! This file holds the protocol's steps: what each event does, learning from certificates,
//! the commit rule, entering rounds, proposing and voting. They call one another (a QC
//! enters a round, where we may propose, and our vote may complete the next QC), so they
//! stay together; each piece with state of its own lives in a module below, which never
//! calls back up:
//! - `events`: [`Event`] and [`Action`], the boundary;
//! - `pacemaker`: the round, its timer and our timeout in it;
//! - `proposals`: a proposal's own checks, and the first proposal per round;
//! - `votes`: votes and timeouts aggregated into QCs and TCs;
//! - `certificates`: certificate verification and its cache;
//! - `sync`: block requests, orphans, parked proposals and foreign blocks;
//! - `payload`: the payload pool and the window of committed digests;
//! - [`crate::state_roots`]: the roots a block carries, checked before a vote.

pub(crate) mod certificates;
mod events;
mod pacemaker;
mod payload;
mod proposals;
mod sync;
mod votes;

use std::collections::HashSet;

use ordo_types::{Hash32, PublicKey};
use tracing::{debug, trace, warn};

use crate::block_tree::{BlockTree, CommitRule, Insert};
use crate::committee::{Committee, Signer};
use crate::config::Config;
use crate::control::INSECURE_SYNC;
use crate::error::ConsensusError;
use crate::leader::LeaderElection;
use crate::messages::ExecutedRoot;
use crate::messages::{
    proposal_digest, timeout_digest, vote_digest, Block, Message, Proposal, QuorumCert, Round,
    Timeout, TimeoutCert, ValidatorIndex, Vote,
};
use crate::safety::SafetyData;
use crate::state_roots::{check_carried, OwnRoots, RootCheck, MAX_ROOTS_PER_BLOCK};

use certificates::Certificates;
pub use events::{Action, Event, ReadyPayload};
use pacemaker::Pacemaker;
use payload::PayloadPool;
use proposals::{check_proposal, FirstProposals};
use sync::BlockSync;
use votes::{Aggregator, TimeoutTally};

/// A fresh replica (no record of past votes) entering a round above this one is on a
/// chain that ran before it: see `Replica::guard_lost_votes`. High enough that a new
/// chain's first rounds, where every replica is fresh, never reach it before votes do.
pub const AMNESIA_ROUND: Round = 64;

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
    /// Forward catch-up requests sent, and the blocks their answers brought.
    pub catch_up_requests: u64,
    pub catch_up_blocks: u64,
    /// The most blocks held as orphans at once.
    pub max_orphans: u64,
    /// Blocks not voted for because they carry a root (or block) we did not execute.
    pub root_refusals: u64,
}

/// One validator's HotStuff replica. See the module note for the protocol.
pub struct Replica<S: Signer> {
    cfg: Config,
    committee: Committee,
    signer: S,
    me: Option<ValidatorIndex>,
    safety: SafetyData,
    tree: BlockTree,
    leaders: LeaderElection,

    now: u64,
    pacemaker: Pacemaker,
    high_qc: QuorumCert,
    /// The QC that committed the current root.
    commit_qc: QuorumCert,
    last_tc: Option<TimeoutCert>,
    /// A QC whose commit waits for blocks still being fetched.
    pending_commit: Option<QuorumCert>,

    proposed: Round,
    /// No new block is proposed in rounds up to this one: what the safety data said when
    /// this replica was restored (see [`SafetyData::restart_floor`]).
    restart_floor: Round,
    waiting_vote: Option<(Hash32, Option<TimeoutCert>)>,
    /// Whether this replica started with no record of its past votes (fresh safety
    /// data) and has not voted since: see [`AMNESIA_ROUND`].
    fresh: bool,
    /// Until this time, every round entered counts as voted in (and proposed in): set
    /// when a fresh replica first enters a round past [`AMNESIA_ROUND`].
    amnesia_until: Option<u64>,
    /// The last block whose missing payload this replica asked the node to fetch.
    fetch_asked: Option<Hash32>,
    proposals: FirstProposals,

    votes: Aggregator,
    certificates: Certificates,
    sync: BlockSync,
    payload: PayloadPool,
    /// Our executed roots: what blocks carry and what votes check.
    roots: OwnRoots,
    /// The heights we last asked the node for (roots we lack), from and to exclusive.
    roots_asked: Option<(u64, u64)>,
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
        let mut payload = PayloadPool::new(cfg.max_pool);
        for b in &committed_tail {
            leaders.record_commit(b);
            payload.restore_committed(b);
        }
        let tree = BlockTree::new(committed_tail, cfg.block_retention);
        let me = committee.index_of(&signer.public_key());
        let high_qc = safety.high_qc.clone();
        Self {
            me,
            tree,
            leaders,
            now: 0,
            pacemaker: Pacemaker::new(cfg.base_timeout_ms, cfg.max_timeout_exponent),
            high_qc,
            commit_qc: QuorumCert::genesis(epoch),
            last_tc: None,
            pending_commit: None,
            proposed: 0,
            restart_floor: safety.restart_floor(),
            waiting_vote: None,
            fresh: safety.last_voted_round == 0,
            amnesia_until: None,
            fetch_asked: None,
            proposals: FirstProposals::default(),
            votes: Aggregator::default(),
            certificates: Certificates::new(QuorumCert::genesis(epoch)),
            sync: BlockSync::new(signer.public_key(), cfg.base_timeout_ms, cfg.sync_batch),
            payload,
            roots: OwnRoots::default(),
            roots_asked: None,
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
        self.pacemaker.schedule_timer(&mut out);
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
            Event::PayloadAvailable(digests) => {
                self.payload.add_available(digests);
                self.retry_vote(&mut out);
            }
            Event::Executed {
                height,
                block,
                root,
            } => {
                self.roots.executed(height, ExecutedRoot { block, root });
                self.retry_vote(&mut out);
            }
            Event::PeersExecuted { height } => self.roots.peers_executed(height),
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
        self.pacemaker.schedule_timer(&mut out);
        out
    }

    pub fn round(&self) -> Round {
        self.pacemaker.round()
    }

    /// The node executed every height up to `height` before a restart: the replica asks
    /// for their roots ([`Action::LoadRoots`]) when a block carries them or it would carry
    /// them. Call before [`Replica::start`].
    pub fn restore_executed(&mut self, height: u64) {
        self.roots.executed_through(height);
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
            self.pacemaker.round(),
            self.pacemaker.round_started(),
            self.pacemaker.timeout_at(),
            self.high_qc,
            self.last_tc
                .as_ref()
                .map_or("none".to_string(), |t| t.to_string()),
            self.safety.last_voted_round,
            self.safety.locked_round,
            self.tree.root().0,
            self.tree.len(),
            self.pacemaker.my_timeout().is_some(),
            self.proposed,
            self.waiting_vote.is_some(),
            self.sync.parked_len(),
        )
    }

    /// The leader this replica expects for `round`.
    pub fn leader_of(&mut self, round: Round) -> PublicKey {
        let l = self.leaders.leader(round);
        self.committee.validators()[usize::from(l)]
    }

    /// Checks a QC: 2f + 1 distinct known signers whose signatures verify in one batch.
    pub fn verify_qc(&mut self, qc: &QuorumCert) -> Result<(), ConsensusError> {
        self.certificates
            .verify_qc(&self.committee, self.cfg.verify, qc)
    }

    /// Checks a TC: 2f + 1 distinct known signers, its high QC valid and the highest of
    /// the signers' high-QC rounds, and every signature.
    pub fn verify_tc(&mut self, tc: &TimeoutCert) -> Result<(), ConsensusError> {
        self.certificates
            .verify_tc(&self.committee, self.cfg.verify, tc)
    }

    // ---- events ----

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        if self.pacemaker.propose_due(self.now) {
            self.try_propose(out);
        }
        if self.pacemaker.timeout_due(self.now) {
            self.local_timeout(out);
        }
    }

    fn on_payload(&mut self, digests: Vec<ReadyPayload>, out: &mut Vec<Action>) {
        self.payload.add_ready(digests);
        if let Some((id, tc)) = self.waiting_vote.take() {
            self.try_vote(&id, tc, out);
        }
        if self.pacemaker.waiting_to_propose() {
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
        trace!(round = self.round(), from = sender, %message, "received");
        match message {
            Message::Proposal(p) => self.on_proposal(from, sender, p, out),
            Message::Vote(v) => self.on_vote(sender, v, out),
            Message::Timeout(t) => self.on_timeout(from, sender, t, out),
            Message::TimeoutCert(tc) => {
                if tc.round < self.round() {
                    return Err(ConsensusError::StaleRound {
                        round: tc.round,
                        current: self.round(),
                    });
                }
                // A certificate far ahead is still learnt from once verified (see
                // `on_proposal`): it holds no per-round state.
                let far = self.check_round(tc.round);
                self.verify_tc(&tc)?;
                self.process_tc(&tc, from, out);
                far
            }
            Message::QuorumCert(qc) => {
                if qc.round <= self.high_qc.round {
                    return Err(ConsensusError::StaleRound {
                        round: qc.round,
                        current: self.round(),
                    });
                }
                let far = self.check_round(qc.round);
                self.verify_qc(&qc)?;
                self.process_qc(&qc, from, out);
                far
            }
            // Answered by the node's block server from the blocks the replica asked it to
            // keep (see `crate::sync`), off the consensus thread.
            Message::BlockRequest { .. } | Message::CatchUpRequest { .. } => Ok(()),
            Message::BlockResponse { blocks } => self.on_blocks(from, blocks, out),
            Message::CatchUpResponse { after, blocks } => {
                self.on_catch_up(from, after, blocks, out)
            }
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
        check_proposal(
            &p,
            &from,
            self.committee.epoch(),
            self.cfg.max_payload,
            self.cfg.verify,
        )?;
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
                current: self.round(),
            });
        }
        if b.qc.round <= self.tree.root().0 && !self.tree.contains(&b.parent()) {
            self.sync.mark_foreign(b.id());
            return Err(ConsensusError::StaleRound {
                round: b.round,
                current: self.round(),
            });
        }
        let Some(parent) = self.tree.get(&b.parent()) else {
            // The parent may still be on its way: park the proposal and ask for it, or,
            // when it is held already, for what the held chain still misses.
            if self.sync.holds(&b.parent()) {
                self.request_missing_roots(from, out);
            } else {
                self.fetch_missing(b.parent(), b.qc.round, from, out);
            }
            self.sync.park(from, p);
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
        check_carried(b, parent)?;
        // Its certificate was learnt from before the parent arrived (a parked proposal):
        // what it commits is known only now, and the leader of this round depends on it.
        self.try_commit(p.block.qc.clone(), out);
        let b = &p.block;
        if self.leaders.leader(b.round) != sender {
            return Err(ConsensusError::WrongLeader {
                round: b.round,
                author: sender,
            });
        }
        let id = b.id();
        let round = b.round;
        let first = self.proposals.note(round, sender, id);
        // The blocks that join the tree with this one: it, and the synced orphans that
        // waited for it.
        let joined = match self.add_block(id, p.block, out) {
            Insert::Added => {
                let mut joined = vec![id];
                joined.extend(self.adopt_orphans(id, out));
                joined
            }
            Insert::Inconsistent => {
                return Err(ConsensusError::MalformedCertificate(
                    "block's QC does not name its parent's round",
                ))
            }
            _ => Vec::new(),
        };
        // Only the round's first proposal gets our vote. The safety rules already refuse a
        // second vote, but a vote still waiting for its payload would otherwise move to
        // the twin, splitting the honest votes so that neither block is certified.
        if round == self.round() && first {
            self.try_vote(&id, p.tc, out);
        }
        // We may be the next leader, holding a QC for this block but not the block.
        self.try_propose(out);
        for block in joined {
            self.adopt_parked(block, out);
        }
        Ok(())
    }

    /// Takes up the proposals parked for `parent`, which has just joined the tree through
    /// a proposal (the proposal's own block, or a synced orphan that block completed).
    /// Proposals of successive rounds come from different leaders over different
    /// connections, so a child often arrives first; before, a parked child left the
    /// parking only when a block-sync answer came, which cost a round whenever that answer
    /// was empty, lost or throttled, and a next leader holding its round's block parked
    /// could not propose. Bounded: at most the parked proposals, each taken once.
    fn adopt_parked(&mut self, parent: Hash32, out: &mut Vec<Action>) {
        for (from, p) in self.sync.take_parked_children(&parent) {
            let Some(sender) = self.committee.index_of(&from) else {
                continue;
            };
            if let Err(e) = self.accept_proposal(from, sender, p, out) {
                debug!(error = %e, "parked proposal rejected");
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
        let formed = self.votes.add_vote(
            v,
            self.pacemaker.round(),
            self.tree.root().0,
            &self.committee,
            self.cfg.verify,
        )?;
        let Some(qc) = formed else {
            return Ok(());
        };
        self.certificates.remember(qc.cache_key());
        self.stats.qcs_formed += 1;
        debug!(%qc, "formed QC");
        let proposer = self.leaders.leader(qc.round);
        let from = self.committee.validators()[usize::from(proposer)];
        self.process_qc(&qc, from, out);
        // The voters sent their votes here, naming this replica the next round's leader.
        // Forming the QC may have committed a block they have not (after a timed-out round
        // the QC of r - 1 commits a block of round r - 4, and leaders are drawn from blocks
        // committed up to round r - 3), and with it this replica may now name another
        // leader: then nobody would propose. Passing the QC on makes every replica commit
        // the same blocks and name the same leader, who then proposes.
        let next = qc.round.saturating_add(1);
        if self.round() == next
            && self.proposed < next
            && Some(self.leaders.leader(next)) != self.me
        {
            out.push(Action::Broadcast(Message::QuorumCert(qc)));
        }
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
        if t.round < self.round() {
            return Err(ConsensusError::StaleRound {
                round: t.round,
                current: self.round(),
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
        let round = t.round;
        match self
            .votes
            .add_timeout(t, self.pacemaker.round(), &self.committee)
        {
            TimeoutTally::Formed(tc) => {
                self.stats.tcs_formed += 1;
                debug!(%tc, "formed TC");
                out.push(Action::Broadcast(Message::TimeoutCert(tc.clone())));
                let me = self.signer.public_key();
                self.process_tc(&tc, me, out);
            }
            TimeoutTally::Counted(count)
                if count > self.committee.max_faulty()
                    && round == self.round()
                    && self.pacemaker.my_timeout().is_none() =>
            {
                // f + 1 replicas gave up on this round, so at least one honest one did: join
                // them rather than wait out the full timer.
                self.local_timeout(out);
            }
            TimeoutTally::Counted(_) | TimeoutTally::Ignored => {}
        }
    }

    // ---- blocks and sync ----

    fn on_blocks(
        &mut self,
        from: PublicKey,
        blocks: Vec<Block>,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.sync.accept_response(&blocks, from)?;
        // The hash chain authenticates the blocks; their certificates' signatures are
        // checked as well, in one batch, so that nothing unverified is ever trusted as a
        // certificate.
        if !INSECURE_SYNC {
            self.verify_qcs(blocks.iter().map(|b| &b.qc))?;
        }
        for block in blocks.into_iter().rev() {
            self.offer_block(block, from, out);
        }
        self.after_new_blocks(out);
        Ok(())
    }

    /// A forward catch-up answer: the blocks join the tree oldest first (each one's parent
    /// is known), the certificates inside them commit them, and the next request, for what
    /// follows, goes at once to the same peer.
    fn on_catch_up(
        &mut self,
        from: PublicKey,
        after: Hash32,
        blocks: Vec<Block>,
        out: &mut Vec<Action>,
    ) -> Result<(), ConsensusError> {
        self.sync.accept_catch_up(&after, &blocks, from)?;
        self.verify_qcs(blocks.iter().map(|b| &b.qc))?;
        let count = blocks.len() as u64;
        // Any answer is followed by a request for what comes after its newest block (which
        // may not be committed yet: the certificates that commit it come next). An answer
        // may be short of `sync_batch` because of the server's byte budget, not because the
        // chain ends there; at the server's tip the next answer is empty and ends it.
        let next = blocks.last().map(Block::id);
        for block in blocks {
            self.offer_block(block, from, out);
        }
        self.stats.catch_up_blocks += count;
        metrics::counter!("ordo_consensus_catch_up_blocks_total").increment(count);
        self.after_new_blocks(out);
        if let Some(after) = next {
            self.request_catch_up(after, from, out);
        }
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
            Insert::MissingParent(parent) if self.sync.is_foreign(&parent) => {
                self.sync.mark_foreign(id);
            }
            Insert::MissingParent(parent) => {
                if self.sync.hold(id, parent, block) {
                    self.request_block(parent, from, out);
                }
                self.stats.max_orphans =
                    self.stats.max_orphans.max(self.sync.orphan_count() as u64);
            }
            Insert::Stale => {
                if block.round > self.tree.root().0 {
                    self.sync.mark_foreign(id);
                }
            }
            Insert::Known => {}
        }
    }

    /// `parent` joined the tree: so do the orphans waiting for it, and theirs in turn.
    /// Returns the blocks that joined.
    fn adopt_orphans(&mut self, parent: Hash32, out: &mut Vec<Action>) -> Vec<Hash32> {
        let mut joined = Vec::new();
        let mut stack = vec![parent];
        while let Some(p) = stack.pop() {
            for child in self.sync.take_children(&p) {
                let id = child.id();
                let qc = child.qc.clone();
                if self.add_block(id, child, out) == Insert::Added {
                    self.note_certified(&qc, out);
                    stack.push(id);
                    joined.push(id);
                }
            }
        }
        joined
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
        for (from, p) in self.sync.take_parked() {
            if self.tree.contains(&p.block.parent()) {
                if let Some(sender) = self.committee.index_of(&from) {
                    if let Err(e) = self.accept_proposal(from, sender, p, out) {
                        debug!(error = %e, "parked proposal rejected");
                    }
                }
            } else if p.block.round >= self.round() {
                self.sync.park(from, p);
            }
        }
        if self.round() > 0 {
            self.high_qc_round_advance(out);
            self.try_propose(out);
        }
    }

    fn high_qc_round_advance(&mut self, out: &mut Vec<Action>) {
        if self.high_qc.round.saturating_add(1) > self.round() {
            self.enter_round(self.high_qc.round.saturating_add(1), out);
        }
    }

    /// Asks again for the parents that held chains of orphans wait on (a lost response
    /// would otherwise stall the walk; `request_block` spaces repeats by a base timeout).
    fn request_missing_roots(&mut self, from: PublicKey, out: &mut Vec<Action>) {
        for root in self.sync.missing_roots(&self.tree) {
            self.request_block(root, from, out);
        }
    }

    fn request_block(&mut self, id: Hash32, from: PublicKey, out: &mut Vec<Action>) {
        if self
            .sync
            .request(id, from, self.now, self.tree.root().0, out)
        {
            self.stats.block_requests += 1;
        }
    }

    /// Fetches missing block `id` of round `round`: backwards from it when it is near the
    /// root, by forward catch-up when more rounds than one answer of blocks lie between
    /// (a walk back from the tip would hold every block until it arrived).
    fn fetch_missing(&mut self, id: Hash32, round: Round, from: PublicKey, out: &mut Vec<Action>) {
        let gap = round.saturating_sub(self.tree.root().0);
        if gap > u64::from(self.cfg.sync_batch) {
            // From the committed root: what a dead-end answer may have added above it is
            // not what honest peers continue from.
            self.request_catch_up(self.tree.root().1, from, out);
        } else {
            self.request_block(id, from, out);
        }
    }

    fn request_catch_up(&mut self, after: Hash32, from: PublicKey, out: &mut Vec<Action>) {
        if self.sync.request_catch_up(after, from, self.now, out) {
            self.stats.catch_up_requests += 1;
        }
    }

    // ---- certificates ----

    fn check_round(&self, round: Round) -> Result<(), ConsensusError> {
        if round > self.round().saturating_add(self.cfg.max_rounds_ahead) {
            return Err(ConsensusError::RoundTooFarAhead {
                round,
                current: self.round(),
            });
        }
        Ok(())
    }

    /// Checks certificates together: their signatures go to one batch verification.
    fn verify_qcs<'q>(
        &mut self,
        qcs: impl IntoIterator<Item = &'q QuorumCert>,
    ) -> Result<(), ConsensusError> {
        self.certificates
            .verify_qcs(&self.committee, self.cfg.verify, qcs)
    }

    /// A verified QC: raise the high QC, fetch its block if unknown, commit, advance.
    fn process_qc(&mut self, qc: &QuorumCert, from: PublicKey, out: &mut Vec<Action>) {
        if qc.round > self.high_qc.round {
            self.high_qc = qc.clone();
        }
        if qc.round > self.tree.root().0 && !self.tree.contains(&qc.block_id) {
            if self.sync.is_foreign(&qc.parent_id) || self.sync.is_foreign(&qc.block_id) {
                // Certified on a fork that cannot reach our root: only possible when
                // more than f validators are faulty. Do not keep fetching it.
                self.sync.mark_foreign(qc.block_id);
            } else if self.sync.holds(&qc.block_id) {
                self.request_missing_roots(from, out);
            } else {
                self.fetch_missing(qc.block_id, qc.round, from, out);
            }
        }
        self.try_commit(qc.clone(), out);
        if qc.round.saturating_add(1) > self.round() {
            self.enter_round(qc.round.saturating_add(1), out);
        }
    }

    fn process_tc(&mut self, tc: &TimeoutCert, from: PublicKey, out: &mut Vec<Action>) {
        self.process_qc(&tc.high_qc, from, out);
        if self.last_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.last_tc = Some(tc.clone());
        }
        if tc.round.saturating_add(1) > self.round() {
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
        }
        self.payload.committed(&blocks);
        let carried_next = blocks[blocks.len() - 1].state.next();
        self.roots.prune_below(carried_next);
        metrics::gauge!("ordo_consensus_certified_state_height")
            .set(carried_next.saturating_sub(1) as f64);
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
        self.sync.prune(self.tree.root().0);
        out.push(Action::Commit { blocks, proof: qc });
    }

    // ---- pacemaker ----

    fn enter_round(&mut self, round: Round, out: &mut Vec<Action>) {
        if !self.pacemaker.enter(round, self.now, self.high_qc.round) {
            return;
        }
        self.stats.rounds_entered += 1;
        metrics::gauge!("ordo_consensus_round").set(round as f64);
        self.guard_lost_votes(round);
        if self
            .waiting_vote
            .as_ref()
            .is_some_and(|(id, _)| self.tree.get(id).is_none_or(|b| b.round < round))
        {
            self.waiting_vote = None;
        }
        self.votes.enter_round(round);
        trace!(round, "entered round");
        self.try_propose(out);
    }

    /// A replica that lost its safety data (a wiped validator) may have voted, before,
    /// in the rounds its peers are in now; voting there again could certify two blocks
    /// of one round. So a fresh replica that first enters a round past [`AMNESIA_ROUND`]
    /// (a chain that ran before it) treats every round it enters for the next two round
    /// timeouts as one it voted and proposed in: by then it has seen the round its peers
    /// are in (their proposals, certificates and repeated timeouts), which bounds any
    /// round its lost votes could be in. A new chain, whose replicas are all fresh,
    /// starts below that round and is not held up.
    fn guard_lost_votes(&mut self, round: Round) {
        if self.fresh && self.amnesia_until.is_none() && round > AMNESIA_ROUND {
            let until = self.now.saturating_add(2 * self.cfg.base_timeout_ms);
            self.amnesia_until = Some(until);
            debug!(
                round,
                until, "no record of past votes: abstaining while the current round is learnt"
            );
            metrics::counter!("ordo_consensus_amnesia_guards_total").increment(1);
        }
        if self.amnesia_until.is_some_and(|until| self.now < until) {
            self.safety.last_voted_round = self.safety.last_voted_round.max(round);
            self.restart_floor = self.restart_floor.max(round);
        }
    }

    fn local_timeout(&mut self, out: &mut Vec<Action>) {
        self.pacemaker.restart_timeout(self.now, self.high_qc.round);
        if let Some(t) = self.pacemaker.my_timeout() {
            out.push(Action::Broadcast(Message::Timeout(t.clone())));
            return;
        }
        let round = self.round();
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
        self.pacemaker.record_timeout(t.clone());
        out.push(Action::Broadcast(Message::Timeout(t.clone())));
        self.add_timeout(t, out);
    }

    // ---- proposing and voting ----

    fn try_propose(&mut self, out: &mut Vec<Action>) {
        let round = self.round();
        let Some(me) = self.me else { return };
        if self.proposed >= round || self.pacemaker.my_timeout().is_some() {
            return;
        }
        if self.tree.contains(&self.high_qc.block_id) {
            // The high QC may have come before its block (which then committed nothing):
            // commit what it commits before naming this round's leader, which depends on
            // it. Otherwise this replica could take itself for the leader while its peers,
            // further along, name another.
            self.try_commit(self.high_qc.clone(), out);
        }
        if self.leaders.leader(round) != me {
            return;
        }
        if let Some(p) = self.safety.proposal_for(round).cloned() {
            // Restarted in a round it had proposed in: the same block again, never a
            // second one (its vote, if it voted, was recorded with it).
            self.pacemaker.stop_waiting_to_propose();
            self.proposed = round;
            debug!(block = %p.block, "proposing again after a restart");
            out.push(Action::Broadcast(Message::Proposal(p.clone())));
            let id = p.block.id();
            self.add_block(id, p.block, out);
            return;
        }
        if round <= self.restart_floor {
            // It may have sent a block in this round before it stopped.
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
        let state = self.roots.carry(parent.state.next());
        if state.roots.is_empty() {
            self.want_roots(state.first, out);
        }
        let mut in_flight = HashSet::new();
        let mut pending_payload = false;
        for b in self.tree.uncommitted_path(&parent_id) {
            pending_payload |= !b.payload.is_empty();
            in_flight.extend(b.payload.iter().copied());
        }
        let payload = self.payload.proposable(
            &in_flight,
            payload::Limits {
                digests: self.cfg.max_payload,
                txs: self.cfg.max_payload_txs,
                gas: self.cfg.max_payload_gas,
            },
        );
        let wait_until = self
            .pacemaker
            .round_started()
            .saturating_add(self.cfg.max_batch_delay_ms);
        if payload.is_empty() && !pending_payload && self.now < wait_until {
            // Nothing to order and nothing in flight to push through: wait for payload
            // rather than race through empty rounds.
            self.pacemaker.wait_to_propose(wait_until);
            return;
        }
        self.pacemaker.stop_waiting_to_propose();
        self.proposed = round;
        let block = Block {
            epoch: self.committee.epoch(),
            round,
            author: me,
            timestamp_ms: self.now.max(parent_ts),
            payload,
            state,
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
        // What is durable already keeps a restart from proposing again in this round
        // (the usual case: this replica signed in the round before), so the proposal
        // need not wait for a write; otherwise it waits for the one below. That write
        // covers the proposal and the leader's own vote, and precedes the vote.
        let covered = self.safety.restart_floor() >= round;
        if covered {
            out.push(Action::Broadcast(Message::Proposal(proposal.clone())));
        }
        let vote = self.prepare_vote(&id, tc, out);
        self.safety.record_proposal(proposal.clone());
        self.safety.high_qc = self.high_qc.clone();
        out.push(Action::Persist(self.safety.clone()));
        if !covered {
            out.push(Action::Broadcast(Message::Proposal(proposal)));
        }
        if let Some(vote) = vote {
            self.send_vote(vote, out);
        }
    }

    /// Asks the node for our roots from `height` on, if we executed it but hold no root
    /// for it: a block's worth at once, and not again for a height just asked for (the
    /// store may lack it too, and each root loaded retries the vote that asked).
    fn want_roots(&mut self, height: u64, out: &mut Vec<Action>) {
        let asked = self
            .roots_asked
            .is_some_and(|(from, to)| (from..to).contains(&height));
        if asked || !self.roots.lacks(height) {
            return;
        }
        let count = MAX_ROOTS_PER_BLOCK as u64;
        self.roots_asked = Some((height, height.saturating_add(count)));
        out.push(Action::LoadRoots {
            from: height,
            count,
        });
    }

    /// Tries again the vote that waited for payload or for our roots.
    fn retry_vote(&mut self, out: &mut Vec<Action>) {
        if let Some((id, tc)) = self.waiting_vote.take() {
            self.try_vote(&id, tc, out);
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
        if block.round != self.pacemaker.round() || self.pacemaker.my_timeout().is_some() {
            return None;
        }
        if self.cfg.require_payload_available {
            let missing = self.payload.missing(&block.payload);
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
        match self.roots.check(&block.state) {
            RootCheck::Agrees => {}
            RootCheck::Missing { height } => {
                // Not executed here yet (vote once it is, or never if the round ends), or
                // executed but no longer held: the node's store has it.
                trace!(height, block = %block, "vote waits for our state root");
                self.waiting_vote = Some((*id, tc));
                self.want_roots(height, out);
                return None;
            }
            RootCheck::Differs {
                height,
                ours,
                carried,
            } => {
                self.stats.root_refusals += 1;
                metrics::counter!("ordo_consensus_state_root_refusals_total").increment(1);
                warn!(
                    height,
                    our_block = %ours.block.short(),
                    our_root = %ours.root.short(),
                    carried_block = %carried.block.short(),
                    carried_root = %carried.root.short(),
                    block = %block,
                    "block carries a state root we did not compute; not voting for it"
                );
                return None;
            }
        }
        if !self.safety.safe_to_vote(block, tc.as_ref()) {
            return None;
        }
        let (epoch, round, parent_round, parent_id) =
            (block.epoch, block.round, block.qc.round, block.qc.block_id);
        self.safety.record_vote(block);
        self.fresh = false;
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
