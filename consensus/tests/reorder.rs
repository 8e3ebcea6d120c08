//! Proposals that arrive out of order. Proposals of successive rounds come from different
//! leaders over different connections, so a replica may get round r + 1's proposal before
//! round r's (block sync fetched 83 to 132 parents per validator in 8,700 rounds on a
//! local testnet). The child is parked and its parent asked for; the parent usually
//! arrives first as a proposal of its own, and the child must be taken up then, not when
//! the fetch is answered: an answer that is empty, lost or throttled (a block is asked
//! for again only after a base timeout) would leave the child parked for a whole round
//! timeout, and a next leader holding its round's block parked cannot propose.

mod common;

use common::{block, certify, config, deliver, keys, propose};
use ordo_consensus::messages::vote_digest;
use ordo_consensus::{Action, Block, Committee, Event, Message, QuorumCert, Replica, Vote};
use ordo_types::{Hash32, KeyPair};

/// The (round, block) of every vote `actions` send to another validator.
fn votes(actions: &[Action]) -> Vec<(u64, Hash32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message: Message::Vote(v),
                ..
            } => Some((v.round, v.block_id)),
            _ => None,
        })
        .collect()
}

fn asked_for(actions: &[Action]) -> Vec<Hash32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                message: Message::BlockRequest { block_id, .. },
                ..
            } => Some(*block_id),
            _ => None,
        })
        .collect()
}

/// The replica's own vote: it leads round 4, so its vote for round 3 stays with it and
/// shows as the safety data it persists before counting it.
fn voted_through(actions: &[Action]) -> Option<u64> {
    actions.iter().rev().find_map(|a| match a {
        Action::Persist(s) => Some(s.last_voted_round),
        _ => None,
    })
}

fn proposed(actions: &[Action]) -> Vec<(u64, Hash32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Proposal(p)) => Some((p.block.round, p.block.parent())),
            _ => None,
        })
        .collect()
}

fn vote(keys: &[KeyPair], author: usize, block: &Block) -> Message {
    let digest = vote_digest(
        0,
        block.round,
        &block.id(),
        block.qc.round,
        &block.qc.block_id,
    );
    Message::Vote(Vote {
        round: block.round,
        block_id: block.id(),
        parent_round: block.qc.round,
        parent_id: block.qc.block_id,
        author: author as u16,
        signature: keys[author].sign(digest.as_bytes()),
    })
}

/// The committee's keys, validator 0's replica (the leader of round 4: round-robin
/// leaders, validator k leads round k mod 4), and the honest chain B1 <- B2 <- B3.
fn setup() -> (Vec<KeyPair>, Replica<KeyPair>, [Block; 3]) {
    let keys = keys();
    let committee = Committee::new(0, keys.iter().map(KeyPair::public).collect()).unwrap();
    let mut r = Replica::new(config(), committee, keys[0].clone());
    r.start(0);
    let b1 = block(1, QuorumCert::genesis(0), b"b1");
    let b2 = block(2, certify(&keys, &b1, &[0, 1, 2]), b"b2");
    let b3 = block(3, certify(&keys, &b2, &[1, 2, 3]), b"b3");
    (keys, r, [b1, b2, b3])
}

/// Validator 0, the leader of round 4, gets round 3's proposal before round 2's.
#[test]
fn a_next_leader_takes_up_a_parked_proposal_when_its_parent_arrives_as_a_proposal() {
    let (keys, mut r, [b1, b2, b3]) = setup();
    r.handle(5, Event::PayloadReady(vec![Hash32([9; 32]).into()]));
    let first = deliver(
        &mut r,
        &keys,
        1,
        Message::Proposal(propose(&keys, b1.clone())),
    );
    assert_eq!(votes(&first), vec![(1, b1.id())]);

    // Round 3's proposal first: its certificate moves the replica to round 3, and the
    // block waits for its parent, which the replica asks for.
    let early = deliver(
        &mut r,
        &keys,
        3,
        Message::Proposal(propose(&keys, b3.clone())),
    );
    assert_eq!(asked_for(&early), vec![b2.id()]);
    assert_eq!(voted_through(&early), None);

    // Then round 2's own proposal, and no answer to the request: round 3's block is
    // complete now and gets this replica's vote (round 2 is over for it).
    let late = deliver(&mut r, &keys, 2, Message::Proposal(propose(&keys, b2)));
    assert_eq!(
        voted_through(&late),
        Some(3),
        "the parked proposal of round 3 waited for the fetch's answer"
    );

    // Two more votes make the round's certificate, and the replica leads round 4 on it.
    let mut actions = deliver(&mut r, &keys, 1, vote(&keys, 1, &b3));
    actions.extend(deliver(&mut r, &keys, 2, vote(&keys, 2, &b3)));
    assert_eq!(proposed(&actions), vec![(4, b3.id())]);
}

/// Two proposals parked in a chain (rounds 2 and 3, before round 1's): both are taken up
/// as soon as round 1's arrives, and the replica votes in round 3.
#[test]
fn a_chain_of_parked_proposals_is_taken_up_when_its_first_parent_arrives() {
    let (keys, mut r, [b1, b2, b3]) = setup();
    let mut early = deliver(
        &mut r,
        &keys,
        2,
        Message::Proposal(propose(&keys, b2.clone())),
    );
    early.extend(deliver(
        &mut r,
        &keys,
        3,
        Message::Proposal(propose(&keys, b3.clone())),
    ));
    assert_eq!(kept(&early), vec![]);
    assert_eq!(voted_through(&early), None);

    let late = deliver(
        &mut r,
        &keys,
        1,
        Message::Proposal(propose(&keys, b1.clone())),
    );
    assert_eq!(kept(&late), vec![b1.id(), b2.id(), b3.id()]);
    assert_eq!(voted_through(&late), Some(3));
}

/// The blocks `actions` ask the node to keep: the ones that joined the tree.
fn kept(actions: &[Action]) -> Vec<Hash32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::KeepBlock(b) => Some(b.id()),
            _ => None,
        })
        .collect()
}
