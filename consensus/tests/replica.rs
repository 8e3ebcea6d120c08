//! The replica on its own: ordering of persist and send, validation of hostile input,
//! restart, payload availability and idle pacing. Real ed25519 keys throughout.

use std::collections::{HashMap, VecDeque};

use ordo_consensus::messages::{proposal_digest, vote_digest};
use ordo_consensus::{
    Action, Block, Committee, Config, Event, ExecutedRoot, Message, Proposal, QuorumCert,
    ReadyPayload, Replica, SafetyData, StateRoots, Vote,
};
use ordo_types::{Hash32, KeyPair, Signature};

const N: usize = 4;

fn keys() -> Vec<KeyPair> {
    (0..N)
        .map(|i| KeyPair::from_seed([i as u8 + 1; 32]))
        .collect()
}

fn committee(keys: &[KeyPair]) -> Committee {
    Committee::new(0, keys.iter().map(|k| k.public()).collect()).unwrap()
}

fn config() -> Config {
    let mut cfg = Config::new(N);
    cfg.require_payload_available = false;
    cfg
}

/// Synchronous delivery between replicas, recording every action list.
struct Net {
    keys: Vec<KeyPair>,
    replicas: Vec<Replica<KeyPair>>,
    queue: VecDeque<(usize, usize, Message)>,
    lists: Vec<(usize, Vec<Action>)>,
    commits: Vec<Vec<Hash32>>,
    /// What each node's block server holds.
    kept: Vec<HashMap<Hash32, Block>>,
    now: u64,
}

impl Net {
    fn new(cfg: Config) -> Self {
        let keys = keys();
        let c = committee(&keys);
        let replicas = keys
            .iter()
            .map(|k| Replica::new(cfg.clone(), c.clone(), k.clone()))
            .collect();
        let mut net = Net {
            keys,
            replicas,
            queue: VecDeque::new(),
            lists: Vec::new(),
            commits: vec![Vec::new(); N],
            kept: vec![HashMap::new(); N],
            now: 0,
        };
        for i in 0..N {
            let actions = net.replicas[i].start(0);
            net.apply(i, actions);
        }
        net
    }

    fn index(&self, key: &ordo_types::PublicKey) -> usize {
        self.keys.iter().position(|k| k.public() == *key).unwrap()
    }

    fn apply(&mut self, i: usize, actions: Vec<Action>) {
        for a in &actions {
            match a {
                Action::Send { to, message } => {
                    let j = self.index(to);
                    self.queue.push_back((i, j, message.clone()));
                }
                Action::Broadcast(message) => {
                    for j in (0..N).filter(|j| *j != i) {
                        self.queue.push_back((i, j, message.clone()));
                    }
                }
                Action::Commit { blocks, .. } => {
                    self.commits[i].extend(blocks.iter().map(Block::id));
                }
                Action::KeepBlock(b) => {
                    self.kept[i].insert(b.id(), b.clone());
                }
                Action::Persist(_)
                | Action::SetTimer { .. }
                | Action::FetchPayload { .. }
                | Action::LoadRoots { .. } => {}
            }
        }
        self.lists.push((i, actions));
    }

    fn event(&mut self, i: usize, event: Event) {
        let actions = self.replicas[i].handle(self.now, event);
        self.apply(i, actions);
    }

    fn run(&mut self, skip: &[usize]) {
        while let Some((from, to, message)) = self.queue.pop_front() {
            if skip.contains(&to) {
                continue;
            }
            self.deliver(from, to, message);
        }
    }

    /// Hands one message to `to`; block requests go to its block server.
    fn deliver(&mut self, from: usize, to: usize, message: Message) {
        if let Message::BlockRequest {
            block_id,
            above_round,
            max,
        } = message
        {
            // The node's block server answers, not the replica.
            let kept = &self.kept[to];
            let blocks = ordo_consensus::sync::answer(
                |id| kept.get(id).map(|b| (b.clone(), 0)),
                block_id,
                above_round,
                usize::from(max),
                usize::MAX,
            );
            if !blocks.is_empty() {
                self.queue
                    .push_back((to, from, Message::BlockResponse { blocks }));
            }
            return;
        }
        let from = self.keys[from].public();
        self.event(to, Event::Message { from, message });
    }

    /// Advances time by `ms` and ticks every live replica.
    fn tick(&mut self, ms: u64, skip: &[usize]) {
        self.now += ms;
        for i in (0..N).filter(|i| !skip.contains(i)) {
            self.event(i, Event::Tick);
        }
        self.run(skip);
    }
}

