//! What the block-sync tests share: a committee of four real ed25519 keys, round-robin
//! leaders, and blocks, certificates and proposals built as honest validators build them.
#![allow(dead_code)]

use ordo_consensus::messages::{proposal_digest, vote_digest};
use ordo_consensus::{
    Action, Block, Config, Event, LeaderPolicy, Message, Proposal, QuorumCert, Replica,
};
use ordo_types::{Hash32, KeyPair};

pub const N: usize = 4;

pub fn keys() -> Vec<KeyPair> {
    (0..N)
        .map(|i| KeyPair::from_seed([i as u8 + 1; 32]))
        .collect()
}

pub fn config() -> Config {
    let mut cfg = Config::new(N);
    cfg.require_payload_available = false;
    cfg.leader_policy = LeaderPolicy::RoundRobin;
    cfg
}

/// A QC for `block` signed by `signers`.
pub fn certify(keys: &[KeyPair], block: &Block, signers: &[usize]) -> QuorumCert {
    let digest = vote_digest(
        0,
        block.round,
        &block.id(),
        block.qc.round,
        &block.qc.block_id,
    );
    QuorumCert {
        round: block.round,
        block_id: block.id(),
        parent_round: block.qc.round,
        parent_id: block.qc.block_id,
        signatures: signers
            .iter()
            .map(|&i| (i as u16, keys[i].sign(digest.as_bytes())))
            .collect(),
    }
}

pub fn block(round: u64, qc: QuorumCert, tag: &[u8]) -> Block {
    Block {
        epoch: 0,
        round,
        author: (round % N as u64) as u16,
        timestamp_ms: round,
        payload: vec![Hash32::digest(b"sync-test\0", tag)],
        state: Default::default(),
        qc,
    }
}

pub fn propose(keys: &[KeyPair], block: Block) -> Proposal {
    let signer = &keys[usize::from(block.author)];
    let signature = signer.sign(proposal_digest(0, block.round, &block.id()).as_bytes());
    Proposal {
        block,
        tc: None,
        signature,
    }
}

pub fn deliver(r: &mut Replica<KeyPair>, keys: &[KeyPair], from: usize, m: Message) -> Vec<Action> {
    deliver_at(r, 10, keys, from, m)
}

/// `m` from validator `from`, delivered at `now_ms`.
pub fn deliver_at(
    r: &mut Replica<KeyPair>,
    now_ms: u64,
    keys: &[KeyPair],
    from: usize,
    m: Message,
) -> Vec<Action> {
    r.handle(
        now_ms,
        Event::Message {
            from: keys[from].public(),
            message: m,
        },
    )
}

pub fn committed(actions: &[Action]) -> Vec<Hash32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { blocks, .. } => Some(blocks.iter().map(Block::id)),
            _ => None,
        })
        .flatten()
        .collect()
}
