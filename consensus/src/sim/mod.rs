//! A deterministic, seeded simulator of a committee of replicas.
//!
//! One event queue ordered by (simulated time, sequence number) drives every replica; the
//! only randomness is one seeded RNG, so a seed replays exactly. Links have latency with
//! jitter (which reorders messages) and loss; faults are partitions that heal, crashes
//! (also in the middle of a replica's action list) with restarts from persisted safety
//! data and committed blocks, permanently crashed validators, Twins: two nodes running
//! honest code with one key, routed by per-round partitions, and forged block sync: twins
//! whose keys also answer block requests with forged chains (see [`Forgery`]).
//!
//! Every node answers block requests as the real node's block server does: from the
//! blocks its replica asked it to keep and the committed blocks its storage holds
//! ([`crate::sync::answer`]); the replica never answers them itself.
//!
//! Invariants checked on every run: honest replicas commit one chain (the same block at
//! every height, each commit extending the replica's previous one, with the same
//! certificate signers, which leader reputation reads); an observer of every signed vote
//! and proposal flags any honest validator that signed two different votes, or proposed
//! two different blocks, in one round (a restart must not make it do either).

mod forger;
mod network;

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;

use ordo_types::{Hash32, KeyPair, PublicKey, Signature};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::committee::{ed25519_verify, sim_verify, Committee, Signer, SimSigner};
use crate::config::Config;
use crate::leader::LeaderPolicy;
use crate::messages::ExecutedRoot;
use crate::messages::ValidatorIndex;
use crate::messages::{Block, Message, Round};
use crate::replica::{Action, Event, Replica, Stats};
use crate::safety::SafetyData;
use crate::sync;

use forger::Forger;
pub use forger::Forgery;
pub use network::Partitions;

/// The kind of fault a scenario injects before the network heals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Latency and jitter only.
    None,
    /// Message loss on every link.
    Lossy,
    /// Random partitions that change and heal.
    Partition,
    /// Up to f validators crash (at any point of an action list) and restart.
    CrashRestart,
    /// f validators are down for the whole run.
    Crash,
    /// This many keys run on two nodes each, with per-round partitions.
    Twins(usize),
    /// One validator stays down, with no data, until the heal, then joins: it must catch
    /// up on everything committed before (forward, in bounded answers) and keep up.
    Rejoin,
    /// f twinned keys (as in `Twins(f)`) whose nodes also forge block sync this way.
    ForgedSync(Forgery),
}

impl Fault {
    /// How many keys run on two nodes in a committee of `n`.
    pub fn twins(self, n: usize) -> usize {
        match self {
            Fault::Twins(k) => k.min(n),
            Fault::ForgedSync(_) => (n.max(1) - 1) / 3,
            _ => 0,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => f.write_str("none"),
            Fault::Lossy => f.write_str("lossy"),
            Fault::Partition => f.write_str("partition"),
            Fault::CrashRestart => f.write_str("crash-restart"),
            Fault::Crash => f.write_str("crash"),
            Fault::Rejoin => f.write_str("rejoin"),
            Fault::Twins(k) => write!(f, "twins({k})"),
            Fault::ForgedSync(kind) => write!(f, "forged-sync({kind})"),
        }
    }
}

/// Blocks in a pushed forgery: a short chain reaches the blocks a victim may lack, and
/// longer ones only cost the simulator time.
const UNREQUESTED_BLOCKS: usize = 8;

/// One scenario.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub n: usize,
    pub seed: u64,
    pub fault: Fault,
    /// Simulated run length.
    pub duration_ms: u64,
    /// Faults stop here (except [`Fault::Crash`]); liveness is checked after it.
    pub heal_at_ms: u64,
    pub min_latency_ms: u64,
    pub jitter_ms: u64,
    /// Loss probability before healing in [`Fault::Lossy`] (and a little in others).
    pub loss: f64,
    pub leader_policy: LeaderPolicy,
    /// One payload digest reaches the validators every this many ms; `None`: idle chain.
    pub payload_interval_ms: Option<u64>,
    /// ed25519 keys instead of the simulator's keyed hashes.
    pub real_crypto: bool,
    pub base_timeout_ms: u64,
    pub max_timeout_exponent: u32,
    pub max_batch_delay_ms: u64,
    /// Twins only: one fixed split until the heal (each twin's copies on opposite sides,
    /// honest nodes alternating) instead of per-round partitions.
    pub twins_static_split: bool,
}