#[test]
fn replicas_commit_one_chain_and_persist_before_speaking() {
    let mut net = Net::new(config());
    for _ in 0..40 {
        net.tick(300, &[]);
    }
    // One replica down forces timeouts, which must also be persisted first.
    for _ in 0..40 {
        net.tick(700, &[3]);
    }
    let shortest = net.commits.iter().map(Vec::len).min().unwrap();
    assert!(shortest >= 20, "only {shortest} blocks committed");
    for log in &net.commits {
        let common = log.len().min(net.commits[0].len());
        assert_eq!(log[..common], net.commits[0][..common]);
    }
    let mut votes = 0;
    let mut timeouts = 0;
    // A replica re-sends its timeout while the round lasts; only the first send of a round's
    // timeout signs anything new.
    let mut sent_timeouts = std::collections::HashSet::new();
    for (replica, actions) in &net.lists {
        for (k, a) in actions.iter().enumerate() {
            let signed = match a {
                Action::Send {
                    message: Message::Vote(_),
                    ..
                } => {
                    votes += 1;
                    true
                }
                Action::Broadcast(Message::Timeout(t)) => {
                    timeouts += 1;
                    sent_timeouts.insert((*replica, t.round))
                }
                _ => false,
            };
            if signed {
                assert!(
                    actions[..k].iter().any(|a| matches!(a, Action::Persist(_))),
                    "vote or timeout sent before its safety data was persisted: {actions:?}"
                );
            }
        }
    }
    assert!(
        votes > 50 && timeouts > 0,
        "{votes} votes, {timeouts} timeouts"
    );
}

/// A replica that fell behind hears the newest messages (a proposal, with its
/// certificate) before the blocks that certificate follows, which reach it afterwards,
/// newest first. Whenever it holds the block its high QC certifies, it must name the same
/// leader as its peers, and once caught up no round may time out or have two proposers.
/// (A lagging validator that judged leaders from a shorter committed history took itself
/// for a round's leader and refused its peers' one in 60-s ordering-only runs; this
/// ordering of its mail does not reach that state, which a replica now also guards
/// against by committing what its high QC commits before naming a leader.)
#[test]
fn a_replica_that_learns_a_certificate_before_its_blocks_names_the_same_leaders() {
    const LATE: usize = 3;
    let mut net = Net::new(config());
    for _ in 0..40 {
        net.tick(300, &[]);
    }
    let mut late_mail = Vec::new();
    for _ in 0..6 {
        net.now += 300;
        for i in 0..N {
            net.event(i, Event::Tick);
        }
        // Everything for LATE is held back; the others carry on.
        while let Some((from, to, message)) = net.queue.pop_front() {
            if to == LATE {
                late_mail.push((from, message));
                continue;
            }
            net.deliver(from, to, message);
        }
    }
    assert!(
        late_mail.len() > 6,
        "too little held back: {}",
        late_mail.len()
    );
    let first = net.lists.len();
    let released = net.replicas.iter().map(|r| r.round()).max().unwrap();
    // Newest first: the current proposal, with its certificate, before the blocks.
    for (from, message) in late_mail.into_iter().rev() {
        net.queue.push_back((from, LATE, message));
    }
    // Whenever the late replica holds the block its high QC certifies, it must name the
    // leader of its round as a peer that is already there does.
    let mut disagreements = Vec::new();
    while let Some((from, to, message)) = net.queue.pop_front() {
        net.deliver(from, to, message);
        if to == LATE {
            let late = &mut net.replicas[LATE];
            let (round, certified) = (late.round(), late.high_qc().block_id);
            let mine = late.leader_of(round);
            let theirs = net.replicas[0].leader_of(round);
            if net.kept[LATE].contains_key(&certified) && mine != theirs {
                disagreements.push(round);
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "the late replica named other leaders than its peers in rounds {disagreements:?}"
    );
    for _ in 0..10 {
        net.tick(300, &[]);
    }
    let mut authors: HashMap<u64, std::collections::BTreeSet<usize>> = HashMap::new();
    let mut timeouts = Vec::new();
    for (i, actions) in &net.lists[first..] {
        for a in actions {
            match a {
                Action::Broadcast(Message::Proposal(p)) => {
                    authors.entry(p.block.round).or_default().insert(*i);
                }
                // Rounds the held-back replica led or collected votes for could not end
                // without it; the ones after its release must.
                Action::Broadcast(Message::Timeout(t)) if t.round > released => {
                    timeouts.push((*i, t.round));
                }
                _ => {}
            }
        }
    }
    let split: Vec<_> = authors.iter().filter(|(_, a)| a.len() > 1).collect();
    assert!(split.is_empty(), "rounds with two leaders: {split:?}");
    assert!(
        timeouts.is_empty(),
        "view changes (replica, round) after the late replica caught up: {timeouts:?}"
    );
    assert!(
        authors.len() >= 8,
        "only {} rounds proposed after",
        authors.len()
    );
}

/// A validator that leads neither round 1 nor round 2, so that its round-1 vote is sent.
fn follower_index(probe: &mut Replica<KeyPair>, keys: &[KeyPair]) -> usize {
    let busy = [probe.leader_of(1), probe.leader_of(2)];
    keys.iter()
        .position(|k| !busy.contains(&k.public()))
        .unwrap()
}

/// A replica in round 1 that is not its leader, and the leader's key.
fn follower() -> (Vec<KeyPair>, Replica<KeyPair>, usize) {
    follower_with(config())
}

/// [`follower`] under `cfg`.
fn follower_with(cfg: Config) -> (Vec<KeyPair>, Replica<KeyPair>, usize) {
    let keys = keys();
    let c = committee(&keys);
    let mut probe = Replica::new(cfg.clone(), c.clone(), keys[0].clone());
    let leader_key = probe.leader_of(1);
    let leader = keys.iter().position(|k| k.public() == leader_key).unwrap();
    let me = follower_index(&mut probe, &keys);
    let mut r = Replica::new(cfg, c, keys[me].clone());
    r.start(0);
    (keys, r, leader)
}

fn proposal(keys: &[KeyPair], author: usize, round: u64, qc: QuorumCert) -> Proposal {
    let block = Block {
        epoch: 0,
        round,
        author: author as u16,
        timestamp_ms: 1,
        payload: vec![Hash32::digest(b"test-batch\0", &round.to_le_bytes())],
        state: Default::default(),
        qc,
    };
    signed(keys, author, block)
}

/// `block` proposed and signed by `author`.
fn signed(keys: &[KeyPair], author: usize, block: Block) -> Proposal {
    let signature = keys[author].sign(proposal_digest(0, block.round, &block.id()).as_bytes());
    Proposal {
        block,
        tc: None,
        signature,
    }
}

fn deliver(r: &mut Replica<KeyPair>, keys: &[KeyPair], from: usize, m: Message) -> Vec<Action> {
    r.handle(
        10,
        Event::Message {
            from: keys[from].public(),
            message: m,
        },
    )
}

fn has_vote(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Send {
                message: Message::Vote(_),
                ..
            }
        )
    })
}

