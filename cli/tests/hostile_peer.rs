//! A validator's peer turned hostile: a real `ordo run` process (validator 0 of four) and,
//! in this test, validator 1's real keys on a real libp2p endpoint, saying what an honest
//! validator never would. What a peer merely claims must not change what the node
//! reports, and block sync must not be reachable through the consensus stream.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ordo_cli::http;
use ordo_cli::localnet::{self, LocalnetSpec};
use ordo_consensus::messages::proposal_digest;
use ordo_consensus::{Block, Message, Proposal, QuorumCert};
use ordo_network::{NetworkConfig, Request, Response};
use ordo_node::wire::{NodeMessage, NodeRequest, NodeResponse};
use ordo_types::{keyfile, now_ms, Hash32, Signature};
use serde_json::Value;

mod common;
use common::{validator_ports, wait_for};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(rpc: SocketAddr) -> Option<Value> {
    http::get(rpc, "/v1/status", Duration::from_secs(2))
        .ok()
        .and_then(|r| r.json())
}

/// The sum of a Prometheus counter's samples whose labels contain `label`.
fn counter(metrics: SocketAddr, name: &str, label: &str) -> f64 {
    let Ok(response) = http::get(metrics, "/metrics", Duration::from_secs(2)) else {
        return 0.0;
    };
    String::from_utf8_lossy(&response.body)
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Validator 0 as a real process, and validator 1's keys on a real endpoint in this
/// test, connected to it.
/// Fields drop in declaration order: the process is killed (and waited for) before its
/// folder is removed, or a validator still writing there leaves part of it behind.
struct Setup {
    _node: Process,
    _dir: tempfile::TempDir,
    v0: localnet::LocalValidator,
    v0_key: ordo_types::PublicKey,
    v1_key: ordo_types::KeyPair,
    epoch: u64,
    peer: ordo_network::NetworkHandle,
    inbound: ordo_network::Inbound,
}

impl Setup {
    async fn start() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let spec = LocalnetSpec {
            validators: 4,
            chain_id: 4343,
            ports: Some(validator_ports(4)),
            bench_accounts: 1,
            ..LocalnetSpec::default()
        };
        let net = localnet::generate(dir.path(), &spec).unwrap();
        let v0 = net.validators[0].clone();
        // Alone, validator 0 cannot leave round 1; a replica that timed out of a round no
        // longer votes in it (nor fetches for it), so its timer must outlast the test.
        let mut config = v0.config.clone();
        config.consensus.base_timeout_ms = 120_000;
        config.write(&v0.config_path).unwrap();
        let log = std::fs::File::create(&v0.log_path).unwrap();
        let node = Process(
            Command::new(env!("CARGO_BIN_EXE_ordo"))
                .args(["run", "--config", v0.config_path.to_str().unwrap()])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("ordo run starts"),
        );
        assert!(
            wait_for(Duration::from_secs(30), || status(v0.rpc).is_some()),
            "validator 0 did not answer\n{}",
            std::fs::read_to_string(&v0.log_path).unwrap_or_default()
        );
        // Validator 1's own keys, on its own address: validator 0 takes it for validator 1.
        let v1 = &net.validators[1];
        let network_key = keyfile::read(&v1.config.network_key).unwrap();
        let v1_key = keyfile::read(&v1.config.validator_key).unwrap();
        let committee = net.genesis.network_committee(&[]).unwrap();
        let v0_key = committee.get(0).unwrap().consensus_key;
        let config = NetworkConfig::new(
            localnet::network_identity(&network_key),
            v1.config.network.listen.clone(),
            committee,
        );
        let (peer, inbound) = ordo_network::start(config).await.unwrap();
        assert!(
            peer.wait_connected(Duration::from_secs(30), |c| c.contains(&0))
                .await,
            "no connection to validator 0"
        );
        Setup {
            _dir: dir,
            _node: node,
            v0,
            v0_key,
            v1_key,
            epoch: net.genesis.epoch,
            peer,
            inbound,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.v0.log_path).unwrap_or_default()
    }

    fn send(&self, message: NodeMessage) {
        self.peer
            .send_consensus(&self.v0_key, message.encode())
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_peer_claims_or_sends_out_of_turn_changes_nothing() {
    let t = Setup::start().await;
    let (v0, peer, v0_key) = (&t.v0, &t.peer, t.v0_key);
    let log = || t.log();

    // A state root for a height far beyond the chain: only certificates may say how far
    // the chain is, so the node must not call itself syncing.
    let claim = NodeMessage::StateRoot {
        height: 1 << 40,
        root: Hash32([7; 32]),
    };
    t.send(claim);
    // A block request on the consensus stream (block sync has its own protocol) comes
    // after it on the same stream; once it is counted, the claim has been read.
    let request = NodeMessage::Consensus(Message::BlockRequest {
        block_id: Hash32([1; 32]),
        above_round: 0,
        max: 128,
    });
    t.send(request);
    assert!(
        wait_for(Duration::from_secs(20), || counter(
            v0.metrics,
            "ordo_node_bad_messages_total",
            ""
        ) >= 1.0),
        "the misrouted block request was not counted\n{}",
        log()
    );
    let s = status(v0.rpc).unwrap();
    assert_eq!(
        s["syncing"],
        Value::Bool(false),
        "a peer's claim moved the status: {s}"
    );

    // A block response nobody asked for is refused by consensus and counted.
    let unasked = NodeMessage::Consensus(Message::BlockResponse {
        blocks: vec![Block::genesis(t.epoch)],
    });
    t.send(unasked);
    assert!(
        wait_for(Duration::from_secs(20), || counter(
            v0.metrics,
            "ordo_consensus_invalid_messages_total",
            "unrequested_blocks"
        ) >= 1.0),
        "an unrequested block response was not refused\n{}",
        log()
    );

    // Block sync proper answers on the sync protocol: a block it does not know is an
    // empty chain, not an error.
    let ask = NodeRequest::Blocks {
        block_id: Hash32([9; 32]),
        above_round: 0,
        max: 128,
    };
    let answer = peer
        .request(&v0_key, &Request::Opaque(ask.encode()))
        .await
        .unwrap();
    let Response::Opaque(bytes) = answer else {
        panic!("not a node answer: {answer:?}");
    };
    assert_eq!(
        NodeResponse::decode(&bytes).unwrap(),
        NodeResponse::Blocks(vec![])
    );
    peer.shutdown().await;
}

/// The batch requests validator 0 sends this peer, answered "not here", until `enough`
/// holds of them or `within` passes.
async fn batch_requests(
    inbound: &mut ordo_network::Inbound,
    within: Duration,
    enough: impl Fn(&[Hash32]) -> bool,
) -> Vec<Hash32> {
    let mut asked = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !enough(&asked) {
        let Ok(Some(request)) = tokio::time::timeout_at(deadline, inbound.requests.recv()).await
        else {
            break;
        };
        if let Request::Opaque(bytes) = &request.request {
            if let Ok(NodeRequest::Batch(d)) = NodeRequest::decode(bytes) {
                asked.push(d);
            }
        }
        request.respond(Response::Opaque(NodeResponse::Batch(None).encode()));
    }
    asked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_is_fetched_only_for_proposals_that_pass_consensus_checks() {
    let mut t = Setup::start().await;
    // Round 1's leader is validator 1 (round-robin until the chain has history): these
    // keys. A proposal with a forged signature names batch A; it must start no fetch.
    let proposal = |payload: Hash32, sign: bool| {
        let block = Block {
            epoch: t.epoch,
            round: 1,
            author: 1,
            timestamp_ms: now_ms(),
            payload: vec![payload],
            state: Default::default(),
            qc: QuorumCert::genesis(t.epoch),
        };
        let digest = proposal_digest(t.epoch, 1, &block.id());
        let signature = if sign {
            t.v1_key.sign(digest.as_bytes())
        } else {
            Signature([5; 64])
        };
        NodeMessage::Consensus(Message::Proposal(Proposal {
            block,
            tc: None,
            signature,
        }))
    };
    let (a, b) = (Hash32([0xa; 32]), Hash32([0xb; 32]));
    t.send(proposal(a, false));
    // A fetch would come within the push grace (300 ms) of the proposal: ten times that
    // without one is the evidence, and the signed proposal next shows a fetch is seen.
    let asked = batch_requests(&mut t.inbound, Duration::from_secs(3), |_| false).await;
    assert!(
        !asked.contains(&a),
        "a forged proposal's batch was fetched\n{}",
        t.log()
    );
    t.send(proposal(b, true));
    let asked = batch_requests(&mut t.inbound, Duration::from_secs(10), |asked| {
        asked.contains(&b)
    })
    .await;
    assert!(
        asked.contains(&b),
        "the leader's checked proposal's batch was not fetched from it: {asked:?}\n{}",
        t.log()
    );
    t.peer.shutdown().await;
}
