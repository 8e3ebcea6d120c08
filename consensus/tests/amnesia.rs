//! A replica that lost its safety data (a wiped validator, restored from a snapshot or
//! replaying the chain) has no record of the rounds it voted in. If its peers are still in
//! such a round, a second vote there could certify two blocks of one round with the help
//! of f Byzantine validators. It abstains until it has learnt the round its peers are in.
//!
//! n = 4, round-robin leaders, real ed25519 keys; validator 0 is the replica, and leads
//! none of rounds 101 to 103.

mod common;

use common::{block, certify, config, deliver_at, keys, propose};
use ordo_consensus::{Action, Block, Committee, Message, QuorumCert, Replica, SafetyData};
use ordo_types::KeyPair;

fn votes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    message: Message::Vote(_),
                    ..
                }
            )
        })
        .count()
}

/// Validator 0 restored with `safety` on a committed chain whose root is at round 100.
fn restored(keys: &[KeyPair], safety: SafetyData) -> (Replica<KeyPair>, Block) {
    let committee = Committee::new(0, keys.iter().map(|k| k.public()).collect()).unwrap();
    let root = block(100, QuorumCert::genesis(0), b"root");
    let mut r = Replica::restore(
        config(),
        committee,
        keys[0].clone(),
        safety,
        vec![root.clone()],
    );
    r.start(0);
    (r, root)
}

#[test]
fn a_replica_without_its_past_votes_abstains_until_it_has_learnt_the_round() {
    let keys = keys();
    let (mut r, root) = restored(&keys, SafetyData::new(0));
    let b101 = block(101, certify(&keys, &root, &[1, 2, 3]), b"101");
    let actions = deliver_at(
        &mut r,
        10,
        &keys,
        1,
        Message::Proposal(propose(&keys, b101.clone())),
    );
    assert_eq!(r.round(), 101);
    assert_eq!(
        votes(&actions),
        0,
        "voted in a round it may have voted in before: {actions:?}"
    );
    assert!(r.safety_data().last_voted_round >= 101);

    // Two round timeouts (2 s) later the round its peers are in is known: it votes again.
    let b102 = block(102, certify(&keys, &b101, &[1, 2, 3]), b"102");
    let actions = deliver_at(
        &mut r,
        2_100,
        &keys,
        2,
        Message::Proposal(propose(&keys, b102.clone())),
    );
    assert_eq!(votes(&actions), 1, "{actions:?}");

    // Control: restored with what it had persisted (a vote in round 100), it votes in 101
    // at once.
    let mut voted = SafetyData::new(0);
    voted.last_voted_round = 100;
    let (mut r, _) = restored(&keys, voted);
    let actions = deliver_at(
        &mut r,
        10,
        &keys,
        1,
        Message::Proposal(propose(&keys, b101)),
    );
    assert_eq!(votes(&actions), 1, "{actions:?}");
}

#[test]
fn a_new_chain_is_not_held_up() {
    // Every replica of a new chain is fresh; round 1 gets votes at once.
    let keys = keys();
    let committee = Committee::new(0, keys.iter().map(|k| k.public()).collect()).unwrap();
    let mut r = Replica::new(config(), committee, keys[0].clone());
    r.start(0);
    let b1 = block(1, QuorumCert::genesis(0), b"1");
    let actions = deliver_at(&mut r, 10, &keys, 1, Message::Proposal(propose(&keys, b1)));
    assert_eq!(votes(&actions), 1, "{actions:?}");
}
