//! Valid inputs for every target: the seed corpus, built from real values so that each
//! variant of each message is present. Deterministic (fixed keys, ed25519 signs
//! deterministically), so the committed corpus under `fuzz/seeds` can be checked against it.

use std::net::SocketAddr;
use std::path::PathBuf;

use ordo_consensus::{Block, Message, Proposal, QuorumCert, Timeout, TimeoutCert, Vote};
use ordo_network::{
    write_frames_to_vec, Batch, BatchAck, BatchBody, BatchInfo, BatchMessage, Request, Response,
};
use ordo_types::{
    codec, keyfile, EthKey, EthTransaction, Hash32, KeyPair, Payload, Signature, SignedTransaction,
    SwapDirection, Transaction,
};

use crate::config::{
    ConsensusSection, ExecutionSection, MempoolSection, MetricsSection, NetworkSection,
    PeerOverride, RpcSection, StorageSection,
};
use crate::genesis::{GenesisAccount, GenesisPool};
use crate::wire::{NodeMessage, NodeRequest, NodeResponse, SnapshotOffer};
use crate::{GenesisFile, NodeConfig};

fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i; 32])
}

fn hash(i: u8) -> Hash32 {
    Hash32([i; 32])
}

fn signed_transactions() -> Vec<SignedTransaction> {
    let payloads = [
        Payload::Transfer {
            to: key(2).address(),
            amount: 10,
        },
        Payload::Swap {
            pool: 1,
            amount_in: 500,
            min_out: 1,
            direction: SwapDirection::BToA,
        },
        Payload::Mint { collection: 3 },
        Payload::Compute { iterations: 64 },
    ];
    payloads
        .into_iter()
        .zip(0u64..)
        .map(|(payload, nonce)| {
            Transaction {
                chain_id: 9,
                sender: key(1).public(),
                nonce,
                expiry: 1_700_000_000_000,
                payload,
            }
            .sign(&key(1))
        })
        .chain(eth_raw().into_iter().map(|raw| {
            EthTransaction::from_raw(raw)
                .expect("a seed Ethereum transaction decodes")
                .into()
        }))
        .collect()
}

/// Ethereum transactions of every kind Ordo takes: legacy (EIP-155), EIP-2930, EIP-1559,
/// a deployment; k256 signs deterministically (RFC 6979).
fn eth_raw() -> Vec<Vec<u8>> {
    use alloy_primitives::{TxKind, U256};
    use ordo_types::ethereum::{eip1559, TxEip2930, TxLegacy};
    let signer = EthKey::from_seed(b"fuzz seeds");
    let to = TxKind::Call(key(2).address().0.into());
    vec![
        signer.sign_raw(TxLegacy {
            chain_id: Some(9),
            nonce: 0,
            gas_price: 1,
            gas_limit: 21_000,
            to,
            value: U256::from(10),
            input: Default::default(),
        }),
        signer.sign_raw(TxEip2930 {
            chain_id: 9,
            nonce: 1,
            gas_price: 1,
            gas_limit: 50_000,
            to,
            value: U256::ZERO,
            access_list: Default::default(),
            input: vec![0xa9, 0x05, 0x9c, 0xbb].into(),
        }),
        signer.sign_raw(eip1559(
            9,
            2,
            Some(key(3).address()),
            1 << 70,
            vec![],
            21_000,
            2,
        )),
        signer.sign_raw(eip1559(
            9,
            3,
            None,
            0,
            vec![0x60, 0x00, 0x60, 0x00, 0xf3],
            100_000,
            2,
        )),
    ]
}

pub fn eth_transaction() -> Vec<Vec<u8>> {
    eth_raw()
}

pub fn eth_json_rpc() -> Vec<Vec<u8>> {
    let raw = format!("0x{}", hex_of(&eth_raw()[2]));
    let address = format!("{}", key(2).address());
    let bodies = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "eth_sendRawTransaction", "params": [raw]}),
        serde_json::json!([
            {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [address, "latest"]},
            {"jsonrpc": "2.0", "id": "four", "method": "eth_getStorageAt", "params": [address, "0x1", "latest"]},
        ]),
        serde_json::json!({"jsonrpc": "2.0", "id": 5, "method": "eth_call", "params": [
            {"from": address, "to": address, "value": "0x10", "gas": "0x5208", "input": "0xa9059cbb"},
            "latest"
        ]}),
        serde_json::json!({"jsonrpc": "2.0", "id": 6, "method": "eth_getLogs", "params": [{
            "fromBlock": "0x1", "toBlock": "latest", "address": [address],
            "topics": [format!("0x{}", "ab".repeat(32)), null, [format!("0x{}", "cd".repeat(32))]]
        }]}),
    ];
    bodies
        .iter()
        .map(|b| serde_json::to_vec(b).expect("JSON"))
        .collect()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn transaction() -> Vec<Vec<u8>> {
    signed_transactions().iter().map(|t| t.encode()).collect()
}