impl SimConfig {
    pub fn new(n: usize, seed: u64, fault: Fault) -> Self {
        // Twins keep equivocating after the heal: rounds led by a twinned key split the
        // honest votes and end in a timeout, so commits resume more slowly.
        let duration_ms = match fault {
            Fault::Twins(_) | Fault::ForgedSync(_) => 45_000,
            _ => 20_000,
        };
        Self {
            n,
            seed,
            fault,
            duration_ms,
            heal_at_ms: 8_000,
            min_latency_ms: 5,
            jitter_ms: 45,
            loss: 0.1,
            leader_policy: LeaderPolicy::reputation(n),
            payload_interval_ms: Some(50),
            real_crypto: false,
            base_timeout_ms: 1_000,
            max_timeout_exponent: 1,
            max_batch_delay_ms: 200,
            twins_static_split: false,
        }
    }
}

/// What one run found.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    pub safety_violations: Vec<String>,
    /// Honest validators that signed two different votes, or proposed two different
    /// blocks, in one round.
    pub double_votes: Vec<String>,
    /// Why liveness failed after healing, if it did.
    pub liveness_failure: Option<String>,
    /// Digest of every honest node's commit log, for the determinism check.
    pub fingerprint: Hash32,
    /// (round, payload digests) of the longest honest commit log.
    pub chain: Vec<(Round, usize)>,
    /// Sum over honest nodes.
    pub stats: Stats,
    pub honest_nodes: usize,
    pub messages_delivered: u64,
    /// Forged block responses the Byzantine nodes sent.
    pub forged_responses: u64,
    pub messages_by_kind: BTreeMap<&'static str, u64>,
    /// Each node's final state, for failure reports.
    pub node_states: Vec<String>,
}

impl SimReport {
    pub fn is_safe(&self) -> bool {
        self.safety_violations.is_empty() && self.double_votes.is_empty()
    }

    /// Rounds per committed block over the whole run.
    pub fn rounds_per_block(&self) -> f64 {
        match self.chain.last() {
            Some((r, _)) if !self.chain.is_empty() => *r as f64 / self.chain.len() as f64,
            _ => f64::INFINITY,
        }
    }

    /// Share of rounds in `from_round..=last committed round` that produced a committed
    /// (hence certified) block.
    pub fn certified_round_share(&self, from_round: Round) -> f64 {
        let Some((last, _)) = self.chain.last() else {
            return 0.0;
        };
        if *last < from_round {
            return 0.0;
        }
        let certified = self.chain.iter().filter(|(r, _)| *r >= from_round).count();
        certified as f64 / (last - from_round + 1) as f64
    }
}

#[derive(Clone)]
enum SimKey {
    Real(KeyPair),
    Fake(SimSigner),
}

impl Signer for SimKey {
    fn public_key(&self) -> PublicKey {
        match self {
            SimKey::Real(k) => k.public(),
            SimKey::Fake(s) => s.public_key(),
        }
    }

    fn sign(&self, message: &[u8]) -> Signature {
        match self {
            SimKey::Real(k) => k.sign(message),
            SimKey::Fake(s) => s.sign(message),
        }
    }
}

struct Node {
    validator: usize,
    honest: bool,
    replica: Option<Replica<SimKey>>,
    persisted: Option<Vec<u8>>,
    /// The committed blocks storage would hold.
    log: Vec<Block>,
    timer: Option<u64>,
    /// Crash after executing this many of the next action list's actions.
    crash_after: Option<usize>,
    /// Blocks the replica asked the node to keep (memory: lost in a crash).
    kept: HashMap<Hash32, Block>,
    /// Committed blocks, as storage would hold them.
    stored: HashMap<Hash32, Block>,
    /// Each committed block's height (its place in `log`, plus one: genesis is 0).
    heights: HashMap<Hash32, u64>,
    /// Whether this node forges block sync (its key is a Byzantine one).
    forges: bool,
    /// Heights executed (durable: survives a crash, as a node's store does).
    executed: u64,
    /// The height last reported to the replica as executed alike by 2f others.
    told_ready: u64,
}

enum What {
    Deliver {
        from: PublicKey,
        message: Box<Message>,
    },
    Timer(u64),
    Payload(Vec<Hash32>),
    Crash(usize),
    Restart,
    /// The node executes what it committed: reports each height's root to its replica.
    Execute,
    /// The replica asked for roots it executed but no longer holds.
    LoadRoots {
        from: u64,
        count: u64,
    },
}

struct Scheduled {
    at: u64,
    seq: u64,
    node: usize,
    what: What,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    committee: Committee,
    keys: Vec<SimKey>,
    replica_cfg: Config,
    nodes: Vec<Node>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    now: u64,
    partitions: Partitions,
    /// The chain honest nodes agree on, by height (genesis excluded).
    chain: Vec<(Hash32, Round, usize)>,
    votes_seen: HashMap<(usize, Round), Hash32>,
    proposals_seen: HashMap<(usize, Round), Hash32>,
    /// The signers of the QC in each committed block, by block id, as the first honest
    /// node to commit it recorded them.
    signers_seen: HashMap<Hash32, Vec<ValidatorIndex>>,
    forger: Option<Forger>,
    report: SimReport,
    payload_counter: u64,
}