#[test]
fn valid_proposal_gets_a_vote() {
    let (keys, mut r, leader) = follower();
    let p = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let actions = deliver(&mut r, &keys, leader, Message::Proposal(p));
    assert!(has_vote(&actions), "{actions:?}");
    assert_eq!(r.stats().invalid_messages, 0);
}

#[test]
fn hostile_messages_are_rejected_and_counted() {
    let (keys, mut r, leader) = follower();
    let genesis = QuorumCert::genesis(0);
    let mut cases: Vec<(usize, Message)> = Vec::new();

    let mut bad_sig = proposal(&keys, leader, 1, genesis.clone());
    bad_sig.signature = Signature([7; 64]);
    cases.push((leader, Message::Proposal(bad_sig)));

    let not_leader = (leader + 2) % N;
    cases.push((
        not_leader,
        Message::Proposal(proposal(&keys, not_leader, 1, genesis.clone())),
    ));

    // Sent by one validator in another's name.
    cases.push((
        not_leader,
        Message::Proposal(proposal(&keys, leader, 1, genesis.clone())),
    ));

    // A round-2 block with a QC for round 1 signed by too few, then by one signer twice.
    let target = proposal(&keys, leader, 1, genesis.clone()).block;
    let sign = |i: usize| {
        let d = vote_digest(0, 1, &target.id(), 0, &genesis.block_id);
        (i as u16, keys[i].sign(d.as_bytes()))
    };
    let mut weak = QuorumCert {
        round: 1,
        block_id: target.id(),
        parent_round: 0,
        parent_id: genesis.block_id,
        signatures: vec![sign(0), sign(1)],
    };
    cases.push((
        leader,
        Message::Proposal(proposal(&keys, leader, 2, weak.clone())),
    ));
    weak.signatures = vec![sign(0), sign(1), sign(1)];
    cases.push((
        leader,
        Message::Proposal(proposal(&keys, leader, 2, weak.clone())),
    ));
    weak.signatures = vec![sign(0), sign(1), (9, sign(2).1)];
    cases.push((
        leader,
        Message::Proposal(proposal(&keys, leader, 2, weak.clone())),
    ));
    // A forged signature inside an otherwise well-formed QC.
    weak.signatures = vec![sign(0), sign(1), (2, Signature([3; 64]))];
    cases.push((leader, Message::Proposal(proposal(&keys, leader, 2, weak))));

    // Far ahead, and a round not justified by QC or TC.
    cases.push((
        leader,
        Message::Proposal(proposal(&keys, leader, 1_000_000, genesis.clone())),
    ));
    cases.push((
        leader,
        Message::Proposal(proposal(&keys, leader, 5, genesis.clone())),
    ));

    // A vote with a bad signature, and a timeout whose signature is garbage.
    cases.push((
        leader,
        Message::Vote(Vote {
            round: 1,
            block_id: target.id(),
            parent_round: 0,
            parent_id: genesis.block_id,
            author: leader as u16,
            signature: Signature([1; 64]),
        }),
    ));
    cases.push((
        leader,
        Message::BlockResponse {
            blocks: vec![target.clone()],
        },
    ));

    // Rounds at the edge of the integer range.
    let mut edge = proposal(&keys, leader, u64::MAX, genesis.clone());
    edge.tc = Some(ordo_consensus::TimeoutCert {
        round: u64::MAX,
        high_qc: genesis.clone(),
        signatures: vec![],
    });
    cases.push((leader, Message::Proposal(edge)));
    cases.push((
        leader,
        Message::Timeout(ordo_consensus::Timeout {
            round: u64::MAX,
            high_qc: genesis.clone(),
            last_tc: None,
            commit_qc: genesis.clone(),
            author: leader as u16,
            signature: Signature([0; 64]),
        }),
    ));

    let total = cases.len() as u64;
    for (from, m) in cases {
        let before = r.stats().invalid_messages;
        let actions = deliver(&mut r, &keys, from, m.clone());
        assert!(!has_vote(&actions), "voted for {m}");
        // The vote with a bad signature is only checked once a quorum is in, so it is not
        // counted here; everything else is rejected at once.
        if !matches!(m, Message::Vote(_)) {
            assert_eq!(r.stats().invalid_messages, before + 1, "accepted {m}");
        }
    }
    assert_eq!(r.stats().invalid_messages, total - 1);

    // A stranger's message.
    let stranger = KeyPair::from_seed([99; 32]);
    let p = proposal(&keys, leader, 1, genesis.clone());
    r.handle(
        10,
        Event::Message {
            from: stranger.public(),
            message: Message::Proposal(p.clone()),
        },
    );
    assert_eq!(r.stats().invalid_messages, total);

    // A vote at the last round is dropped without arithmetic overflow.
    deliver(
        &mut r,
        &keys,
        leader,
        Message::Vote(Vote {
            round: u64::MAX,
            block_id: target.id(),
            parent_round: u64::MAX - 1,
            parent_id: genesis.block_id,
            author: leader as u16,
            signature: Signature([1; 64]),
        }),
    );

    // Garbage bytes never reach the replica: decoding fails with an error.
    assert!(Message::decode(&[0xff; 40]).is_err());

    // After all that, the honest proposal still gets its vote.
    assert!(has_vote(&propose(&mut r, &keys, leader, p)));
}

