//! Block sync under attack: what a replica accepts from the peers it asked for blocks.
//!
//! The scenario behind these tests (n = 4, round-robin leaders, real ed25519 keys):
//! validator 2 leads round 2 and equivocates, proposing Y2 and its twin Z2. The honest
//! majority certifies Y2 and then Y3 (whose QC commits Y2) and Y4. A lagging replica saw
//! only B1 and the twin Z2. When it learns of Y4's certificate it asks the peer that
//! showed it for Y4 and its ancestors. That peer is validator 2, which answers with the
//! genuine chain, except that the certificate inside Y4, the one certifying Y3, now names
//! Z2 as Y3's parent. Committing what that certificate says would commit Z2 where every
//! honest replica committed Y2: committed history would fork.

mod common;

use common::{block, certify, committed, config, deliver, keys, propose};
use ordo_consensus::messages::timeout_digest;
use ordo_consensus::{Action, Block, Committee, Message, QuorumCert, Replica, Timeout};
use ordo_types::{Hash32, KeyPair, Signature};

const BYZANTINE: usize = 2;
const VICTIM: usize = 0;

/// The honest chain B1 <- Y2 <- Y3 <- Y4, the twin Z2 of Y2, and the QC that certifies Y4.
struct Chain {
    b1: Block,
    y2: Block,
    z2: Block,
    y3: Block,
    y4: Block,
    qc4: QuorumCert,
}

fn chain(keys: &[KeyPair]) -> Chain {
    let honest = [0, 1, 3];
    let b1 = block(1, QuorumCert::genesis(0), b"b1");
    let qc1 = certify(keys, &b1, &honest);
    let y2 = block(2, qc1.clone(), b"y2");
    let z2 = block(2, qc1, b"z2");
    let y3 = block(3, certify(keys, &y2, &honest), b"y3");
    let y4 = block(4, certify(keys, &y3, &honest), b"y4");
    let qc4 = certify(keys, &y4, &honest);
    Chain {
        b1,
        y2,
        z2,
        y3,
        y4,
        qc4,
    }
}

fn requested(actions: &[Action]) -> Vec<(ordo_types::PublicKey, Hash32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                to,
                message: Message::BlockRequest { block_id, .. },
            } => Some((*to, *block_id)),
            _ => None,
        })
        .collect()
}

/// The victim after seeing B1 and the twin Z2, and after validator `shown_by` showed it
/// Y4's certificate (in a timeout): it has asked `shown_by` for Y4.
fn lagging_victim(keys: &[KeyPair], c: &Chain, shown_by: usize) -> Replica<KeyPair> {
    let committee = Committee::new(0, keys.iter().map(KeyPair::public).collect()).unwrap();
    let mut r = Replica::new(config(), committee, keys[VICTIM].clone());
    r.start(0);
    deliver(
        &mut r,
        keys,
        1,
        Message::Proposal(propose(keys, c.b1.clone())),
    );
    deliver(
        &mut r,
        keys,
        BYZANTINE,
        Message::Proposal(propose(keys, c.z2.clone())),
    );
    let timeout = Timeout {
        round: 5,
        high_qc: c.qc4.clone(),
        last_tc: None,
        commit_qc: QuorumCert::genesis(0),
        author: shown_by as u16,
        signature: keys[shown_by].sign(timeout_digest(0, 5, 4).as_bytes()),
    };
    let actions = deliver(&mut r, keys, shown_by, Message::Timeout(timeout));
    assert_eq!(
        requested(&actions),
        vec![(keys[shown_by].public(), c.y4.id())],
        "the victim asks the peer that showed it the certificate"
    );
    r
}

#[test]
fn a_forged_parent_in_a_synced_certificate_cannot_fork_the_committed_chain() {
    let keys = keys();
    let c = chain(&keys);
    let mut victim = lagging_victim(&keys, &c, BYZANTINE);
    // Y4 as the Byzantine responder tells it: its certificate of Y3 names Z2 as parent.
    let mut forged = c.y4.clone();
    forged.qc.parent_id = c.z2.id();
    let response = Message::BlockResponse {
        blocks: vec![forged, c.y3.clone(), c.y2.clone()],
    };
    let actions = deliver(&mut victim, &keys, BYZANTINE, response);
    let commits = committed(&actions);
    assert!(
        !commits.contains(&c.z2.id()),
        "the victim committed the twin Z2 on a forged certificate: {actions:?}"
    );
    assert!(
        !commits.contains(&c.y2.id()),
        "nothing certified Y2's commit to it"
    );

    // The genuine chain, from the peer asked, commits Y2 and never Z2.
    let mut victim = lagging_victim(&keys, &c, 1);
    let genuine = Message::BlockResponse {
        blocks: vec![c.y4.clone(), c.y3.clone(), c.y2.clone()],
    };
    let commits = committed(&deliver(&mut victim, &keys, 1, genuine));
    assert_eq!(commits, vec![c.b1.id(), c.y2.id(), c.y3.id()]);
}

#[test]
fn a_response_is_taken_only_from_the_peer_asked() {
    let keys = keys();
    let c = chain(&keys);
    let mut victim = lagging_victim(&keys, &c, 1);
    let genuine = || Message::BlockResponse {
        blocks: vec![c.y4.clone(), c.y3.clone(), c.y2.clone()],
    };
    let before = victim.stats().invalid_messages;
    assert!(committed(&deliver(&mut victim, &keys, 3, genuine())).is_empty());
    assert_eq!(
        victim.stats().invalid_messages,
        before + 1,
        "an answer from a peer nobody asked is refused"
    );
    // The peer asked is still heard.
    assert_eq!(
        committed(&deliver(&mut victim, &keys, 1, genuine())),
        vec![c.b1.id(), c.y2.id(), c.y3.id()]
    );
}

#[test]
fn synced_certificates_are_verified() {
    let keys = keys();
    let c = chain(&keys);
    let mut victim = lagging_victim(&keys, &c, BYZANTINE);
    // The right blocks, but the certificate inside Y3 carries a signature nobody made.
    let mut y3 = c.y3.clone();
    y3.qc.signatures[1].1 = Signature([7; 64]);
    let response = Message::BlockResponse {
        blocks: vec![c.y4.clone(), y3, c.y2.clone()],
    };
    let before = victim.stats().invalid_messages;
    let actions = deliver(&mut victim, &keys, BYZANTINE, response);
    assert!(committed(&actions).is_empty(), "{actions:?}");
    assert_eq!(victim.stats().invalid_messages, before + 1);
}

#[test]
fn signer_lists_are_bound_by_the_block_id() {
    // Leader reputation reads who signed each committed block's QC; a responder must not
    // be able to hand two replicas one block id with two signer lists.
    let keys = keys();
    let c = chain(&keys);
    let mut other = c.y3.clone();
    other.qc = certify(&keys, &c.y2, &[0, 1, 2]);
    assert_ne!(
        other.id(),
        c.y3.id(),
        "two signer lists, one block id: replicas could elect different leaders"
    );
    // Signature bytes are not bound (one signer may sign twice, differently); the
    // certificate's other fields are.
    let mut fields = c.y3.clone();
    fields.qc.parent_round += 1;
    assert_ne!(fields.id(), c.y3.id());
    let mut fields = c.y3.clone();
    fields.qc.parent_id = c.z2.id();
    assert_ne!(fields.id(), c.y3.id());
}