/// Runs one scenario to completion.
pub fn run(cfg: &SimConfig) -> SimReport {
    let mut sim = Sim::new(cfg.clone());
    sim.run();
    sim.finish()
}

impl Sim {
    fn new(cfg: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let keys: Vec<SimKey> = (0..cfg.n)
            .map(|i| {
                let seed = Hash32::digest_parts(b"ordo/sim-key\0", &[&(i as u64).to_le_bytes()]);
                if cfg.real_crypto {
                    SimKey::Real(KeyPair::from_seed(seed.0))
                } else {
                    SimKey::Fake(SimSigner(PublicKey(seed.0)))
                }
            })
            .collect();
        let committee = Committee::new(0, keys.iter().map(|k| k.public_key()).collect())
            .expect("distinct simulator keys");
        let mut replica_cfg = Config::new(cfg.n);
        replica_cfg.leader_policy = cfg.leader_policy.clone();
        replica_cfg.base_timeout_ms = cfg.base_timeout_ms;
        replica_cfg.max_timeout_exponent = cfg.max_timeout_exponent;
        replica_cfg.max_batch_delay_ms = cfg.max_batch_delay_ms;
        replica_cfg.block_retention = 100_000;
        replica_cfg.max_payload = 64;
        replica_cfg.verify = if cfg.real_crypto {
            ed25519_verify
        } else {
            sim_verify
        };
        let twins = cfg.fault.twins(cfg.n);
        let forger = match cfg.fault {
            Fault::ForgedSync(kind) => Some(Forger::new(kind, cfg.n)),
            _ => None,
        };
        // Twinned keys are the first `twins` validators; their second copies come last.
        let mut nodes: Vec<Node> = (0..cfg.n).map(|v| Node::new(v, v >= twins)).collect();
        nodes.extend((0..twins).map(|v| Node::new(v, false)));
        for node in &mut nodes {
            node.forges = forger.is_some() && !node.honest;
        }
        let partitions = Partitions::new(&cfg, nodes.len(), twins, &mut rng);
        let mut sim = Sim {
            rng,
            committee,
            keys,
            replica_cfg,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            partitions,
            chain: Vec::new(),
            votes_seen: HashMap::new(),
            proposals_seen: HashMap::new(),
            signers_seen: HashMap::new(),
            forger,
            report: SimReport::default(),
            payload_counter: 0,
            cfg,
        };
        sim.schedule_faults();
        sim
    }