#[test]
fn restarted_replica_does_not_vote_twice_in_a_round() {
    let (keys, mut r, leader) = follower();
    let p = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let actions = deliver(&mut r, &keys, leader, Message::Proposal(p.clone()));
    let persisted = actions
        .iter()
        .find_map(|a| match a {
            Action::Persist(s) => Some(s.to_bytes()),
            _ => None,
        })
        .expect("vote persisted");
    let me = follower_index(
        &mut Replica::new(config(), committee(&keys), keys[0].clone()),
        &keys,
    );
    let mut restarted = Replica::restore(
        config(),
        committee(&keys),
        keys[me].clone(),
        SafetyData::from_bytes(&persisted).unwrap(),
        vec![Block::genesis(0)],
    );
    restarted.start(20);
    // An equivocating leader's second block for round 1 must not get a vote either.
    let mut other = p.block.clone();
    other.payload.clear();
    let equivocation = signed(&keys, leader, other);
    for m in [Message::Proposal(p), Message::Proposal(equivocation)] {
        let actions = deliver(&mut restarted, &keys, leader, m);
        assert!(!has_vote(&actions), "voted twice in round 1: {actions:?}");
    }
}

/// The leader of round 1 with `payload` reported available, and what it did.
fn leader_proposing(payload: Hash32) -> (Vec<KeyPair>, usize, Vec<Action>) {
    let keys = keys();
    let leader_key = Replica::new(config(), committee(&keys), keys[0].clone()).leader_of(1);
    let leader = keys.iter().position(|k| k.public() == leader_key).unwrap();
    let mut r = Replica::new(config(), committee(&keys), keys[leader].clone());
    r.start(0);
    let actions = r.handle(5, Event::PayloadReady(vec![payload.into()]));
    (keys, leader, actions)
}

