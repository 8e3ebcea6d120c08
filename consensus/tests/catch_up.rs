//! Forward catch-up: what a replica far behind accepts when it asks a peer for the
//! committed chain after its root, one bounded answer at a time.
//!
//! The chain (n = 4, round-robin leaders, real ed25519 keys): 300 blocks in consecutive
//! rounds, each certified by validators 0, 1 and 3, so each block's certificate commits
//! its grandparent. The victim, validator 0, has nothing but genesis; validator 1 shows it
//! the certificate of the newest block.

mod common;

use common::{block, certify, committed, config, deliver, deliver_at, keys};
use ordo_consensus::{Action, Block, Committee, Config, Message, QuorumCert, Replica};
use ordo_types::{Hash32, KeyPair, PublicKey, Signature};

const LENGTH: usize = 300;
const HONEST: [usize; 3] = [0, 1, 3];
const SHOWN_BY: usize = 1;
const BYZANTINE: usize = 2;

/// Blocks 1..=LENGTH (index 0 is genesis) and the certificate of the last.
fn long_chain(keys: &[KeyPair]) -> (Vec<Block>, QuorumCert) {
    let mut blocks = vec![Block::genesis(0)];
    let mut qc = QuorumCert::genesis(0);
    for round in 1..=LENGTH as u64 {
        let b = block(round, qc, &round.to_le_bytes());
        qc = certify(keys, &b, &HONEST);
        blocks.push(b);
    }
    (blocks, qc)
}

fn batch() -> usize {
    usize::from(Config::new(4).sync_batch)
}

fn catch_up_requests(actions: &[Action]) -> Vec<(PublicKey, Hash32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                message: Message::CatchUpRequest { after, .. },
            } => Some((*to, *after)),
            _ => None,
        })
        .collect()
}

fn block_requests(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    message: Message::BlockRequest { .. },
                    ..
                }
            )
        })
        .count()
}

/// A replica with nothing but genesis that has just been shown the tip's certificate by
/// `SHOWN_BY`: it asks that peer for what follows genesis.
fn victim(keys: &[KeyPair], tip_qc: &QuorumCert) -> Replica<KeyPair> {
    let committee = Committee::new(0, keys.iter().map(KeyPair::public).collect()).unwrap();
    let mut r = Replica::new(config(), committee, keys[0].clone());
    r.start(0);
    let actions = deliver(&mut r, keys, SHOWN_BY, Message::QuorumCert(tip_qc.clone()));
    assert_eq!(
        catch_up_requests(&actions),
        vec![(keys[SHOWN_BY].public(), Block::genesis(0).id())],
        "far behind, it asks forward from its root: {actions:?}"
    );
    assert_eq!(
        block_requests(&actions),
        0,
        "and does not walk back from the tip"
    );
    r
}

fn answer(after: &Block, blocks: &[Block]) -> Message {
    Message::CatchUpResponse {
        after: after.id(),
        blocks: blocks.to_vec(),
    }
}

#[test]
fn a_replica_far_behind_commits_the_chain_forward_one_answer_at_a_time() {
    let keys = keys();
    let (chain, tip_qc) = long_chain(&keys);
    let mut r = victim(&keys, &tip_qc);
    let mut after = 0;
    let mut all_committed: Vec<Hash32> = Vec::new();
    loop {
        let end = (after + batch()).min(LENGTH);
        let actions = deliver(
            &mut r,
            &keys,
            SHOWN_BY,
            answer(&chain[after], &chain[after + 1..=end]),
        );
        all_committed.extend(committed(&actions));
        assert_eq!(
            catch_up_requests(&actions),
            vec![(keys[SHOWN_BY].public(), chain[end].id())],
            "an answer is followed at once by a request for what follows it"
        );
        if end == LENGTH {
            // The peer's tip: it answers nothing more (the node drops an empty answer).
            break;
        }
        after = end;
    }
    // Block i's certificate sits in block i + 1, and commits block i - 1; the tip's
    // certificate (shown first) commits block LENGTH - 1.
    let expected: Vec<Hash32> = chain[1..LENGTH].iter().map(Block::id).collect();
    assert_eq!(all_committed, expected);
    assert_eq!(
        r.stats().max_orphans,
        0,
        "nothing was held without its parent"
    );
    assert_eq!(r.stats().catch_up_blocks, LENGTH as u64);
}