    fn push(&mut self, at: u64, node: usize, what: What) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            node,
            what,
        });
    }

    fn schedule_faults(&mut self) {
        let f = self.committee.max_faulty();
        match self.cfg.fault {
            Fault::Crash => {
                // Validators 1..=f never start (0 stays up so that genesis has a leader
                // under round-robin too; it makes no difference to reputation).
                for v in 1..=f {
                    self.nodes[v].replica = None;
                    self.nodes[v].crash_after = Some(usize::MAX);
                }
            }
            Fault::Rejoin => {
                let late = self.nodes.len() - 1;
                self.nodes[late].crash_after = Some(usize::MAX);
                self.push(self.cfg.heal_at_ms, late, What::Restart);
            }
            Fault::CrashRestart => {
                // Validators 0..f take turns crashing, so at most f are down at once.
                for v in 0..f {
                    let mut t = self.rng.gen_range(500..3_000);
                    while t < self.cfg.heal_at_ms {
                        let down = self.rng.gen_range(200..4_000);
                        let after = self.rng.gen_range(0..4);
                        self.push(t, v, What::Crash(after));
                        // Every crashed validator is back by the heal.
                        let back = (t + down).min(self.cfg.heal_at_ms);
                        self.push(back, v, What::Restart);
                        t += down + self.rng.gen_range(500..4_000);
                    }
                }
            }
            _ => {}
        }
    }

    fn start_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let key = self.keys[node.validator].clone();
        let mut replica = match &node.persisted {
            None => Replica::new(self.replica_cfg.clone(), self.committee.clone(), key),
            Some(bytes) => {
                let safety = SafetyData::from_bytes(bytes).expect("simulator persisted it");
                let tail_from = node.log.len().saturating_sub(256);
                let mut tail = vec![];
                if tail_from == 0 {
                    tail.push(Block::genesis(0));
                }
                tail.extend(node.log[tail_from..].iter().cloned());
                let mut replica = Replica::restore(
                    self.replica_cfg.clone(),
                    self.committee.clone(),
                    key,
                    safety,
                    tail,
                );
                // The roots it needs come back through `Action::LoadRoots`.
                replica.restore_executed(node.executed);
                replica
            }
        };
        self.nodes[i].told_ready = 0;
        let actions = replica.start(self.now);
        self.nodes[i].replica = Some(replica);
        self.nodes[i].timer = None;
        self.execute(i, actions);
        // The node's batch store survives; re-announce what is not yet committed.
        let committed: std::collections::HashSet<Hash32> = self.nodes[i]
            .log
            .iter()
            .flat_map(|b| b.payload.iter().copied())
            .collect();
        let digests: Vec<Hash32> = (0..self.payload_counter)
            .map(payload_digest)
            .filter(|d| !committed.contains(d))
            .collect();
        if !digests.is_empty() {
            let now = self.now;
            self.push(now, i, What::Payload(digests));
        }
    }

    fn run(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].crash_after != Some(usize::MAX) {
                self.start_node(i);
            }
        }
        if let Some(interval) = self.cfg.payload_interval_ms {
            let mut t = interval;
            while t < self.cfg.duration_ms {
                self.push(t, usize::MAX, What::Payload(Vec::new()));
                t += interval;
            }
        }
        while let Some(ev) = self.queue.pop() {
            if ev.at > self.cfg.duration_ms {
                break;
            }
            self.now = ev.at;
            self.dispatch(ev);
        }
    }

    fn dispatch(&mut self, ev: Scheduled) {
        let i = ev.node;
        if i == usize::MAX {
            // A client batch became available: every validator stores it after a delay.
            let d = payload_digest(self.payload_counter);
            self.payload_counter += 1;
            for n in 0..self.nodes.len() {
                let delay = self.rng.gen_range(0..=self.cfg.jitter_ms + 20);
                self.push(self.now + delay, n, What::Payload(vec![d]));
            }
            return;
        }
        let event = match ev.what {
            What::Crash(after) => {
                self.nodes[i].crash_after = Some(after);
                return;
            }
            What::Restart => {
                // A crash still pending (the node had no event since) is called off.
                self.nodes[i].crash_after = None;
                if self.nodes[i].replica.is_none() {
                    self.start_node(i);
                }
                return;
            }
            What::Timer(at) => {
                if self.nodes[i].timer != Some(at) {
                    return;
                }
                self.nodes[i].timer = None;
                Event::Tick
            }
            What::Execute => {
                self.execute_committed(i);
                return;
            }
            What::LoadRoots { from, count } => {
                for height in from..from.saturating_add(count) {
                    if !self.report_root(i, height) {
                        break;
                    }
                }
                return;
            }
            What::Payload(d) => Event::PayloadReady(d.into_iter().map(Into::into).collect()),
            What::Deliver { from, message } => {
                self.report.messages_delivered += 1;
                *self
                    .report
                    .messages_by_kind
                    .entry(message.kind())
                    .or_default() += 1;
                if let Message::BlockRequest {
                    block_id,
                    above_round,
                    max,
                } = *message
                {
                    self.serve_blocks(i, from, block_id, above_round, max);
                    return;
                }
                if let Message::CatchUpRequest { after, max } = *message {
                    self.serve_catch_up(i, from, after, max);
                    return;
                }
                Event::Message {
                    from,
                    message: *message,
                }
            }
        };
        let now = self.now;
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return;
        };
        let actions = replica.handle(now, event);
        self.execute(i, actions);
    }

    fn execute(&mut self, i: usize, actions: Vec<Action>) {
        let limit = match self.nodes[i].crash_after.take() {
            Some(k) => k.min(actions.len()),
            None => usize::MAX,
        };
        let crashing = limit != usize::MAX;
        for (k, action) in actions.into_iter().enumerate() {
            if k >= limit {
                break;
            }
            self.execute_one(i, action);
        }
        if crashing {
            // Volatile state is gone; persisted safety data and the commit log remain.
            self.nodes[i].replica = None;
            self.nodes[i].timer = None;
            self.nodes[i].kept.clear();
        }
    }

    fn execute_one(&mut self, i: usize, action: Action) {
        match action {
            Action::Persist(safety) => self.nodes[i].persisted = Some(safety.to_bytes()),
            Action::SetTimer { deadline_ms } => {
                let at = deadline_ms.max(self.now);
                self.nodes[i].timer = Some(at);
                self.push(at, i, What::Timer(at));
            }
            Action::Send { to, message } => {
                if let Message::Vote(v) = &message {
                    self.observe_vote(i, v.round, v.block_id);
                }
                if let Message::BlockRequest {
                    block_id,
                    above_round,
                    max,
                } = &message
                {
                    self.misattribute(i, to, *block_id, *above_round, *max);
                }
                let from = self.keys[self.nodes[i].validator].public_key();
                for j in 0..self.nodes.len() {
                    if j != i && self.keys[self.nodes[j].validator].public_key() == to {
                        self.send(i, j, from, message.clone());
                    }
                }
            }
            Action::Broadcast(message) => {
                if let Message::Proposal(p) = &message {
                    self.observe_proposal(i, &p.block);
                    self.push_unrequested(&p.block);
                }
                let me = self.nodes[i].validator;
                let from = self.keys[me].public_key();
                for j in 0..self.nodes.len() {
                    if self.nodes[j].validator != me {
                        self.send(i, j, from, message.clone());
                    }
                }
            }
            Action::Commit { blocks, .. } => self.observe_commit(i, blocks),
            Action::KeepBlock(block) => {
                self.nodes[i].kept.insert(block.id(), block);
            }
            // Every payload reaches every node (see `dispatch`): nothing to fetch.
            Action::FetchPayload { .. } => {}
            Action::LoadRoots { from, count } => {
                let now = self.now;
                self.push(now, i, What::LoadRoots { from, count });
            }
        }
    }

    /// Node `i`'s block server answers `from`'s request, as the real node's does: from
    /// the blocks kept and the committed ones, while the node is up. A forging node
    /// asked under [`Forgery::Certificate`] or [`Forgery::Signers`] forges its answer.
    fn serve_blocks(&mut self, i: usize, from: PublicKey, id: Hash32, above: Round, max: u16) {
        if self.nodes[i].replica.is_none() {
            return;
        }
        let max = usize::from(max.min(self.replica_cfg.sync_batch));
        let forged = self.nodes[i].forges
            && matches!(
                self.forger.as_ref().map(|f| f.kind),
                Some(Forgery::Certificate | Forgery::Signers)
            );
        let blocks = if forged {
            match self.forger.as_mut() {
                Some(forger) => forger.answer(id, above, max, &mut self.rng),
                None => Vec::new(),
            }
        } else {
            let node = &self.nodes[i];
            sync::answer(
                |id| {
                    node.kept
                        .get(id)
                        .or_else(|| node.stored.get(id))
                        .map(|b| (b.clone(), 0))
                },
                id,
                above,
                max,
                usize::MAX,
            )
        };
        if blocks.is_empty() {
            return;
        }
        let Some(j) = self.node_of(&from) else { return };
        let me = self.keys[self.nodes[i].validator].public_key();
        self.send(i, j, me, Message::BlockResponse { blocks });
    }

    /// Node `i`'s block server answers `from`'s catch-up request from its committed log,
    /// while the node is up.
    fn serve_catch_up(&mut self, i: usize, from: PublicKey, after: Hash32, max: u16) {
        let node = &self.nodes[i];
        if node.replica.is_none() {
            return;
        }
        let genesis = Block::genesis(0).id();
        let blocks = sync::answer_after(
            |id| {
                if *id == genesis {
                    Some(0)
                } else {
                    node.heights.get(id).copied()
                }
            },
            |h| {
                let index = usize::try_from(h.checked_sub(1)?).ok()?;
                node.log.get(index).map(|b| (b.clone(), 0))
            },
            after,
            usize::from(max.min(self.replica_cfg.sync_batch)),
            usize::MAX,
        );
        if blocks.is_empty() {
            return;
        }
        let Some(j) = self.node_of(&from) else { return };
        let me = self.keys[self.nodes[i].validator].public_key();
        self.send(i, j, me, Message::CatchUpResponse { after, blocks });
    }

    /// The first node running `key`.
    fn node_of(&self, key: &PublicKey) -> Option<usize> {
        (0..self.nodes.len()).find(|&j| self.keys[self.nodes[j].validator].public_key() == *key)
    }

    /// A forging node that sees an honest node's request to someone else answers it
    /// first, with a forged chain, in its own name ([`Forgery::Misattributed`]).
    fn misattribute(&mut self, i: usize, to: PublicKey, id: Hash32, above: Round, max: u16) {
        if !self.nodes[i].honest
            || self.forger.as_ref().map(|f| f.kind) != Some(Forgery::Misattributed)
        {
            return;
        }
        let Some(forging) = (0..self.nodes.len()).find(|&k| self.nodes[k].forges) else {
            return;
        };
        let key = self.keys[self.nodes[forging].validator].public_key();
        if key == to {
            return;
        }
        let max = usize::from(max.min(self.replica_cfg.sync_batch));
        let Some(forger) = self.forger.as_mut() else {
            return;
        };
        let blocks = forger.answer(id, above, max, &mut self.rng);
        if !blocks.is_empty() {
            // Faster than any honest answer: the request has not even left yet.
            self.deliver_now(i, key, Message::BlockResponse { blocks });
        }
    }

    /// Every proposal is also seen by the forgers; under [`Forgery::Unrequested`] one of
    /// them pushes a forged chain ending at its parent to every honest node.
    fn push_unrequested(&mut self, block: &Block) {
        let Some(forger) = self.forger.as_mut() else {
            return;
        };
        forger.observe(block);
        if forger.kind != Forgery::Unrequested || !self.rng.gen_bool(0.3) {
            return;
        }
        let target = if self.rng.gen_bool(0.5) {
            Some(block.parent())
        } else {
            forger.recent(&mut self.rng)
        };
        let Some(target) = target else { return };
        let blocks = forger.answer(target, 0, UNREQUESTED_BLOCKS, &mut self.rng);
        let Some(forging) = (0..self.nodes.len()).find(|&k| self.nodes[k].forges) else {
            return;
        };
        if blocks.is_empty() {
            return;
        }
        let key = self.keys[self.nodes[forging].validator].public_key();
        for j in 0..self.nodes.len() {
            if self.nodes[j].honest {
                self.send(
                    forging,
                    j,
                    key,
                    Message::BlockResponse {
                        blocks: blocks.clone(),
                    },
                );
            }
        }
    }

    /// Delivers in a millisecond, past partitions and loss.
    fn deliver_now(&mut self, j: usize, from: PublicKey, message: Message) {
        let at = self.now + 1;
        self.push(
            at,
            j,
            What::Deliver {
                from,
                message: Box::new(message),
            },
        );
    }

    fn send(&mut self, i: usize, j: usize, from: PublicKey, message: Message) {
        let healed = self.now >= self.cfg.heal_at_ms;
        if !healed {
            let round = message.round();
            if !self.partitions.connected(i, j, self.now, round) {
                return;
            }
            let loss = match self.cfg.fault {
                Fault::Lossy => self.cfg.loss,
                _ => self.cfg.loss / 10.0,
            };
            if self.rng.gen_bool(loss.clamp(0.0, 1.0)) {
                return;
            }
        }
        // Encode and decode every message, as the network would.
        let bytes = message.encode();
        let Ok(message) = Message::decode(&bytes) else {
            return;
        };
        let delay = self.cfg.min_latency_ms + self.rng.gen_range(0..=self.cfg.jitter_ms);
        let message = Box::new(message);
        self.push(self.now + delay, j, What::Deliver { from, message });
    }

    fn observe_proposal(&mut self, i: usize, block: &Block) {
        if !self.nodes[i].honest {
            return;
        }
        let v = self.nodes[i].validator;
        let id = block.id();
        match self.proposals_seen.get(&(v, block.round)) {
            Some(b) if *b != id => self.report.double_votes.push(format!(
                "validator {v} proposed {} and {} in round {}",
                b.short(),
                id.short(),
                block.round
            )),
            Some(_) => {}
            None => {
                self.proposals_seen.insert((v, block.round), id);
            }
        }
    }

    fn observe_vote(&mut self, i: usize, round: Round, block: Hash32) {
        if !self.nodes[i].honest {
            return;
        }
        let v = self.nodes[i].validator;
        match self.votes_seen.get(&(v, round)) {
            Some(b) if *b != block => self.report.double_votes.push(format!(
                "validator {v} voted for {} and {} in round {round}",
                b.short(),
                block.short()
            )),
            Some(_) => {}
            None => {
                self.votes_seen.insert((v, round), block);
            }
        }
    }

    /// Reports what node `i` executed at `height` to its replica; false if it did not.
    fn report_root(&mut self, i: usize, height: u64) -> bool {
        let Some(executed) = self.nodes[i].executed_root(height) else {
            return false;
        };
        let now = self.now;
        if let Some(replica) = self.nodes[i].replica.as_mut() {
            let actions = replica.handle(now, Event::executed(height, executed));
            self.execute(i, actions);
        }
        true
    }

    /// Node `i` executes the heights it committed (reporting each root), and every node
    /// learns how far 2f others executed alike with it, as the node's root tracker tells.
    fn execute_committed(&mut self, i: usize) {
        let now = self.now;
        let to = self.nodes[i].log.len() as u64;
        let from = self.nodes[i].executed + 1;
        if self.nodes[i].replica.is_none() {
            return;
        }
        for height in from..=to {
            self.nodes[i].executed = height;
            self.report_root(i, height);
        }
        let others_needed = self.committee.quorum() - 1;
        for j in 0..self.nodes.len() {
            let mut others: Vec<u64> = (0..self.nodes.len())
                .filter(|k| self.nodes[*k].validator != self.nodes[j].validator)
                .map(|k| self.nodes[k].executed)
                .collect();
            others.sort_unstable_by(|a, b| b.cmp(a));
            let alike = if others_needed == 0 {
                u64::MAX
            } else {
                others.get(others_needed - 1).copied().unwrap_or(0)
            };
            let ready = alike.min(self.nodes[j].executed);
            if ready <= self.nodes[j].told_ready {
                continue;
            }
            self.nodes[j].told_ready = ready;
            if let Some(replica) = self.nodes[j].replica.as_mut() {
                let actions = replica.handle(now, Event::PeersExecuted { height: ready });
                self.execute(j, actions);
            }
        }
    }

    fn observe_commit(&mut self, i: usize, blocks: Vec<Block>) {
        if !blocks.is_empty() {
            let delay = self.rng.gen_range(0..=self.cfg.jitter_ms + 20);
            self.push(self.now + delay, i, What::Execute);
        }
        for b in blocks {
            let id = b.id();
            let node = &mut self.nodes[i];
            let expected_parent = node
                .log
                .last()
                .map(|p| p.id())
                .unwrap_or_else(|| Block::genesis(0).id());
            if node.honest && b.parent() != expected_parent {
                self.report.safety_violations.push(format!(
                    "node {i} committed {b} whose parent is not its previous commit"
                ));
            }
            let height = node.log.len();
            let carried_next = node.log.last().map_or(1, |p| p.state.next());
            if node.honest && b.state.first != carried_next {
                self.report.safety_violations.push(format!(
                    "node {i} committed {b} whose state roots start at {}, not {carried_next}",
                    b.state.first
                ));
            }
            if node.honest && b.state.iter().any(|(h, r)| r.root != sim_root(h, true)) {
                self.report.safety_violations.push(format!(
                    "node {i} committed {b}, which carries a root no honest node computed"
                ));
            }
            node.log.push(b.clone());
            node.stored.insert(id, b.clone());
            node.heights.insert(id, height as u64 + 1);
            if !node.honest {
                continue;
            }
            let signers: Vec<ValidatorIndex> = b.qc.signatures.iter().map(|s| s.0).collect();
            match self.signers_seen.get(&id) {
                Some(first) if *first != signers => {
                    self.report.safety_violations.push(format!(
                        "history divergence at height {height}: node {i} committed {b} \
                         with QC signers {signers:?}, another honest node with {first:?}"
                    ));
                }
                Some(_) => {}
                None => {
                    self.signers_seen.insert(id, signers);
                }
            }
            match self.chain.get(height) {
                Some((other, _, _)) if *other != id => {
                    self.report.safety_violations.push(format!(
                        "fork at height {height}: node {i} committed {b}, another honest node {}",
                        other.short()
                    ));
                }
                Some(_) => {}
                None => self.chain.push((id, b.round, b.payload.len())),
            }
        }
    }

    fn finish(mut self) -> SimReport {
        let heal_height =
            |log: &Vec<Block>, heal: u64| log.iter().filter(|b| b.timestamp_ms < heal).count();
        let mut fingerprint_parts: Vec<u8> = Vec::new();
        let mut honest = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.honest {
                continue;
            }
            honest += 1;
            for b in &node.log {
                fingerprint_parts.extend_from_slice(b.id().as_bytes());
            }
            fingerprint_parts.extend_from_slice(&(i as u64).to_le_bytes());
            let Some(replica) = &node.replica else {
                self.report.node_states.push(format!("node {i}: down"));
                continue;
            };
            self.report.node_states.push(format!(
                "node {i} (validator {}): {}",
                node.validator,
                replica.describe()
            ));
            add_stats(&mut self.report.stats, replica.stats());
            if self.report.liveness_failure.is_none() && self.cfg.fault != Fault::Crash {
                // Blocks proposed after healing must reach every live honest node.
                let after = node.log.len() - heal_height(&node.log, self.cfg.heal_at_ms);
                if after < 2 {
                    self.report.liveness_failure = Some(format!(
                        "node {i} committed {after} blocks proposed after the heal at {} ms (round {}, {} blocks in all)",
                        self.cfg.heal_at_ms,
                        replica.round(),
                        node.log.len()
                    ));
                }
                // Roots are certified again after healing: every height committed before
                // it is carried by the end.
                let certified = node.log.last().map_or(0, |b| b.state.next() - 1);
                let before = heal_height(&node.log, self.cfg.heal_at_ms) as u64;
                if self.report.liveness_failure.is_none() && certified < before {
                    self.report.liveness_failure = Some(format!(
                        "node {i} committed a chain certifying roots up to height {certified}, \
                         below the {before} blocks committed before the heal"
                    ));
                }
            }
        }
        if self.cfg.fault == Fault::Crash && self.chain.len() < 2 {
            self.report.liveness_failure = Some("no progress with f crashed".into());
        }
        self.report.honest_nodes = honest;
        self.report.forged_responses = self.forger.as_ref().map_or(0, |f| f.sent);
        self.report.fingerprint = Hash32::digest(b"ordo/sim-fingerprint\0", &fingerprint_parts);
        self.report.chain = self.chain.iter().map(|(_, r, p)| (*r, *p)).collect();
        self.report
    }
}