fn proposals(actions: &[Action]) -> Vec<Block> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Proposal(p)) => Some(p.block.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_fresh_leader_persists_its_proposal_first_and_resends_it_after_a_restart() {
    let (keys, leader, actions) = leader_proposing(Hash32([1; 32]));
    let sent = actions
        .iter()
        .position(|a| matches!(a, Action::Broadcast(Message::Proposal(_))))
        .expect("the leader proposes");
    let block = proposals(&actions).remove(0);
    let persisted = actions[..sent]
        .iter()
        .find_map(|a| match a {
            Action::Persist(s) if s.proposal.as_ref().map(|p| p.block.id()) == Some(block.id()) => {
                Some(s.to_bytes())
            }
            _ => None,
        })
        .expect("the proposal is persisted before it is sent");

    // Restarted in the same round with other payload at hand: the same block again, not
    // a second one that peers would count as the leader's equivocation.
    let mut restarted = Replica::restore(
        config(),
        committee(&keys),
        keys[leader].clone(),
        SafetyData::from_bytes(&persisted).unwrap(),
        vec![Block::genesis(0)],
    );
    let mut again = restarted.start(50);
    again.extend(restarted.handle(60, Event::PayloadReady(vec![Hash32([2; 32]).into()])));
    let resent = proposals(&again);
    assert_eq!(
        resent.iter().map(Block::id).collect::<Vec<_>>(),
        vec![block.id()],
        "{again:?}"
    );
    assert!(!has_vote(&again), "voted twice in its own round");
}

/// For every proposal sent in a run, the safety data durable at that moment (the last
/// persisted before it in that replica's action lists) must keep a restart from proposing
/// a different block in its round: it holds that very proposal, or its restart floor
/// covers the round. (The consensus simulator crashes replicas between any two actions and
/// checks that no replica proposes two blocks in a round.) In steady state the leader
/// signed in the round before, so its proposal leaves before any write of its own.
#[test]
fn every_proposal_is_covered_by_what_was_durable_when_it_was_sent() {
    let mut net = Net::new(config());
    for _ in 0..30 {
        net.tick(300, &[]);
    }
    let mut durable: Vec<SafetyData> = (0..N).map(|_| SafetyData::new(0)).collect();
    let (mut checked, mut sent_before_write) = (0, 0);
    for (i, actions) in &net.lists {
        let mut written_in_list = false;
        for a in actions {
            match a {
                Action::Persist(s) => {
                    durable[*i] = s.clone();
                    written_in_list = true;
                }
                Action::Broadcast(Message::Proposal(p)) => {
                    let round = p.block.round;
                    let d = &durable[*i];
                    let resent = d.proposal_for(round).map(|q| q.block.id());
                    assert!(
                        resent == Some(p.block.id()) || d.restart_floor() >= round,
                        "replica {i} proposed in round {round} with nothing durable to stop a \
                         restart from proposing again (floor {}, proposal {resent:?})",
                        d.restart_floor()
                    );
                    checked += 1;
                    if !written_in_list {
                        sent_before_write += 1;
                    }
                }
                _ => {}
            }
        }
    }
    assert!(checked > 20, "only {checked} proposals");
    assert!(
        sent_before_write + 2 >= checked,
        "only {sent_before_write} of {checked} proposals left before a write"
    );
}

#[test]
fn payload_is_fetched_only_for_a_proposal_that_passed_its_checks() {
    let mut cfg = config();
    cfg.require_payload_available = true;
    let fetches = |actions: &[Action]| -> Vec<Vec<Hash32>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::FetchPayload { digests, .. } => Some(digests.clone()),
                _ => None,
            })
            .collect()
    };
    let (keys, mut r, leader) = follower_with(cfg);
    let mut forged = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    forged.signature = Signature([7; 64]);
    assert!(fetches(&deliver(&mut r, &keys, leader, Message::Proposal(forged))).is_empty());
    let wrong_leader = (leader + 1) % N;
    let p = proposal(&keys, wrong_leader, 1, QuorumCert::genesis(0));
    let actions = deliver(&mut r, &keys, wrong_leader, Message::Proposal(p));
    assert!(
        fetches(&actions).is_empty(),
        "fetched for a non-leader: {actions:?}"
    );

    let p = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let digest = p.block.payload[0];
    let actions = deliver(&mut r, &keys, leader, Message::Proposal(p.clone()));
    assert_eq!(fetches(&actions), vec![vec![digest]]);
    assert!(
        actions.iter().any(|a| matches!(a, Action::FetchPayload { proposer, .. } if *proposer == keys[leader].public())),
        "asked of the proposer first"
    );
    let again = deliver(&mut r, &keys, leader, Message::Proposal(p));
    assert!(fetches(&again).is_empty(), "asked once per block");
}

#[test]
fn payload_available_for_voting_is_never_proposed_on_that_report() {
    let mut cfg = config();
    cfg.require_payload_available = true;
    let (keys, mut r, leader) = follower_with(cfg);
    let p = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let digest = p.block.payload[0];
    deliver(&mut r, &keys, leader, Message::Proposal(p));
    let actions = r.handle(30, Event::PayloadAvailable(vec![digest]));
    assert!(
        has_vote(&actions),
        "no vote once the payload was available: {actions:?}"
    );

    // As a leader, a replica proposes only what was reported ready.
    let keys2 = keys.clone();
    let leader_key = Replica::new(config(), committee(&keys2), keys2[0].clone()).leader_of(1);
    let me = keys2.iter().position(|k| k.public() == leader_key).unwrap();
    let mut l = Replica::new(config(), committee(&keys2), keys2[me].clone());
    l.start(0);
    let vote_only = Hash32([7; 32]);
    let ready = Hash32([8; 32]);
    assert!(proposals(&l.handle(1, Event::PayloadAvailable(vec![vote_only]))).is_empty());
    let proposed = proposals(&l.handle(2, Event::PayloadReady(vec![ready.into()])));
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0].payload, vec![ready]);
}

#[test]
fn votes_wait_for_payload() {
    let mut cfg = config();
    cfg.require_payload_available = true;
    let (keys, mut r, leader) = follower_with(cfg);
    let p = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let digest = p.block.payload[0];
    let actions = deliver(&mut r, &keys, leader, Message::Proposal(p));
    assert!(
        !has_vote(&actions),
        "voted before the payload was available"
    );
    let actions = r.handle(30, Event::PayloadReady(vec![digest.into()]));
    assert!(
        has_vote(&actions),
        "no vote once the payload arrived: {actions:?}"
    );
}

