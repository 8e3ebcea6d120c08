//! State snapshots between real processes: three validators of four (real `ordo run`
//! processes, a snapshot every 5 blocks) and, in this test, the fourth validator's keys on
//! a real libp2p endpoint, doing what a validator that lost its data does first: it asks
//! every peer which snapshots it offers, trusts one only when more than f of them offer
//! the same height, root, block and manifest, fetches the manifest and the chunks from
//! different peers, and restores them into a store of its own, which must then hold the
//! state root the validators computed at that height. A corrupted chunk is refused.
//!
//! Then the validator itself: wiped under load, it restarts, restores the newest snapshot
//! its peers offer alike, executes only the blocks after it, and agrees with the others
//! on every state root it computes.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ordo_cli::http;
use ordo_cli::localnet::{self, bench_key, LocalnetSpec};
use ordo_network::{NetworkConfig, Request, Response};
use ordo_node::config::NodeConfig;
use ordo_node::wire::{NodeRequest, NodeResponse, SnapshotOffer};
use ordo_storage::{SnapshotManifest, Storage, StorageConfig};
use ordo_types::{
    codec, keyfile, now_ms, Address, Payload, PublicKey, SignedTransaction, Transaction,
};
use serde_json::Value;

mod common;
use common::{validator_ports, wait_for};

const INTERVAL: u64 = 5;
/// Accounts in genesis beyond the development ones: state of a few megabytes, several
/// chunks of 1 MiB.
const ACCOUNTS: u32 = 40_000;
/// Accounts for the tests that catch a restore in the middle: about 35 chunks of 1 MiB.
const RESTORE_ACCOUNTS: u32 = 300_000;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `answer` is the RPC's error of stable code `code`, whose message says `says`.
fn assert_api_error(answer: &Value, code: &str, says: &str) {
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(says)),
        "{answer}"
    );
}

fn get(rpc: SocketAddr, path: &str) -> Option<Value> {
    http::get(rpc, path, Duration::from_secs(2))
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json())
}