impl Node {
    fn new(validator: usize, honest: bool) -> Self {
        Node {
            validator,
            honest,
            replica: None,
            persisted: None,
            log: Vec::new(),
            timer: None,
            crash_after: None,
            kept: HashMap::new(),
            stored: HashMap::new(),
            heights: HashMap::new(),
            forges: false,
            executed: 0,
            told_ready: 0,
        }
    }
}

/// The state root a node computes at `height`: execution is not simulated, only its
/// reports to consensus (see `crate::state_roots`). Byzantine nodes compute another and
/// carry it in the blocks they lead (the readiness count below counts every node's
/// executed height, as if Byzantine ones announced copies of honest roots); honest ones
/// must never certify it.
fn sim_root(height: u64, honest: bool) -> Hash32 {
    let tag: &[u8] = if honest {
        b"ordo/sim-root\0"
    } else {
        b"ordo/sim-bad-root\0"
    };
    Hash32::digest(tag, &height.to_le_bytes())
}

impl Node {
    /// What this node reports having executed at `height` (at most its executed height).
    fn executed_root(&self, height: u64) -> Option<ExecutedRoot> {
        if height == 0 || height > self.executed {
            return None;
        }
        let block = self.log.get(usize::try_from(height - 1).ok()?)?.id();
        Some(ExecutedRoot {
            block,
            root: sim_root(height, self.honest),
        })
    }
}