pub fn transaction_json() -> Vec<Vec<u8>> {
    signed_transactions()
        .iter()
        .map(|t| serde_json::to_vec(t).expect("a transaction serialises to JSON"))
        .collect()
}

pub fn rpc_transactions() -> Vec<Vec<u8>> {
    let txs = signed_transactions();
    vec![
        codec::encode(&txs),
        codec::encode(&txs[..1].to_vec()),
        codec::encode(&Vec::<SignedTransaction>::new()),
    ]
}

pub fn rpc_payloads() -> Vec<Vec<u8>> {
    vec![
        codec::encode(&vec![b"payload".to_vec(), Vec::new(), vec![7; 40]]),
        codec::encode(&Vec::<Vec<u8>>::new()),
    ]
}

fn qc(round: u64) -> QuorumCert {
    QuorumCert {
        round,
        block_id: hash(round as u8),
        parent_round: round.saturating_sub(1),
        parent_id: hash(round as u8 + 100),
        signatures: vec![(0, Signature([1; 64])), (2, Signature([2; 64]))],
    }
}

fn tc(round: u64) -> TimeoutCert {
    TimeoutCert {
        round,
        high_qc: qc(round - 2),
        signatures: vec![
            (1, round - 2, Signature([3; 64])),
            (3, 0, Signature([4; 64])),
        ],
    }
}

fn block(round: u64) -> Block {
    Block {
        epoch: 1,
        round,
        author: 1,
        timestamp_ms: 1_700_000_000_000,
        payload: vec![hash(7), hash(8)],
        state: ordo_consensus::StateRoots {
            first: round,
            roots: vec![ordo_consensus::ExecutedRoot {
                block: hash(9),
                root: hash(10),
            }],
        },
        qc: qc(round - 1),
    }
}

fn consensus_messages() -> Vec<Message> {
    vec![
        Message::Proposal(Proposal {
            block: block(5),
            tc: Some(tc(4)),
            signature: Signature([5; 64]),
        }),
        Message::Proposal(Proposal {
            block: Block::genesis(1),
            tc: None,
            signature: Signature([6; 64]),
        }),
        Message::Vote(Vote {
            round: 5,
            block_id: hash(5),
            parent_round: 4,
            parent_id: hash(4),
            author: 2,
            signature: Signature([7; 64]),
        }),
        Message::Timeout(Timeout {
            round: 6,
            high_qc: qc(5),
            last_tc: Some(tc(5)),
            commit_qc: QuorumCert::genesis(1),
            author: 3,
            signature: Signature([8; 64]),
        }),
        Message::TimeoutCert(tc(6)),
        Message::BlockRequest {
            block_id: hash(9),
            above_round: 2,
            max: 16,
        },
        Message::BlockResponse {
            blocks: vec![block(4), block(3)],
        },
        Message::CatchUpRequest {
            after: hash(2),
            max: 128,
        },
        Message::CatchUpResponse {
            after: hash(2),
            blocks: vec![block(3), block(4)],
        },
    ]
}

pub fn consensus_message() -> Vec<Vec<u8>> {
    consensus_messages().iter().map(Message::encode).collect()
}

fn batches() -> Vec<Batch> {
    vec![
        Batch {
            author: key(3).public(),
            seq: 1,
            body: BatchBody::Transactions(signed_transactions()),
        },
        Batch {
            author: key(3).public(),
            seq: 2,
            body: BatchBody::Opaque(vec![b"opaque".to_vec(), Vec::new()]),
        },
    ]
}

fn batch_info() -> BatchInfo {
    batches()[0].info()
}

pub fn batch_message() -> Vec<Vec<u8>> {
    let mut messages: Vec<BatchMessage> = batches().into_iter().map(BatchMessage::Batch).collect();
    messages.push(BatchMessage::Ack(BatchAck::sign(9, batch_info(), &key(4))));
    messages.iter().map(codec::encode).collect()
}

pub fn sync_request() -> Vec<Vec<u8>> {
    [
        Request::Batch(batch_info().digest),
        Request::Opaque(NodeRequest::Batch(batch_info().digest).encode()),
    ]
    .iter()
    .map(codec::encode)
    .collect()
}

pub fn sync_response() -> Vec<Vec<u8>> {
    let mut responses = vec![Response::Batch(None), Response::Busy];
    responses.extend(batches().into_iter().map(|b| Response::Batch(Some(b))));
    responses.extend(node_response().into_iter().map(Response::Opaque));
    responses.iter().map(codec::encode).collect()
}

/// Streams of frames, each after the byte that sets the reader's limit (16 x 255 bytes).
pub fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let messages = consensus_message();
    for frames in [&messages[2..4], &messages[5..6], &[]] {
        let mut stream = vec![u8::MAX];
        stream.extend(write_frames_to_vec(frames));
        out.push(stream);
    }
    out
}

