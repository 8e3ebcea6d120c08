//! Validators on real libp2p sockets on 127.0.0.1, ports chosen by the OS.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity, Multiaddr};
use ordo_network::{
    network_keypair_from_seed, network_public_key, start, AvailableBatch, Committee, Dissemination,
    DisseminationConfig, Mempool, MempoolConfig, NetworkConfig, NetworkHandle, ValidatorInfo,
};
use ordo_types::{Address, KeyPair, Payload, PublicKey, SignedTransaction, Transaction};
use tokio::sync::mpsc;

pub const CHAIN: u64 = 77;
/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Keys {
    pub consensus: Vec<KeyPair>,
    pub network: Vec<identity::Keypair>,
}

pub fn keys(n: usize) -> Keys {
    Keys {
        consensus: (0..n)
            .map(|i| KeyPair::from_seed([i as u8 + 1; 32]))
            .collect(),
        network: (0..n)
            .map(|i| network_keypair_from_seed([i as u8 + 101; 32]))
            .collect(),
    }
}

/// A committee whose addresses are placeholders, fixed with `set_peer_address` once every
/// endpoint knows the port the OS gave it.
pub fn committee(keys: &Keys) -> Arc<Committee> {
    let validators = keys
        .consensus
        .iter()
        .zip(&keys.network)
        .map(|(c, n)| {
            ValidatorInfo::new(
                c.public(),
                network_public_key(n).unwrap(),
                "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            )
            .unwrap()
        })
        .collect();
    Arc::new(Committee::new(CHAIN, validators).unwrap())
}

pub struct Node {
    pub index: usize,
    pub net: NetworkHandle,
    pub diss: Dissemination,
    pub consensus: mpsc::Receiver<(PublicKey, Vec<u8>)>,
    pub proofs: mpsc::Receiver<AvailableBatch>,
    pub expired: mpsc::Receiver<Vec<ordo_types::Hash32>>,
    pub stored: mpsc::Receiver<ordo_network::BatchInfo>,
    pub requests: mpsc::Receiver<ordo_network::InboundRequest>,
}

impl Node {
    pub async fn shutdown(&self) {
        self.diss.shutdown().await;
        self.net.shutdown().await;
    }
}

pub async fn start_node(
    keys: &Keys,
    committee: &Arc<Committee>,
    index: usize,
    listen: Multiaddr,
    tweak: &dyn Fn(&mut NetworkConfig, &mut DisseminationConfig),
) -> Node {
    let mut net_config = NetworkConfig::new(keys.network[index].clone(), listen, committee.clone());
    let mut diss_config = DisseminationConfig::default();
    tweak(&mut net_config, &mut diss_config);
    let (net, inbound) = start(net_config).await.unwrap();
    let mempool = Arc::new(Mempool::new(MempoolConfig::new(CHAIN)));
    let (diss, outputs) = Dissemination::spawn(
        diss_config,
        keys.consensus[index].clone(),
        net.clone(),
        inbound.batches,
        inbound.batch_requests,
        mempool,
    );
    Node {
        index,
        net,
        diss,
        consensus: inbound.consensus,
        proofs: outputs.proofs,
        expired: outputs.expired,
        stored: outputs.stored,
        requests: inbound.requests,
    }
}

/// Starts the validators named in `live` (others stay down) and tells each the others'
/// addresses.
pub async fn start_cluster(
    keys: &Keys,
    committee: &Arc<Committee>,
    live: &[usize],
    tweak: &dyn Fn(&mut NetworkConfig, &mut DisseminationConfig),
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for &i in live {
        nodes.push(
            start_node(
                keys,
                committee,
                i,
                "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
                tweak,
            )
            .await,
        );
    }
    introduce(&nodes, committee);
    nodes
}

pub fn introduce(nodes: &[Node], committee: &Committee) {
    for a in nodes {
        for b in nodes {
            if a.index != b.index {
                let key = committee.get(b.index).unwrap().consensus_key;
                a.net
                    .set_peer_address(&key, b.net.listen_addr().clone())
                    .unwrap();
            }
        }
    }
}

pub async fn all_connected(nodes: &[Node], expected: usize) {
    for n in nodes {
        assert!(
            n.net.wait_connected(WAIT, |s| s.len() >= expected).await,
            "validator {} connected only to {:?}",
            n.index,
            n.net.connected()
        );
    }
}

/// Polls `cond` until it holds; false if `WAIT` passes first.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

pub use ordo_types::now_ms;

/// `n` signed transfers from `senders` distinct keys, nonces from 0.
pub fn signed_txs(n: usize, senders: usize, seed: u8) -> Vec<SignedTransaction> {
    let keys: Vec<KeyPair> = (0..senders)
        .map(|i| {
            KeyPair::from_seed([
                seed, i as u8, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0,
            ])
        })
        .collect();
    (0..n)
        .map(|i| {
            let key = &keys[i % senders];
            Transaction {
                chain_id: CHAIN,
                sender: key.public(),
                nonce: (i / senders) as u64,
                expiry: now_ms() + 600_000,
                payload: Payload::Transfer {
                    to: Address::default(),
                    amount: 1,
                },
            }
            .sign(key)
        })
        .collect()
}
