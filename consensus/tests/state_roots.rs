//! Proofs of certified state roots, as a syncing validator checks them: a chain of blocks
//! from a certified one down to the snapshot's block, one of them carrying the height's
//! block and root. Real ed25519 keys; certificates built as honest validators build them,
//! then tampered with.

mod common;

use common::{block, certify, keys};
use ordo_consensus::{
    ed25519_verify, verify_root_proof, Block, Committee, ConsensusError, ExecutedRoot, QuorumCert,
    StateRoots,
};
use ordo_types::{Hash32, KeyPair};

fn root(height: u64) -> Hash32 {
    Hash32::digest(b"proof-root\0", &height.to_le_bytes())
}

fn with_state(mut b: Block, first: u64, roots: Vec<ExecutedRoot>) -> Block {
    b.state = StateRoots { first, roots };
    b
}

fn executed(block: &Block, height: u64) -> ExecutedRoot {
    ExecutedRoot {
        block: block.id(),
        root: root(height),
    }
}

/// Height 1 is b1 and height 2 b2; b2 carries height 1, b3 carries height 2 and
/// certifies b2, and b4 certifies b3. Newest first.
fn chain(keys: &[KeyPair]) -> Vec<Block> {
    let b1 = block(1, QuorumCert::genesis(0), b"1");
    let b2 = block(2, certify(keys, &b1, &[0, 1, 2]), b"2");
    let b2 = with_state(b2, 1, vec![executed(&b1, 1)]);
    let b3 = block(3, certify(keys, &b2, &[1, 2, 3]), b"3");
    let b3 = with_state(b3, 2, vec![executed(&b2, 2)]);
    let b4 = block(4, certify(keys, &b3, &[0, 2, 3]), b"4");
    let b4 = with_state(b4, 3, vec![]);
    vec![b4, b3, b2, b1]
}

fn committee(keys: &[KeyPair]) -> Committee {
    Committee::new(0, keys.iter().map(|k| k.public()).collect()).unwrap()
}

#[test]
fn a_certified_chain_proves_the_root_it_carries() {
    let keys = keys();
    let committee = committee(&keys);
    let check = |proof: &[Block], anchor: Hash32, height: u64, r: Hash32| {
        verify_root_proof(&committee, ed25519_verify, proof, anchor, height, r)
    };
    let c = chain(&keys);
    let b1 = c[3].id();
    // b3 certified by b4's QC; b2 below it carries height 1.
    assert_eq!(check(&c[..3], b1, 1, root(1)), Ok(3));
    // b2 certified by b3's QC carries it too.
    assert_eq!(check(&c[1..3], b1, 1, root(1)), Ok(2));
    // Height 2 (block b2) is carried by b3, certified by b4.
    assert_eq!(check(&c[..2], c[2].id(), 2, root(2)), Ok(3));
}

#[test]
fn a_proof_of_another_root_block_or_chain_or_a_forged_certificate_is_refused() {
    let keys = keys();
    let committee = committee(&keys);
    let refused = |proof: &[Block], anchor: Hash32, height: u64, r: Hash32| {
        verify_root_proof(&committee, ed25519_verify, proof, anchor, height, r).unwrap_err()
    };
    let c = chain(&keys);
    let b1 = c[3].id();
    assert_eq!(
        refused(&c[..3], b1, 1, root(7)),
        ConsensusError::BadStateRoots("another root is certified")
    );
    assert_eq!(
        refused(&c[..2], c[2].id(), 1, root(1)),
        ConsensusError::BadStateRoots("no block carries the height")
    );
    assert_eq!(
        refused(&c[..3], Hash32([9; 32]), 1, root(1)),
        ConsensusError::BrokenChain,
        "a chain that does not reach the snapshot's block"
    );
    assert!(matches!(
        refused(&c[..1], c[1].id(), 2, root(2)),
        ConsensusError::BadStateRoots(_)
    ));
    // Height 1's certified root offered as the state after another block (genesis, an
    // ancestor the chain also reaches): the certificate binds the height's block too.
    assert_eq!(
        refused(&c, c[3].parent(), 1, root(1)),
        ConsensusError::BadStateRoots("another block is certified at the height")
    );

    // A relayer swaps b2 for a block carrying another root: its id breaks the chain.
    let mut forged = c[..3].to_vec();
    forged[2].state.roots = vec![ExecutedRoot {
        block: b1,
        root: root(7),
    }];
    assert_eq!(
        refused(&forged, b1, 1, root(7)),
        ConsensusError::BrokenChain
    );

    // The certifier's QC with too few signers, or signatures that are not of its digest.
    let mut thin = c[..3].to_vec();
    thin[0].qc.signatures.truncate(2);
    assert!(matches!(
        refused(&thin, b1, 1, root(1)),
        ConsensusError::NoQuorum { .. }
    ));
    let mut forged_sigs = c[..3].to_vec();
    forged_sigs[0].qc.signatures = certify(&keys, &c[3], &[0, 2, 3]).signatures;
    assert_eq!(
        refused(&forged_sigs, b1, 1, root(1)),
        ConsensusError::BadSignature
    );
    // Signed by keys outside the committee.
    let strangers: Vec<KeyPair> = (0..4).map(|i| KeyPair::from_seed([90 + i; 32])).collect();
    let mut outside = c[..3].to_vec();
    outside[0].qc = certify(&strangers, &c[1], &[0, 1, 2]);
    assert_eq!(
        refused(&outside, b1, 1, root(1)),
        ConsensusError::BadSignature
    );
}