/// A leader that equivocates sends one replica its block, then a twin with the same
/// payload. The replica waits for that payload before voting, and once it arrives it must
/// vote for the first block, not the twin: a vote that follows the last proposal heard
/// splits the honest votes between the two, and the round times out.
#[test]
fn a_vote_waiting_for_payload_stays_with_the_first_proposal() {
    let mut cfg = config();
    cfg.require_payload_available = true;
    let (keys, mut r, leader) = follower_with(cfg);
    let first = proposal(&keys, leader, 1, QuorumCert::genesis(0));
    let mut twin_block = first.block.clone();
    twin_block.timestamp_ms += 1;
    let twin = signed(&keys, leader, twin_block);
    let digest = first.block.payload[0];
    for p in [first.clone(), twin] {
        let actions = deliver(&mut r, &keys, leader, Message::Proposal(p));
        assert!(
            !has_vote(&actions),
            "voted before the payload was available"
        );
    }
    let actions = r.handle(30, Event::PayloadReady(vec![digest.into()]));
    let voted: Vec<Hash32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message: Message::Vote(v),
                ..
            } => Some(v.block_id),
            _ => None,
        })
        .collect();
    assert_eq!(voted, vec![first.block.id()], "{actions:?}");
}

#[test]
fn idle_leader_waits_before_an_empty_block() {
    let keys = keys();
    let mut cfg = config();
    cfg.max_batch_delay_ms = 200;
    let c = committee(&keys);
    let mut probe = Replica::new(cfg.clone(), c.clone(), keys[0].clone());
    let leader = keys
        .iter()
        .position(|k| k.public() == probe.leader_of(1))
        .unwrap();
    let mut r = Replica::new(cfg, c, keys[leader].clone());
    let proposes = |a: &[Action]| {
        a.iter()
            .any(|a| matches!(a, Action::Broadcast(Message::Proposal(_))))
    };
    let actions = r.start(1_000);
    assert!(!proposes(&actions));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SetTimer { deadline_ms: 1_200 })),
        "{actions:?}"
    );
    assert!(!proposes(&r.handle(1_100, Event::Tick)));
    assert!(
        proposes(&r.handle(1_200, Event::Tick)),
        "empty block after the delay"
    );

    // With payload the leader does not wait.
    let mut probe2 = Replica::new(config(), committee(&keys), keys[leader].clone());
    let actions = probe2.start(0);
    assert!(!proposes(&actions));
    let actions = probe2.handle(1, Event::PayloadReady(vec![Hash32([1; 32]).into()]));
    assert!(proposes(&actions), "payload is proposed at once");
}

#[test]
fn mutated_messages_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (keys, mut r, leader) = follower();
    let genesis = QuorumCert::genesis(0);
    let seeds: Vec<Vec<u8>> = vec![
        Message::Proposal(proposal(&keys, leader, 1, genesis.clone())).encode(),
        Message::Proposal(proposal(&keys, leader, 2, genesis.clone())).encode(),
        Message::BlockRequest {
            block_id: genesis.block_id,
            above_round: 0,
            max: 5,
        }
        .encode(),
        Message::CatchUpResponse {
            after: genesis.block_id,
            blocks: vec![proposal(&keys, leader, 1, genesis.clone()).block],
        }
        .encode(),
    ];
    let mut decoded = 0;
    for i in 0..3_000 {
        let mut bytes = seeds[i % seeds.len()].clone();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
        }
        if let Ok(m) = Message::decode(&bytes) {
            decoded += 1;
            let from = keys[rng.gen_range(0..N)].public();
            r.handle(i as u64, Event::Message { from, message: m });
        }
    }
    assert!(decoded > 100, "only {decoded} mutated messages decoded");
}

#[test]
fn a_certificate_far_ahead_is_learnt_from_though_its_proposal_is_refused() {
    let (keys, mut r, _) = follower();
    // The chain went on without this replica (it lost its data, or slept): a proposal of
    // round 20,001 carries a QC of 20,000 signed by three validators.
    let far = 20_000u64;
    let parent = Hash32::digest(b"far-parent\0", b"");
    let certified = Hash32::digest(b"far-block\0", b"");
    let qc = QuorumCert {
        round: far,
        block_id: certified,
        parent_round: far - 1,
        parent_id: parent,
        signatures: (0..3)
            .map(|i| {
                let d = vote_digest(0, far, &certified, far - 1, &parent);
                (i as u16, keys[i].sign(d.as_bytes()))
            })
            .collect(),
    };
    let author = (0..N)
        .find(|&i| r.leader_of(far + 1) == keys[i].public())
        .unwrap();
    let p = proposal(&keys, author, far + 1, qc);
    let actions = deliver(&mut r, &keys, author, Message::Proposal(p));
    assert_eq!(
        r.stats().invalid_messages,
        1,
        "the proposal itself is refused"
    );
    assert_eq!(r.round(), far + 1, "the QC moved the replica to its round");
    let root = r.committed_root().1;
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Send { message: Message::CatchUpRequest { after, .. }, .. } if *after == root
        )),
        "the chain up to the certified block is fetched forward from the root: {actions:?}"
    );

    // A forged certificate from far ahead moves nothing.
    let (keys, mut r, _) = follower();
    let mut forged = QuorumCert::genesis(0);
    forged.round = far;
    forged.block_id = certified;
    forged.signatures = (0..3).map(|i| (i as u16, Signature([9; 64]))).collect();
    let p = proposal(&keys, author, far + 1, forged);
    deliver(&mut r, &keys, author, Message::Proposal(p));
    assert_eq!(r.round(), 1);
}