#[test]
fn an_answer_is_taken_only_from_the_peer_asked_and_for_the_block_named() {
    let keys = keys();
    let (chain, tip_qc) = long_chain(&keys);
    let mut r = victim(&keys, &tip_qc);
    let genuine = answer(&chain[0], &chain[1..=batch()]);
    let before = r.stats().invalid_messages;
    assert!(committed(&deliver(&mut r, &keys, 3, genuine.clone())).is_empty());
    assert_eq!(
        r.stats().invalid_messages,
        before + 1,
        "nobody asked validator 3"
    );
    // From the peer asked, but after another block than the one named.
    let elsewhere = answer(&chain[1], &chain[2..=batch()]);
    assert!(committed(&deliver(&mut r, &keys, SHOWN_BY, elsewhere)).is_empty());
    assert_eq!(r.stats().invalid_messages, before + 2);
    // The genuine answer from the peer asked is still taken, once: its newest block's
    // certificate commits all but the last two.
    assert_eq!(
        committed(&deliver(&mut r, &keys, SHOWN_BY, genuine.clone())).len(),
        batch() - 2
    );
    assert!(committed(&deliver(&mut r, &keys, SHOWN_BY, genuine)).is_empty());
    assert_eq!(
        r.stats().invalid_messages,
        before + 3,
        "a second answer is refused"
    );

    // From the peer asked and named right, but not starting at the block named: a broken
    // chain, refused (and the request is spent: the peer asked lied).
    let mut r = victim(&keys, &tip_qc);
    let skipped = Message::CatchUpResponse {
        after: chain[0].id(),
        blocks: chain[2..=batch()].to_vec(),
    };
    let before = r.stats().invalid_messages;
    assert!(committed(&deliver(&mut r, &keys, SHOWN_BY, skipped)).is_empty());
    assert_eq!(r.stats().invalid_messages, before + 1);
}

#[test]
fn certificates_in_an_answer_are_verified() {
    let keys = keys();
    let (chain, tip_qc) = long_chain(&keys);
    let mut r = victim(&keys, &tip_qc);
    let mut blocks = chain[1..=batch()].to_vec();
    blocks[40].qc.signatures[1].1 = Signature([7; 64]);
    let before = r.stats().invalid_messages;
    let actions = deliver(&mut r, &keys, SHOWN_BY, answer(&chain[0], &blocks));
    assert!(committed(&actions).is_empty(), "{actions:?}");
    assert!(catch_up_requests(&actions).is_empty());
    assert_eq!(r.stats().invalid_messages, before + 1);
}

/// A Byzantine peer asked answers with a branch that honest validators abandoned: a block
/// certified by a quorum whose own child never was. It joins the tree, commits nothing,
/// and the next request, to an honest peer, starts again from the committed root, whose
/// answer commits the honest chain only.
#[test]
fn a_dead_end_answer_commits_nothing_and_the_next_request_starts_from_the_root() {
    let keys = keys();
    let (chain, tip_qc) = long_chain(&keys);
    let committee = Committee::new(0, keys.iter().map(KeyPair::public).collect()).unwrap();
    let mut r = Replica::new(config(), committee, keys[0].clone());
    r.start(0);
    let asked = deliver(
        &mut r,
        &keys,
        BYZANTINE,
        Message::QuorumCert(tip_qc.clone()),
    );
    assert_eq!(
        catch_up_requests(&asked),
        vec![(keys[BYZANTINE].public(), chain[0].id())]
    );
    // The abandoned branch: B1, then X2 (a twin of block 2, certified), then X3 on it.
    let x2 = block(2, certify(&keys, &chain[1], &HONEST), b"abandoned");
    let x3 = block(3, certify(&keys, &x2, &[0, 2, 3]), b"abandoned-3");
    let dead_end = answer(&chain[0], &[chain[1].clone(), x2.clone(), x3.clone()]);
    let actions = deliver(&mut r, &keys, BYZANTINE, dead_end);
    let commits = committed(&actions);
    assert!(
        !commits.contains(&x2.id()) && !commits.contains(&x3.id()),
        "{commits:?}"
    );
    // Later (past a base timeout), an honest peer shows a newer certificate.
    let next = block(LENGTH as u64 + 1, tip_qc, b"next");
    let next_qc = certify(&keys, &next, &HONEST);
    let later = config().base_timeout_ms + 100;
    let actions = deliver_at(&mut r, later, &keys, SHOWN_BY, Message::QuorumCert(next_qc));
    let root = r.committed_root().1;
    assert_eq!(
        catch_up_requests(&actions),
        vec![(keys[SHOWN_BY].public(), root)],
        "asks after the committed root, not after the dead end"
    );
    let commits = committed(&deliver_at(
        &mut r,
        later,
        &keys,
        SHOWN_BY,
        Message::CatchUpResponse {
            after: root,
            blocks: chain
                .iter()
                .skip_while(|b| b.id() != root)
                .skip(1)
                .take(batch())
                .cloned()
                .collect(),
        },
    ));
    assert!(commits.contains(&chain[2].id()), "{commits:?}");
    assert!(!commits.contains(&x2.id()));
}