async fn ask(peer: &ordo_network::NetworkHandle, to: &PublicKey, ask: NodeRequest) -> NodeResponse {
    for _ in 0..50 {
        match peer.request(to, &Request::Opaque(ask.encode())).await {
            Ok(Response::Opaque(bytes)) => return NodeResponse::decode(&bytes).unwrap(),
            // Busy, or the connection not up yet: ask again.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no answer to {ask:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_snapshot_the_same_heights_and_a_peer_restores_one_from_several() {
    let mut c = Cluster::new(5151, ACCOUNTS, INTERVAL, |_| {});
    for v in 0..3 {
        c.start(v);
    }
    assert!(
        wait_for(Duration::from_secs(120), || (0..3)
            .all(|v| c.executed(v) >= 3 * INTERVAL)),
        "the three validators did not execute {} blocks\n{}",
        3 * INTERVAL,
        c.logs()
    );
    let net = &c.net;
    let logs = || c.logs();

    // Validator 3's keys on its own address: the validators take this endpoint for it.
    let v3 = &net.validators[3];
    let committee = net.genesis.network_committee(&[]).unwrap();
    let keys: Vec<PublicKey> = (0..3)
        .map(|i| committee.get(i).unwrap().consensus_key)
        .collect();
    let config = NetworkConfig::new(
        localnet::network_identity(&keyfile::read(&v3.config.network_key).unwrap()),
        v3.config.network.listen.clone(),
        committee,
    );
    let (peer, _inbound) = ordo_network::start(config).await.unwrap();
    assert!(
        peer.wait_connected(Duration::from_secs(30), |c| (0..3).all(|i| c.contains(&i)))
            .await,
        "not connected to the three validators"
    );

    // Every validator's offers; the newest offered alike by more than f (here: all).
    let mut offered: Vec<Vec<SnapshotOffer>> = Vec::new();
    for key in &keys {
        let NodeResponse::Snapshots(offers) = ask(&peer, key, NodeRequest::Snapshots).await else {
            panic!("not a list of snapshots");
        };
        assert!(
            !offers.is_empty(),
            "a validator offers no snapshot\n{}",
            logs()
        );
        for offer in &offers {
            assert_eq!(offer.height % INTERVAL, 0, "{offer:?}");
        }
        offered.push(offers);
    }
    let chosen = offered[0]
        .iter()
        .rev()
        .find(|o| offered[1..].iter().all(|others| others.contains(o)))
        .cloned()
        .unwrap_or_else(|| panic!("no snapshot offered alike by all three: {offered:?}"));
    eprintln!("chosen: {chosen:?}");
    assert!(
        chosen.chunks >= 2,
        "the state should take several chunks: {chosen:?}"
    );

    // What the validators say they computed at that height.
    let block = get(
        net.validators[0].rpc,
        &format!("/v1/blocks/{}", chosen.height),
    )
    .unwrap();
    assert_eq!(
        block["state_root"],
        Value::from(chosen.state_root.to_string()),
        "{block}"
    );
    assert_eq!(
        block["hash"],
        Value::from(chosen.block_hash.to_string()),
        "{block}"
    );

    let NodeResponse::SnapshotManifest(Some(bytes)) = ask(
        &peer,
        &keys[1],
        NodeRequest::SnapshotManifest(chosen.height),
    )
    .await
    else {
        panic!("no manifest of {}", chosen.height);
    };
    let manifest = SnapshotManifest::decode(&bytes).unwrap();
    assert_eq!(manifest.digest(), chosen.manifest);
    assert_eq!(manifest.state_root, chosen.state_root);

    let store_dir = tempfile::tempdir().unwrap();
    let (store, _) = Storage::open(store_dir.path(), StorageConfig::small()).unwrap();
    let restore = store.begin_restore(&manifest).unwrap();
    for index in 0..manifest.chunks.len() as u32 {
        let from = &keys[index as usize % keys.len()];
        let ask_chunk = NodeRequest::SnapshotChunk {
            height: chosen.height,
            index,
        };
        let NodeResponse::SnapshotChunk(Some(chunk)) = ask(&peer, from, ask_chunk).await else {
            panic!("no chunk {index}");
        };
        if index == 0 {
            // What a lying peer would send: one byte changed.
            let mut corrupted = chunk.clone();
            let last = corrupted.len() - 1;
            corrupted[last] ^= 1;
            assert!(restore.apply_chunk(index, &corrupted).is_err());
            assert_eq!(
                restore.missing().first(),
                Some(&0),
                "the bad chunk was not applied"
            );
        }
        restore.apply_chunk(index, &chunk).unwrap();
    }
    assert!(restore.missing().is_empty());
    let recovery = restore.finish(chosen.block_hash).unwrap();
    assert_eq!(recovery.last_executed, Some(chosen.height));
    assert_eq!(recovery.state_root, chosen.state_root);
    peer.shutdown().await;
}

/// The sum of a Prometheus series' samples.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    metric_with(addr, name, "")
}

/// The sum of the samples of `name` whose labels contain `label`.
fn metric_with(addr: SocketAddr, name: &str, label: &str) -> Option<f64> {
    let response = http::get(addr, "/metrics", Duration::from_secs(2)).ok()?;
    let text = String::from_utf8_lossy(&response.body).to_string();
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.split([' ', '{']).next() == Some(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn start(v: &localnet::LocalValidator) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&v.log_path)
        .unwrap();
    Process(
        Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["run", "--config", v.config_path.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ordo run starts"),
    )
}

/// `senders` accounts' next `count` transfers each, from nonce `first`, in one request.
fn submit_transfers(rpc: SocketAddr, chain: u64, senders: u32, first: u64, count: u64) {
    let txs: Vec<SignedTransaction> = (0..senders)
        .flat_map(|s| {
            let key = bench_key(chain, s);
            (first..first + count).map(move |nonce| {
                Transaction {
                    chain_id: chain,
                    sender: key.public(),
                    nonce,
                    expiry: now_ms() + 300_000,
                    payload: Payload::Transfer {
                        to: Address([7; 20]),
                        amount: 1,
                    },
                }
                .sign(&key)
            })
        })
        .collect();
    let body = codec::encode(&txs);
    for _ in 0..100 {
        let r = http::post_bytes(
            rpc,
            "/v1/transactions/batch",
            &body,
            Duration::from_secs(10),
        )
        .expect("batch submission answered");
        if r.status == 200 {
            let answer = r.json().expect("a JSON answer");
            assert_eq!(
                answer["accepted"].as_u64(),
                Some(txs.len() as u64),
                "not every transfer was accepted: {answer}"
            );
            return;
        }
        // Busy (the pipeline lags): asked again shortly, as a client would.
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("transfers refused");
}

/// Four validators of one chain, generated in a folder of their own, each with `tweak`
/// applied to its config (small caches, one execution thread and a snapshot every
/// `interval` blocks before it).
///
/// Fields drop in declaration order: the processes are killed (and waited for) before
/// their folder is removed, or a validator still writing there leaves part of it behind.
struct Cluster {
    processes: Vec<Option<Process>>,
    _dir: tempfile::TempDir,
    net: localnet::Localnet,
}

impl Cluster {
    fn new(chain: u64, accounts: u32, interval: u64, tweak: impl Fn(&mut NodeConfig)) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let spec = LocalnetSpec {
            validators: 4,
            chain_id: chain,
            ports: Some(validator_ports(4)),
            bench_accounts: accounts,
            ..LocalnetSpec::default()
        };
        let net = localnet::generate(dir.path(), &spec).unwrap();
        for v in &net.validators {
            let mut config = v.config.clone();
            config.storage.snapshot_interval_blocks = interval;
            config.storage.small_caches = true;
            config.execution.threads = 1;
            tweak(&mut config);
            config.write(&v.config_path).unwrap();
        }
        Cluster {
            _dir: dir,
            net,
            processes: Vec::new(),
        }
    }

    fn validator(&self, v: usize) -> &localnet::LocalValidator {
        &self.net.validators[v]
    }

    fn start(&mut self, v: usize) {
        self.processes
            .resize_with(self.processes.len().max(v + 1), || None);
        self.processes[v] = Some(start(self.validator(v)));
    }

    /// SIGKILL.
    fn kill(&mut self, v: usize) {
        if let Some(p) = self.processes.get_mut(v) {
            *p = None;
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a validator that stops running for a while
    /// and goes on where it was, as under a debugger or a stalled machine.
    fn freeze(&self, v: usize, frozen: bool) {
        let pid = self.processes[v]
            .as_ref()
            .expect("a running validator")
            .0
            .id();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// A cluster of `RESTORE_ACCOUNTS` accounts (a restore of about 35 chunks of 1 MiB, long
    /// enough to be caught in the middle) whose validator 3 was wiped and restarted once
    /// its peers had two snapshots; with the height validator 0 had executed then.
    fn with_a_restore_begun(chain: u64, snapshots_kept: usize) -> (Cluster, u64) {
        let mut c = Cluster::new(chain, RESTORE_ACCOUNTS, 2 * INTERVAL, |config| {
            config.storage.snapshots_kept = snapshots_kept;
        });
        for v in 0..4 {
            c.start(v);
        }
        // Snapshots of this state take seconds to write: wait until its peers have some.
        assert!(
            wait_for(Duration::from_secs(180), || (0..3).all(|v| c
                .metric(v, "ordo_storage_snapshots_created_total")
                >= 2.0)),
            "the validators wrote no snapshots\n{}",
            c.logs()
        );
        c.kill(3);
        let wiped_at = c.executed(0);
        c.wipe(3);
        c.start(3);
        (c, wiped_at)
    }

    /// Waits until validator 3's restore has applied some chunks and still lacks at least
    /// `left`; then the chunks applied and the total. Fails the test if the restore ends
    /// or does not get there within two minutes.
    fn mid_restore(&self, left: f64) -> (f64, f64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let total = self.metric(3, "ordo_statesync_chunks");
            let applied = self.metric(3, "ordo_statesync_chunks_applied");
            if applied >= 1.0 && applied + left <= total {
                return (applied, total);
            }
            if self.metric(3, "ordo_statesync_restored_height") > 0.0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the restore was not caught in the middle\n{}", self.logs())
    }

    /// Whether validator `v` still has its snapshot of `height` on disk.
    fn has_snapshot(&self, v: usize, height: u64) -> bool {
        let config = &self.validator(v).config;
        config
            .data_dir
            .join("snapshots")
            .join(height.to_string())
            .exists()
    }

    fn wipe(&self, v: usize) {
        std::fs::remove_dir_all(&self.validator(v).config.data_dir).unwrap();
    }

    fn executed(&self, v: usize) -> u64 {
        get(self.validator(v).rpc, "/v1/status")
            .and_then(|s| s["executed_height"].as_u64())
            .unwrap_or(0)
    }

    fn metric(&self, v: usize, name: &str) -> f64 {
        metric(self.validator(v).metrics, name).unwrap_or(0.0)
    }

    fn root(&self, v: usize, height: u64) -> Value {
        get(self.validator(v).rpc, &format!("/v1/blocks/{height}"))
            .map(|b| b["state_root"].clone())
            .unwrap_or(Value::Null)
    }

    /// Validators `a` and `b` both executed every height of `heights`, to one state root.
    fn assert_roots_agree(&self, a: usize, b: usize, heights: std::ops::RangeInclusive<u64>) {
        for height in heights {
            let root = self.root(a, height);
            assert!(
                !root.is_null(),
                "validator {a} has no root at height {height}"
            );
            assert_eq!(
                root,
                self.root(b, height),
                "state roots differ at height {height}"
            );
        }
    }

    fn logs(&self) -> String {
        self.net
            .validators
            .iter()
            .map(|v| std::fs::read_to_string(&v.log_path).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    }
}

#[test]
fn a_wiped_validator_rejoins_from_a_snapshot_and_executes_only_what_follows() {
    const CHAIN: u64 = 5252;
    const SENDERS: u32 = 20;
    let mut c = Cluster::new(CHAIN, SENDERS, 2 * INTERVAL, |_| {});
    for v in 0..4 {
        c.start(v);
    }
    assert!(
        wait_for(Duration::from_secs(60), || (0..4)
            .all(|v| c.executed(v) >= 1)),
        "the validators did not start\n{}",
        c.logs()
    );
    // Transfers before the snapshots and around them, so that the blocks below the
    // snapshot the wiped validator restores carry transactions.
    let v0 = c.validator(0).rpc;
    submit_transfers(v0, CHAIN, SENDERS, 0, 5);
    assert!(
        wait_for(Duration::from_secs(120), || c.executed(0) >= 5 * INTERVAL),
        "the chain did not reach height {}\n{}",
        5 * INTERVAL,
        c.logs()
    );
    submit_transfers(v0, CHAIN, SENDERS, 5, 5);
    assert!(wait_for(Duration::from_secs(60), || c.executed(0) >= 6 * INTERVAL));

    // Validator 3 loses everything.
    c.kill(3);
    let wiped_at = c.executed(0);
    c.wipe(3);
    c.start(3);
    assert!(
        wait_for(Duration::from_secs(120), || c.executed(3) >= wiped_at + 3),
        "the wiped validator did not rejoin past height {wiped_at}\n{}",
        c.logs()
    );
    let restored = c.metric(3, "ordo_statesync_restored_height") as u64;
    let executed_blocks = c.metric(3, "ordo_node_executed_blocks_total") as u64;
    let now = c.executed(3);
    eprintln!(
        "wiped at {wiped_at}: restored the snapshot of {restored}, executed {executed_blocks} blocks, now at {now}"
    );
    assert!(
        restored > 0 && restored % (2 * INTERVAL) == 0,
        "no snapshot restored ({restored})\n{}",
        c.logs()
    );
    assert!(
        executed_blocks <= now - restored,
        "it executed {executed_blocks} blocks, more than the {} after the snapshot",
        now - restored
    );
    // The snapshot's root was taken on a quorum certificate's word, and the chain
    // certifies roots past it on every validator.
    assert!(c.metric(3, "ordo_statesync_certified_round") > 0.0);
    for v in 0..4 {
        let certified = c.metric(v, "ordo_consensus_certified_state_height") as u64;
        assert!(
            certified >= restored,
            "validator {v}'s chain certifies roots only up to {certified}"
        );
    }
    // Transfers after the rejoin execute there too.
    submit_transfers(c.validator(3).rpc, CHAIN, SENDERS, 10, 2);
    let target = c.executed(0) + 5;
    assert!(
        wait_for(Duration::from_secs(60), || c.executed(3) >= target
            && c.executed(0) >= target),
        "the chain stalled after the rejoin\n{}",
        c.logs()
    );
    c.assert_roots_agree(3, 0, restored..=target);
}

/// Killed in the middle of a restore (after some chunks, before the last), a validator
/// restarted on the same data resumes that restore: it fetches only the chunks it lacks,
/// and ends in agreement with the others.
#[test]
fn a_validator_killed_mid_sync_resumes_the_restore() {
    // Still offered when the killed validator comes back.
    let (mut c, wiped_at) = Cluster::with_a_restore_begun(5353, 6);
    // Killed once some chunks are applied and some are not.
    let (applied_before, total) = c.mid_restore(2.0);
    // What `ordo status` reads meanwhile: `syncing` (503, so that nobody takes the
    // validator for ready) with the restore's progress.
    let answer = http::get(c.validator(3).rpc, "/v1/status", Duration::from_secs(2));
    c.kill(3);
    let answer = answer.unwrap_or_else(|e| panic!("no status during the restore: {e}"));
    assert_eq!(answer.status, 503);
    let status = answer.json().expect("a JSON answer");
    assert_api_error(&status, "syncing", "chunks applied");
    assert_eq!(status["sync"]["phase"], "restoring", "{status}");
    assert_eq!(status["sync"]["chunks"].as_f64(), Some(total), "{status}");
    assert!(
        status["sync"]["chunks_applied"].as_f64() >= Some(applied_before),
        "{status}"
    );
    c.start(3);
    assert!(
        wait_for(Duration::from_secs(120), || c.executed(3) >= wiped_at + 3),
        "the validator killed mid-sync did not rejoin\n{}",
        c.logs()
    );
    let applied_after = metric_with(
        c.validator(3).metrics,
        "ordo_statesync_chunks_total",
        "applied",
    )
    .unwrap_or(0.0);
    let restored = c.metric(3, "ordo_statesync_restored_height") as u64;
    eprintln!(
        "killed after {applied_before} of {total} chunks; the restart fetched {applied_after} and restored {restored}"
    );
    assert!(restored > 0);
    // A restart from scratch would fetch every chunk again.
    assert!(
        applied_after < total,
        "the restart fetched {applied_after} of {total} chunks: it did not resume"
    );
    let top = c.executed(3).min(c.executed(0));
    c.assert_roots_agree(3, 0, restored..=top);
}

/// A syncing validator whose peers delete the snapshot it is restoring (they took two
/// newer ones meanwhile, and keep two) gives that one up and restores a newer one, in
/// the same run: it used to ask for the missing chunks until its tries ran out and then
/// stop, asking its operator to start it again.
#[test]
fn a_validator_whose_snapshot_its_peers_delete_mid_sync_restores_a_newer_one() {
    let (c, wiped_at) = Cluster::with_a_restore_begun(5454, 2);
    // Frozen once some chunks are applied and some are not.
    c.mid_restore(4.0);
    let target = c.metric(3, "ordo_statesync_target_height") as u64;
    c.freeze(3, true);
    assert!(target > 0, "no snapshot height while restoring");
    // The peers go on, and take newer snapshots until none keeps the one being restored.
    let gone = wait_for(Duration::from_secs(180), || {
        (0..3).all(|v| !c.has_snapshot(v, target))
    });
    c.freeze(3, false);
    assert!(
        gone,
        "the peers still keep the snapshot of height {target}\n{}",
        c.logs()
    );
    assert!(
        wait_for(Duration::from_secs(180), || c.executed(3) >= wiped_at + 3),
        "the validator whose snapshot was deleted mid-sync did not rejoin\n{}",
        c.logs()
    );
    let restored = c.metric(3, "ordo_statesync_restored_height") as u64;
    let given_up = c.metric(3, "ordo_statesync_snapshots_given_up_total");
    eprintln!(
        "restoring the snapshot of height {target} when its peers deleted it; gave up \
         {given_up}, restored {restored}"
    );
    // Not a restore that finished before it was frozen.
    assert!(given_up >= 1.0, "no snapshot given up");
    assert!(
        restored > target,
        "restored height {restored}, the deleted snapshot was of height {target}"
    );
    let top = c.executed(3).min(c.executed(0));
    c.assert_roots_agree(3, 0, restored..=top);
}

/// Rejoin time of a wiped validator, for the README's table: `ORDO_REJOIN_ACCOUNTS`
/// funded accounts (state size) and a chain of at least `ORDO_REJOIN_HEIGHT` blocks,
/// snapshots every `ORDO_REJOIN_INTERVAL` blocks. Prints one line; run with
/// `cargo test -p ordo-cli --test snapshots rejoin_time -- --ignored --nocapture`
/// (`ORDO_REJOIN_BATCH_DELAY_MS`: how long an idle leader waits before an empty block, 20
/// ms by default; lower makes long chains sooner; `ORDO_REJOIN_SYNC_COMMITS=0`: no fsync
/// per executed block, so that execution keeps up with such a chain).
#[test]
#[ignore]
fn rejoin_time() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let accounts = env("ORDO_REJOIN_ACCOUNTS", 10_000) as u32;
    let height = env("ORDO_REJOIN_HEIGHT", 100);
    let interval = env("ORDO_REJOIN_INTERVAL", 50);
    let delay = env("ORDO_REJOIN_BATCH_DELAY_MS", 20);
    let sync_commits = env("ORDO_REJOIN_SYNC_COMMITS", 1) == 1;
    let mut c = Cluster::new(5454, accounts, interval, |config| {
        // An idle chain that still makes blocks quickly: the length is what is measured.
        config.consensus.max_batch_delay_ms = delay;
        config.mempool.max_batch_delay_ms = delay;
        // An fsync per empty block holds execution to a few hundred blocks a second.
        config.storage.sync_commits = sync_commits;
    });
    for v in 0..4 {
        c.start(v);
    }
    assert!(wait_for(Duration::from_secs(3_600), || c.executed(0)
        >= height
        && (0..3).all(|v| c
            .metric(v, "ordo_storage_snapshots_created_total")
            >= 1.0)));
    c.kill(3);
    c.wipe(3);
    let wiped_at = c.executed(0);
    let started = std::time::Instant::now();
    c.start(3);
    assert!(wait_for(Duration::from_secs(1_800), || c.executed(3) >= wiped_at));
    let rejoin = started.elapsed();
    if std::env::var_os("ORDO_REJOIN_LOG").is_some() {
        let log = std::fs::read_to_string(&c.validator(3).log_path).unwrap_or_default();
        for line in log.lines().filter(|l| {
            l.contains("state sync") || l.contains("listening") || l.contains("storage opened")
        }) {
            println!("{line}");
        }
    }
    println!(
        "REJOIN accounts={accounts} chain={wiped_at} snapshot_height={} snapshot_mib={:.1} \
         executed_after={} rejoin_s={:.2} v0_pruned_below={} v0_disk_mib={:.1}",
        c.metric(3, "ordo_statesync_restored_height"),
        c.metric(0, "ordo_storage_snapshot_bytes") / (1 << 20) as f64,
        c.metric(3, "ordo_node_executed_blocks_total"),
        rejoin.as_secs_f64(),
        c.metric(0, "ordo_storage_pruned_below"),
        dir_bytes(&c.validator(0).config.data_dir) as f64 / (1 << 20) as f64,
    );
}

/// The bytes of the files under `dir`, counting each hard link once per name (the
/// RocksDB checkpoints snapshots are cut from share files with the store).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Bounded disk, with real processes: validators keep 512 blocks (the least allowed) and
/// snapshot every 50; a request for pruned history is answered "pruned; oldest height is
/// H" over the RPC and over the network. A validator stopped for longer than the window
/// comes back to peers that no longer hold the blocks it lacks: it empties its store (its
/// safety data kept), restores their snapshot and agrees with them again.
#[test]
fn validators_prune_below_the_window_and_one_left_behind_restores_a_snapshot() {
    const CHAIN: u64 = 5353;
    const RETAIN: u64 = 512;
    const EVERY: u64 = 50;
    let mut c = Cluster::new(CHAIN, 20, EVERY, |config| {
        config.storage.retain_blocks = RETAIN;
        // An idle chain that still makes blocks quickly (about 20 a second here).
        config.consensus.max_batch_delay_ms = 20;
    });
    for v in 0..4 {
        c.start(v);
    }
    assert!(
        wait_for(Duration::from_secs(60), || (0..4)
            .all(|v| c.executed(v) >= 5)),
        "the validators did not start\n{}",
        c.logs()
    );
    submit_transfers(c.validator(0).rpc, CHAIN, 20, 0, 3);
    assert!(wait_for(Duration::from_secs(60), || c.executed(3) >= 20));
    let left_at = c.executed(3);
    c.kill(3);

    // The others run on until they pruned well past where validator 3 stopped.
    let v0 = c.validator(0);
    assert!(
        wait_for(Duration::from_secs(300), || {
            c.metric(0, "ordo_storage_pruned_below") > (left_at + 100) as f64
                && c.metric(1, "ordo_storage_pruned_below") > (left_at + 100) as f64
                && c.metric(2, "ordo_storage_pruned_below") > (left_at + 100) as f64
        }),
        "the validators did not prune past height {}\n{}",
        left_at + 100,
        c.logs()
    );
    let oldest = c.metric(0, "ordo_storage_pruned_below") as u64;
    let pruned = http::get(v0.rpc, "/v1/blocks/1", Duration::from_secs(2)).unwrap();
    assert_eq!(pruned.status, 410, "{:?}", pruned.json());
    assert_api_error(
        &pruned.json().unwrap(),
        "pruned",
        "pruned; oldest height is",
    );
    assert!(get(v0.rpc, &format!("/v1/blocks/{}", oldest + 1)).is_some());
    let eth = http::post_json(
        v0.rpc,
        "/",
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x1", false]}),
        Duration::from_secs(2),
    )
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(eth["error"]["code"], 4444, "{eth}");
    // The window is kept: the heights above the pruning point are all still served.
    let executed = c.executed(0);
    assert!(
        executed + 1 - oldest >= RETAIN,
        "kept {} blocks, fewer than {RETAIN}",
        executed + 1 - oldest
    );

    // Validator 3, back after the window moved past it, restores a snapshot.
    c.start(3);
    assert!(
        wait_for(Duration::from_secs(120), || c.executed(3) > executed),
        "the validator left behind did not rejoin\n{}",
        c.logs()
    );
    let restored = c.metric(3, "ordo_statesync_restored_height") as u64;
    assert!(
        restored > left_at && restored % EVERY == 0,
        "no snapshot restored past {left_at} ({restored})\n{}",
        c.logs()
    );
    let log = std::fs::read_to_string(&c.validator(3).log_path).unwrap();
    assert!(
        log.contains("safety data kept"),
        "the store was not emptied keeping its safety data"
    );
    let target = c.executed(0) + 5;
    assert!(
        wait_for(Duration::from_secs(60), || c.executed(3) >= target
            && c.executed(0) >= target),
        "the chain stalled after the rejoin\n{}",
        c.logs()
    );
    c.assert_roots_agree(3, 0, restored + 1..=target);
}