/// After a round that timed out, the 2-chain commits a block of round r - 4 only once the
/// QC of round r - 1 forms, while the leader of r is drawn from committed blocks of rounds
/// up to r - 3. The voters of r - 1, which have not committed that block yet, send their
/// votes to the leader of r in their view; the replica that collects them commits it and
/// may then name another leader, so that nobody proposes in r. Whatever each names, once
/// messages flow again a round whose predecessor was certified must not time out: the
/// loss costs the rounds it spanned, and no more.
#[test]
fn a_lost_round_costs_no_timeout_after_messages_flow_again() {
    let mut late_timeouts = Vec::new();
    for start in 0..24 {
        let mut net = Net::new(config());
        for _ in 0..(30 + start) {
            net.tick(300, &[]);
        }
        // Every message is lost until each replica has given up on its round.
        let dropped_from = net.lists.len();
        let gave_up = |net: &Net, i: usize| {
            net.lists[dropped_from..].iter().any(|(j, actions)| {
                *j == i
                    && actions
                        .iter()
                        .any(|a| matches!(a, Action::Broadcast(Message::Timeout(_))))
            })
        };
        for _ in 0..100 {
            if (0..N).all(|i| gave_up(&net, i)) {
                break;
            }
            net.now += 300;
            for i in 0..N {
                net.event(i, Event::Tick);
            }
            net.queue.clear();
        }
        assert!(
            (0..N).all(|i| gave_up(&net, i)),
            "start {start}: no timeouts"
        );
        let lost = net.replicas.iter().map(|r| r.round()).max().unwrap();
        let first = net.lists.len();
        for _ in 0..60 {
            net.tick(300, &[]);
        }
        let progressed = net.replicas.iter().map(|r| r.round()).min().unwrap();
        assert!(
            progressed > lost + 10,
            "start {start}: stuck at round {progressed} after losing round {lost}"
        );
        for (i, actions) in &net.lists[first..] {
            for a in actions {
                if let Action::Broadcast(Message::Timeout(t)) = a {
                    if t.round > lost {
                        late_timeouts.push((start, *i, t.round, lost));
                    }
                }
            }
        }
    }
    assert!(
        late_timeouts.is_empty(),
        "rounds timed out after messages flowed again (start, replica, round, lost round): \
         {late_timeouts:?}"
    );
}

#[test]
fn a_leader_proposes_only_the_payload_that_fits_the_block_gas_limit() {
    let keys = keys();
    let mut cfg = config();
    cfg.max_payload_gas = 100;
    let leader_key = Replica::new(cfg.clone(), committee(&keys), keys[0].clone()).leader_of(1);
    let me = keys.iter().position(|k| k.public() == leader_key).unwrap();
    let mut l = Replica::new(cfg, committee(&keys), keys[me].clone());
    l.start(0);
    let ready = |byte: u8, gas: u64| ReadyPayload {
        digest: Hash32([byte; 32]),
        txs: 1,
        gas,
    };
    // 60 + 40 fit; the third would take the block to 130, and the fourth, which would
    // fit, must not jump the queue ahead of it.
    let proposed = proposals(&l.handle(
        1,
        Event::PayloadReady(vec![ready(1, 60), ready(2, 40), ready(3, 30), ready(4, 0)]),
    ));
    assert_eq!(proposed.len(), 1);
    assert_eq!(
        proposed[0].payload,
        vec![Hash32([1; 32]), Hash32([2; 32])],
        "the block takes payload in order while its gas fits"
    );
}

#[test]
fn a_leader_proposes_at_most_its_block_transaction_limit() {
    let keys = keys();
    let mut cfg = config();
    cfg.max_payload_txs = 5_000;
    let leader_key = Replica::new(cfg.clone(), committee(&keys), keys[0].clone()).leader_of(1);
    let me = keys.iter().position(|k| k.public() == leader_key).unwrap();
    let mut l = Replica::new(cfg, committee(&keys), keys[me].clone());
    l.start(0);
    let ready = |byte: u8, txs: u64| ReadyPayload {
        digest: Hash32([byte; 32]),
        txs,
        gas: 0,
    };
    // A backlog of 4,000-transaction batches: one fits, two would not. A batch above the
    // limit alone would still be proposed (nothing else could ever carry it).
    let proposed = proposals(&l.handle(
        1,
        Event::PayloadReady(vec![ready(1, 4_000), ready(2, 4_000), ready(3, 10)]),
    ));
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0].payload, vec![Hash32([1; 32])]);
}

fn root_of(height: u64) -> Hash32 {
    Hash32::digest(b"test-root\0", &height.to_le_bytes())
}

/// What a node executed at `height` in the tests that do not commit blocks.
fn executed_at(height: u64) -> ExecutedRoot {
    ExecutedRoot {
        block: Hash32::digest(b"test-block\0", &height.to_le_bytes()),
        root: root_of(height),
    }
}