pub fn node_message() -> Vec<Vec<u8>> {
    let mut messages: Vec<NodeMessage> = consensus_messages()
        .into_iter()
        .map(NodeMessage::Consensus)
        .collect();
    messages.push(NodeMessage::StateRoot {
        height: 12,
        root: hash(12),
    });
    messages.iter().map(NodeMessage::encode).collect()
}

pub fn node_request() -> Vec<Vec<u8>> {
    vec![
        NodeRequest::Batch(hash(1)).encode(),
        NodeRequest::Blocks {
            block_id: hash(9),
            above_round: 2,
            max: 16,
        }
        .encode(),
        NodeRequest::CommittedAfter {
            after: hash(2),
            max: 128,
        }
        .encode(),
        NodeRequest::Snapshots.encode(),
        NodeRequest::SnapshotManifest(500).encode(),
        NodeRequest::SnapshotChunk {
            height: 500,
            index: 3,
        }
        .encode(),
    ]
}

pub fn node_response() -> Vec<Vec<u8>> {
    let mut responses = vec![
        NodeResponse::Batch(None),
        NodeResponse::Blocks(vec![block(4), block(3)]),
        NodeResponse::Snapshots(vec![SnapshotOffer {
            height: 500,
            state_root: hash(5),
            block_hash: hash(6),
            certified_by: hash(8),
            proof_blocks: 4,
            manifest: hash(7),
            chunks: 12,
            bytes: 12 << 20,
        }]),
        NodeResponse::SnapshotManifest(None),
        NodeResponse::SnapshotChunk(Some(vec![1, 2, 3])),
    ];
    responses.extend(
        batches()
            .iter()
            .map(|b| NodeResponse::Batch(Some(codec::encode(b)))),
    );
    responses.iter().map(NodeResponse::encode).collect()
}

/// The smallest config `ordo run` accepts, and a full one as `ordo testnet` writes it.
pub fn config() -> Vec<Vec<u8>> {
    let minimal = "data_dir = \"data\"\ngenesis = \"../genesis.json\"\n\
        validator_key = \"validator.key\"\nnetwork_key = \"network.key\"\n\n\
        [network]\nlisten = \"/ip4/127.0.0.1/tcp/7000\"\n";
    let full = NodeConfig {
        data_dir: PathBuf::from("/var/lib/ordo/data"),
        genesis: PathBuf::from("genesis.toml"),
        validator_key: PathBuf::from("validator.key"),
        network_key: PathBuf::from("network.key"),
        network: NetworkSection {
            listen: "/ip4/0.0.0.0/tcp/7000".parse().expect("a valid multiaddr"),
            peers: vec![PeerOverride {
                consensus_key: key(2).public(),
                address: "/dns4/v2.example/tcp/7000"
                    .parse()
                    .expect("a valid multiaddr"),
            }],
        },
        rpc: RpcSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 7101)),
            ..RpcSection::default()
        },
        metrics: MetricsSection {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7102))),
        },
        consensus: ConsensusSection::default(),
        execution: ExecutionSection::default(),
        mempool: MempoolSection::default(),
        storage: StorageSection {
            sync_commits: false,
            small_caches: true,
            snapshot_interval_blocks: 500,
            snapshots_kept: 3,
            state_sync: false,
            state_sync_wait_ms: 2_000,
            retain_blocks: 5_000,
        },
        byzantine: None,
    };
    vec![minimal.as_bytes().to_vec(), full.to_toml().into_bytes()]
}

/// The tests' sample genesis, with an address per validator, a funded account of a known
/// key and a pool and collection of their own.
fn genesis() -> GenesisFile {
    let mut g = crate::genesis::sample();
    for (i, v) in (0u16..).zip(g.validators.iter_mut()) {
        v.address = format!("/ip4/127.0.0.1/tcp/{}", 7000 + i)
            .parse()
            .expect("a valid multiaddr");
    }
    g.accounts = vec![GenesisAccount {
        address: key(1).address(),
        balance: 1_000_000,
    }];
    g.pools = vec![GenesisPool {
        id: 1,
        reserve_a: 1_000,
        reserve_b: 2_000,
    }];
    g.collections = vec![3];
    g
}

pub fn genesis_json() -> Vec<Vec<u8>> {
    let mut ordering_only = genesis();
    ordering_only.ordering_only = true;
    [genesis(), ordering_only]
        .iter()
        .map(|g| g.to_json().into_bytes())
        .collect()
}

pub fn genesis_toml() -> Vec<Vec<u8>> {
    vec![toml::to_string(&genesis())
        .expect("a genesis serialises to TOML")
        .into_bytes()]
}

pub fn keyfile() -> Vec<Vec<u8>> {
    vec![keyfile::to_text(&key(1)).into_bytes()]
}