fn payload_digest(i: u64) -> Hash32 {
    Hash32::digest(b"ordo/sim-batch\0", &i.to_le_bytes())
}

fn add_stats(total: &mut Stats, s: &Stats) {
    total.rounds_entered += s.rounds_entered;
    total.local_timeouts += s.local_timeouts;
    total.proposals += s.proposals;
    total.empty_proposals += s.empty_proposals;
    total.votes += s.votes;
    total.qcs_formed += s.qcs_formed;
    total.tcs_formed += s.tcs_formed;
    total.committed_blocks += s.committed_blocks;
    total.invalid_messages += s.invalid_messages;
    total.block_requests += s.block_requests;
    total.catch_up_requests += s.catch_up_requests;
    total.catch_up_blocks += s.catch_up_blocks;
    total.max_orphans = total.max_orphans.max(s.max_orphans);
    total.root_refusals += s.root_refusals;
}

/// Counts of scenarios per fault kind, for the summary line.
pub fn summarize(kinds: &BTreeMap<String, usize>) -> String {
    kinds
        .iter()
        .map(|(k, c)| format!("{k}: {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The seed of scenario `i` of a run seeded with `base`.
pub fn scenario_seed(base: u64, i: u64) -> u64 {
    let h = Hash32::digest_parts(
        b"ordo/sim-scenario\0",
        &[&base.to_le_bytes(), &i.to_le_bytes()],
    );
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&h.0[..8]);
    u64::from_le_bytes(bytes)
}

/// Everything about a scenario follows from its seed, so the seed alone replays it:
/// n in {4, 7, 10}, every fault kind and every block-sync forgery, both leader policies,
/// idle or loaded, and a slice of the runs with real ed25519.
pub fn scenario(seed: u64) -> SimConfig {
    let n = [4, 7, 10][(seed % 3) as usize];
    let f = (n - 1) / 3;
    // Forged sync is one kind of seven, its four behaviours taking turns within it: its
    // scenarios cost twice a twins scenario's (more messages, longer runs).
    let forgeries = Forgery::ALL.len() as u64;
    let fault = match (seed / 3) % 7 {
        0 => Fault::None,
        1 => Fault::Lossy,
        2 => Fault::Partition,
        3 => Fault::CrashRestart,
        4 => Fault::Crash,
        5 => Fault::Twins(f),
        _ => Fault::ForgedSync(Forgery::ALL[((seed / 42) % forgeries) as usize]),
    };
    let mut cfg = SimConfig::new(n, seed, fault);
    if (seed / 21) % 2 == 1 {
        cfg.leader_policy = LeaderPolicy::RoundRobin;
    }
    cfg.real_crypto = (seed / (42 * forgeries)) % 100 == 0;
    if (seed / 900) % 4 == 0 {
        cfg.payload_interval_ms = None;
    }
    cfg
}