fn report(r: &mut Replica<KeyPair>, height: u64, e: ExecutedRoot) -> Vec<Action> {
    r.handle(10, Event::executed(height, e))
}

/// `p` delivered from its leader.
fn propose(r: &mut Replica<KeyPair>, keys: &[KeyPair], leader: usize, p: Proposal) -> Vec<Action> {
    deliver(r, keys, leader, Message::Proposal(p))
}

/// The proposal of round 1 by `leader`, carrying `state`.
fn carrying(keys: &[KeyPair], leader: usize, state: StateRoots) -> Proposal {
    let mut block = proposal(keys, leader, 1, QuorumCert::genesis(0)).block;
    block.state = state;
    signed(keys, leader, block)
}

#[test]
fn a_vote_waits_for_the_roots_a_block_carries_and_never_goes_to_other_ones() {
    let (keys, mut r, leader) = follower();
    let state = StateRoots {
        first: 1,
        roots: vec![executed_at(1), executed_at(2)],
    };
    let p = carrying(&keys, leader, state.clone());
    assert!(!has_vote(&propose(&mut r, &keys, leader, p)));
    assert!(
        !has_vote(&report(&mut r, 1, executed_at(1))),
        "height 2 not executed yet"
    );
    assert!(has_vote(&report(&mut r, 2, executed_at(2))));

    // Our root at height 2 is another, or we executed another block there: no vote,
    // whatever arrives after.
    for ours in [
        ExecutedRoot {
            root: root_of(99),
            ..executed_at(2)
        },
        ExecutedRoot {
            block: Hash32([9; 32]),
            ..executed_at(2)
        },
    ] {
        let (keys, mut r, leader) = follower();
        report(&mut r, 1, executed_at(1));
        report(&mut r, 2, ours);
        let p = carrying(&keys, leader, state.clone());
        assert!(!has_vote(&propose(&mut r, &keys, leader, p)));
        assert!(!has_vote(&report(&mut r, 3, executed_at(3))));
    }
}

/// A replica that executed past a carried height but no longer holds its root (a
/// restart that reported less) asks the node for it, once, and votes when it comes.
#[test]
fn a_root_executed_but_not_held_is_asked_of_the_node() {
    let (keys, mut r, leader) = follower();
    report(&mut r, 3, executed_at(3));
    let state = StateRoots {
        first: 1,
        roots: vec![executed_at(1), executed_at(2)],
    };
    let p = carrying(&keys, leader, state);
    let actions = propose(&mut r, &keys, leader, p);
    assert!(!has_vote(&actions));
    let asked: Vec<(u64, u64)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::LoadRoots { from, count } => Some((*from, *count)),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "{actions:?}");
    assert_eq!(asked[0].0, 1);
    assert!(asked[0].1 >= 2);
    assert!(!has_vote(&report(&mut r, 1, executed_at(1))));
    assert!(has_vote(&report(&mut r, 2, executed_at(2))));
}

#[test]
fn a_block_whose_roots_do_not_continue_its_parent_s_gets_no_vote() {
    for state in [
        StateRoots {
            first: 2,
            roots: vec![executed_at(2)],
        },
        StateRoots {
            first: 0,
            roots: vec![executed_at(0), executed_at(1)],
        },
    ] {
        let (keys, mut r, leader) = follower();
        for h in 0..3 {
            report(&mut r, h, executed_at(h));
        }
        let p = carrying(&keys, leader, state);
        assert!(!has_vote(&propose(&mut r, &keys, leader, p)));
        assert_eq!(r.stats().invalid_messages, 1);
    }
}

/// Replicas report each committed block's root as a node would (its height's), and how
/// far their peers executed; the committed chain then carries every height once, in
/// order, each with its block and root.
#[test]
fn leaders_carry_executed_roots_and_the_committed_chain_certifies_each_height_once() {
    let mut net = Net::new(config());
    let mut reported = [0usize; N];
    for _ in 0..60 {
        net.tick(300, &[]);
        let executed = net.commits.iter().map(Vec::len).min().unwrap() as u64;
        for (i, done) in reported.iter_mut().enumerate() {
            while *done < net.commits[i].len() {
                *done += 1;
                let height = *done as u64;
                let block = net.commits[i][*done - 1];
                net.event(
                    i,
                    Event::Executed {
                        height,
                        block,
                        root: root_of(height),
                    },
                );
            }
            net.event(i, Event::PeersExecuted { height: executed });
        }
        net.run(&[]);
    }
    let chain: Vec<&Block> = net.commits[0].iter().map(|id| &net.kept[0][id]).collect();
    assert!(chain.len() >= 20, "only {} blocks committed", chain.len());
    let mut next = 1;
    for block in &chain {
        assert_eq!(block.state.first, next, "{block}");
        for (height, carried) in block.state.iter() {
            assert_eq!(carried.root, root_of(height));
            assert_eq!(carried.block, net.commits[0][height as usize - 1]);
        }
        next = block.state.next();
    }
    assert!(
        next > chain.len() as u64 / 2,
        "the chain of {} blocks certified roots only up to {}",
        chain.len(),
        next - 1
    );
}
