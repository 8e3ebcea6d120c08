//! Four real `ordo run` processes on 127.0.0.1: transfers over RPC to committed, equal
//! state roots, a SIGKILLed validator that restarts and catches up, a wiped validator that
//! rejoins by sync, the chain going on with 1 of 4 down, and the RPC's error codes.
//!
//! The number of transfers is `ORDO_E2E_TRANSFERS` (default 10,000, the figure; the
//! whole test takes about 25 s on 2 cores). `ORDO_E2E_LOG` sets the validators' `RUST_LOG`.
//! Figures print with `cargo test -p ordo-cli --test network -- --nocapture`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ordo_cli::http::{self, HttpResponse};
use ordo_cli::localnet::{self, bench_key, Localnet, LocalnetSpec};
use ordo_types::{
    codec, now_ms, Address, Hash32, KeyPair, Payload, SignedTransaction, Transaction,
};
use serde_json::{json, Value};

mod common;
use common::{validator_ports, wait_for};

const CHAIN: u64 = 4242;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A validator process, killed when dropped.
struct Validator {
    index: usize,
    config: PathBuf,
    log: PathBuf,
    rpc: SocketAddr,
    child: Option<Child>,
}

impl Validator {
    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["run", "--config", self.config.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("ORDO_E2E_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ordo starts");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    fn get(&self, path: &str) -> Option<Value> {
        http::get(self.rpc, path, HTTP_TIMEOUT).ok()?.json()
    }

    fn status(&self) -> Option<Value> {
        self.get("/v1/status")
    }

    fn executed(&self) -> u64 {
        self.status()
            .and_then(|s| s["executed_height"].as_u64())
            .unwrap_or(0)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Cluster {
    net: Localnet,
    validators: Vec<Validator>,
}

impl Cluster {
    fn new(dir: &Path, n: usize, senders: u32) -> Cluster {
        Self::with(dir, n, senders, false)
    }

    fn with(dir: &Path, n: usize, senders: u32, ordering_only: bool) -> Cluster {
        let spec = LocalnetSpec {
            validators: n,
            chain_id: CHAIN,
            ports: Some(validator_ports(n)),
            bench_accounts: senders,
            ordering_only,
            ..LocalnetSpec::default()
        };
        let net = localnet::generate(dir, &spec).unwrap();
        let mut validators = Vec::new();
        for v in &net.validators {
            let mut config = v.config.clone();
            // Two cores shared by four validators and the test.
            config.execution.threads = 1;
            config.consensus.base_timeout_ms = 1_000;
            // Small sync answers, so that a validator wiped after a few dozen rounds
            // catches up forward over several answers (128 would need minutes of chain).
            config.consensus.sync_batch = 8;
            config.write(&v.config_path).unwrap();
            validators.push(Validator {
                index: v.index,
                config: v.config_path.clone(),
                log: v.log_path.clone(),
                rpc: v.rpc,
                child: None,
            });
        }
        Cluster { net, validators }
    }

    /// Starts every validator and waits until each sees its three peers and has committed.
    fn start_all(&mut self) {
        for v in &mut self.validators {
            v.start();
        }
        let all_up = wait_for(Duration::from_secs(60), || {
            self.validators.iter().all(|v| {
                v.status().is_some_and(|s| {
                    s["peers"].as_u64() == Some(3) && s["height"].as_u64() > Some(0)
                })
            })
        });
        assert!(
            all_up,
            "validators did not connect and commit\n{}",
            self.dump_logs()
        );
    }

    fn dump_logs(&self) -> String {
        self.validators
            .iter()
            .map(|v| format!("--- validator {} ---\n{}", v.index, v.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn transfer(key: &KeyPair, nonce: u64, to: Address, amount: u128, chain: u64) -> SignedTransaction {
    Transaction {
        chain_id: chain,
        sender: key.public(),
        nonce,
        expiry: now_ms() + 300_000,
        payload: Payload::Transfer { to, amount },
    }
    .sign(key)
}

fn error_code(r: &HttpResponse) -> String {
    r.json()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("<{} {}>", r.status, String::from_utf8_lossy(&r.body)))
}

/// Submits `txs` in binary batches; returns how many were accepted, asserting that none
/// was refused.
fn submit_all(v: &Validator, txs: &[SignedTransaction]) -> usize {
    let mut accepted = 0;
    for chunk in txs.chunks(500) {
        let body = codec::encode(&chunk.to_vec());
        let mut tries = 0;
        loop {
            let r = http::post_bytes(v.rpc, "/v1/transactions/batch", &body, HTTP_TIMEOUT)
                .expect("batch submission answered");
            if r.status == 503 && tries < 100 {
                // busy: back-pressure from a lagging pipeline; retry after a pause.
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let v = r.json().expect("JSON answer");
            assert_eq!(r.status, 200, "{v}");
            let errors: Vec<&Value> = v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| !e.is_null())
                .collect();
            assert!(errors.is_empty(), "refused: {errors:?}");
            accepted += v["accepted"].as_u64().unwrap() as usize;
            break;
        }
    }
    accepted
}

/// A request that announces a body of `len` bytes and sends none: the server must refuse
/// it from the header alone.
fn announce_oversized(addr: SocketAddr, path: &str, len: usize) -> HttpResponse {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    http::parse(&raw).expect("an HTTP answer")
}

/// The hashes that blocks `from..=to` list as executed on `v`, in order.
fn block_transactions(v: &Validator, from: u64, to: u64) -> Vec<Hash32> {
    let mut all = Vec::new();
    for height in from..=to {
        let r = http::request(
            v.rpc,
            "GET",
            &format!("/v1/blocks/{height}/transactions"),
            None,
            &[],
            HTTP_TIMEOUT,
        )
        .unwrap();
        let json = r.json().expect("JSON block transactions");
        assert_eq!(r.status, 200, "height {height}: {json}");
        assert_eq!(json["height"].as_u64(), Some(height));
        all.extend(
            json["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().parse::<Hash32>().unwrap()),
        );
    }
    all
}

fn committed_count(v: &Validator, hashes: &[String]) -> usize {
    hashes
        .iter()
        .filter(|h| {
            v.get(&format!("/v1/transactions/{h}"))
                .is_some_and(|s| s["status"] == "committed")
        })
        .count()
}

#[test]
fn four_validators_commit_recover_and_agree() {
    let transfers: usize = std::env::var("ORDO_E2E_TRANSFERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    // Two transfers per funded sender, each sender through one validator: its second
    // transfer must not be ordered before its first (batches reach consensus in the order
    // their author made them).
    let senders = (transfers as u32 / 2).max(1);
    let mut cluster = Cluster::new(dir.path(), 4, senders);
    let started = Instant::now();
    cluster.start_all();
    eprintln!(
        "4 validators up and committing after {:?}",
        started.elapsed()
    );

    // Transfers from the funded benchmark accounts, each sender through one validator
    // (0, 1 or 2: validator 3 is the one killed) so that its nonces arrive in order.
    let keys: Vec<KeyPair> = (0..senders).map(|i| bench_key(CHAIN, i)).collect();
    let mut per_validator: Vec<Vec<SignedTransaction>> = vec![Vec::new(); 3];
    let mut all = Vec::new();
    for i in 0..transfers {
        let s = i % senders as usize;
        let nonce = (i / senders as usize) as u64;
        let to = keys[(s + 1) % keys.len()].address();
        let tx = transfer(&keys[s], nonce, to, 1, CHAIN);
        per_validator[s % 3].push(tx.clone());
        all.push(tx);
    }
    let hashes: Vec<String> = all.iter().map(|t| t.hash().to_string()).collect();

    // First half, then SIGKILL validator 3 mid-load, then the second half.
    let load_started = Instant::now();
    let mut second_half = Vec::new();
    for (i, txs) in per_validator.iter().enumerate() {
        let (a, b) = txs.split_at(txs.len() / 2);
        assert_eq!(submit_all(&cluster.validators[i], a), a.len());
        second_half.push(b.to_vec());
    }
    cluster.validators[3].kill9();
    let killed_at = Instant::now();
    let height_at_kill = cluster.validators[0].executed();
    for (i, txs) in second_half.iter().enumerate() {
        assert_eq!(submit_all(&cluster.validators[i], txs), txs.len());
    }
    let submitted_in = load_started.elapsed();

    // With 1 of 4 down the chain keeps committing, and every transfer commits.
    let all_committed = wait_for(Duration::from_secs(120), || {
        committed_count(&cluster.validators[0], &hashes[hashes.len() - 100..]) == 100
    });
    assert!(
        all_committed,
        "last transfers not committed\n{}",
        cluster.dump_logs()
    );
    let committed_in = load_started.elapsed();
    assert_eq!(
        committed_count(&cluster.validators[0], &hashes),
        transfers,
        "some transfers did not commit"
    );
    let height_down = cluster.validators[0].executed();
    // The blocks' transaction lists name every transfer exactly once, and nothing else.
    let mut listed = block_transactions(&cluster.validators[0], 1, height_down);
    listed.sort();
    let mut expected: Vec<Hash32> = all.iter().map(SignedTransaction::hash).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "block transaction lists differ from the transfers"
    );
    assert!(
        height_down > height_at_kill,
        "no progress with validator 3 down ({height_at_kill} -> {height_down})"
    );
    eprintln!(
        "{transfers} transfers: submitted in {submitted_in:?}, all committed after {committed_in:?} \
         ({:.0} tx/s end to end, 2 cores); height {height_at_kill} -> {height_down} with 1 of 4 down",
        transfers as f64 / committed_in.as_secs_f64()
    );

    // Validator 3 restarts from RocksDB and catches up.
    let down_for = killed_at.elapsed();
    cluster.validators[3].start();
    let restarted = Instant::now();
    let target = cluster.validators[0].executed();
    let caught_up = wait_for(Duration::from_secs(90), || {
        cluster.validators[3].executed() >= target
    });
    assert!(
        caught_up,
        "validator 3 did not catch up to {target}\n{}",
        cluster.dump_logs()
    );
    eprintln!(
        "validator 3 (down {down_for:?}) caught up to height {target} in {:?} after restart",
        restarted.elapsed()
    );

    // Every validator reports the same state root at the same height.
    let check_roots = |cluster: &Cluster, height: u64| {
        let roots: Vec<Value> = cluster
            .validators
            .iter()
            .map(|v| {
                v.get(&format!("/v1/blocks/{height}"))
                    .map(|b| b["state_root"].clone())
                    .unwrap_or(Value::Null)
            })
            .collect();
        assert!(!roots[0].is_null(), "no state root at {height}: {roots:?}");
        assert!(
            roots.iter().all(|r| *r == roots[0]),
            "roots differ at {height}: {roots:?}"
        );
    };
    check_roots(&cluster, target);
    // The transfers' blocks too: the height of the last one committed, on every validator.
    let last = cluster.validators[3]
        .get(&format!("/v1/transactions/{}", hashes[hashes.len() - 1]))
        .unwrap();
    assert_eq!(last["status"], "committed", "{last}");
    check_roots(&cluster, last["height"].as_u64().unwrap());

    // Never applied twice: each sender's nonce is its transfer count, on the restarted
    // validator too; resubmitting a committed transfer is refused with nonce_too_low.
    let per_sender = (transfers / senders as usize) as u64;
    for (i, key) in keys.iter().enumerate().step_by(7) {
        let a = cluster.validators[0]
            .get(&format!("/v1/accounts/{}", key.address()))
            .unwrap();
        if a["nonce"].as_u64() != Some(per_sender) {
            let statuses: Vec<Value> = all
                .iter()
                .filter(|t| t.sender_address() == key.address())
                .map(|t| {
                    cluster.validators[0]
                        .get(&format!("/v1/transactions/{}", t.hash()))
                        .unwrap_or(Value::Null)
                })
                .collect();
            panic!("sender {i}: {a}; its transfers: {statuses:?}");
        }
    }
    for v in [&cluster.validators[0], &cluster.validators[3]] {
        let a = v
            .get(&format!("/v1/accounts/{}", keys[0].address()))
            .unwrap();
        assert_eq!(a["nonce"].as_u64(), Some(per_sender), "{a}");
        let r = http::post_json(
            v.rpc,
            "/v1/transactions",
            &serde_json::to_value(&all[0]).unwrap(),
            HTTP_TIMEOUT,
        )
        .unwrap();
        assert_eq!(error_code(&r), "nonce_too_low");
    }

    // Bad requests get their codes and the node keeps serving.
    let v0 = &cluster.validators[0];
    let r = http::request(
        v0.rpc,
        "POST",
        "/v1/transactions",
        Some("application/json"),
        b"{\"tx\":",
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert_eq!((r.status, error_code(&r).as_str()), (400, "malformed"));
    let r = http::post_bytes(v0.rpc, "/v1/transactions", &[7u8; 100], HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "malformed");
    let r = announce_oversized(
        v0.rpc,
        "/v1/transactions",
        ordo_types::MAX_TRANSACTION_BYTES + 1,
    );
    assert_eq!((r.status, error_code(&r).as_str()), (413, "too_large"));
    let r = announce_oversized(v0.rpc, "/v1/transactions/batch", 9 << 20);
    assert_eq!(error_code(&r), "too_large");
    let fresh = KeyPair::from_seed([200; 32]);
    let r = http::post_json(
        v0.rpc,
        "/v1/transactions",
        &serde_json::to_value(transfer(&fresh, 0, Address([1; 20]), 1, CHAIN + 1)).unwrap(),
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert_eq!(error_code(&r), "wrong_chain");
    let mut forged = transfer(&keys[1], per_sender, Address([1; 20]), 1, CHAIN);
    forged.as_ordo_mut().unwrap().tx.payload = Payload::Transfer {
        to: Address([1; 20]),
        amount: 1_000_000,
    };
    let r = http::post_bytes(v0.rpc, "/v1/transactions", &forged.encode(), HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "bad_signature");
    let expired = transfer(&keys[1], per_sender, Address([1; 20]), 1, CHAIN);
    let mut expired = expired.as_ordo().unwrap().tx.clone();
    expired.expiry = now_ms() - 1;
    let expired = expired.sign(&keys[1]);
    let r = http::post_bytes(v0.rpc, "/v1/transactions", &expired.encode(), HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "expired");
    let r = http::get(v0.rpc, "/v1/transactions/nothex", HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "malformed");
    let unknown = ordo_types::Hash32([9; 32]);
    let s = v0
        .get(&format!("/v1/transactions/{unknown}?wait_ms=300"))
        .unwrap();
    assert_eq!(s["status"], "unknown");
    assert_eq!(v0.get("/health").unwrap()["status"], "ok");
    let metrics = http::get(v0.rpc, "/metrics", HTTP_TIMEOUT).unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    for name in [
        "ordo_node_executed_height",
        "ordo_node_round",
        "ordo_consensus_committed_blocks_total",
        // Validators 1 and 2 pushed batches that validator 0 offered to consensus as well.
        "ordo_node_peer_batches_offered_total",
    ] {
        assert!(text.contains(name), "metrics lack {name}");
    }

    // A transfer submitted now with a long-poll wait reaches committed.
    let tx = transfer(&keys[2], per_sender, keys[3].address(), 5, CHAIN);
    let submitted = Instant::now();
    let r = http::post_json(
        cluster.validators[2].rpc,
        "/v1/transactions",
        &serde_json::to_value(&tx).unwrap(),
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = cluster.validators[2]
        .get(&format!("/v1/transactions/{}?wait_ms=8000", tx.hash()))
        .unwrap();
    assert_eq!(s["status"], "committed", "{s}");
    eprintln!(
        "one transfer, submit to committed with long-poll: {:?}",
        submitted.elapsed()
    );

    // A validator whose data directory is wiped rejoins by syncing from its peers: far
    // behind, it fetches the committed chain forward (catch-up), not back from the tip.
    let round_at_wipe = cluster.validators[0].status().unwrap()["round"]
        .as_u64()
        .unwrap();
    let v2 = &mut cluster.validators[2];
    assert!(v2.terminate(), "SIGTERM did not stop validator 2 cleanly");
    let data = cluster.net.validators[2].config.data_dir.clone();
    std::fs::remove_dir_all(&data).unwrap();
    cluster.validators[2].start();
    let rejoin = Instant::now();
    let target = cluster.validators[0].executed();
    let synced = wait_for(Duration::from_secs(90), || {
        cluster.validators[2].executed() >= target
    });
    assert!(
        synced,
        "wiped validator 2 did not sync to {target}\n{}",
        cluster.dump_logs()
    );
    let status = cluster.validators[2].status().unwrap();
    eprintln!(
        "wiped validator 2 synced {target} blocks ({round_at_wipe} rounds) in {:?}: {}",
        rejoin.elapsed(),
        status["sync"]
    );
    // Past `sync_batch` (8) rounds behind, the walk back from the tip is not used.
    assert!(
        round_at_wipe > 3 * 8,
        "the chain is too short to test catch-up: {round_at_wipe} rounds"
    );
    assert!(
        status["sync"]["catch_up_blocks"].as_u64().unwrap() > 2 * 8,
        "the wiped validator did not catch up forward over several answers: {status}"
    );
    check_roots(&cluster, target);

    for v in &mut cluster.validators {
        assert!(
            v.terminate(),
            "validator {} did not stop cleanly on SIGTERM",
            v.index
        );
    }
    eprintln!("whole test: {:?}", started.elapsed());
}

/// An ordering-only network orders opaque payloads: every one shows up in a block on every
/// validator; transactions are refused with `wrong_mode`.
#[test]
fn ordering_only_network_orders_opaque_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::with(dir.path(), 4, 1, true);
    for v in &mut cluster.validators {
        v.start();
    }
    let all_up = wait_for(Duration::from_secs(60), || {
        cluster
            .validators
            .iter()
            .all(|v| v.status().is_some_and(|s| s["peers"].as_u64() == Some(3)))
    });
    assert!(
        all_up,
        "validators did not connect\n{}",
        cluster.dump_logs()
    );

    let payloads: Vec<Vec<u8>> = (0..2_000u32)
        .map(|i| {
            let mut p = vec![0u8; 512];
            p[..4].copy_from_slice(&i.to_le_bytes());
            p
        })
        .collect();
    for (i, chunk) in payloads.chunks(250).enumerate() {
        let v = &cluster.validators[i % 4];
        let body = codec::encode(&chunk.to_vec());
        let r = http::post_bytes(v.rpc, "/v1/payloads/batch", &body, HTTP_TIMEOUT).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json().unwrap()["accepted"].as_u64(),
            Some(chunk.len() as u64)
        );
    }
    let mut expected: Vec<Hash32> = payloads
        .iter()
        .map(|p| ordo_node::rpc::payload_hash(p))
        .collect();
    expected.sort();
    for v in &cluster.validators {
        let mut listed = Vec::new();
        let mut next = 1;
        let complete = wait_for(Duration::from_secs(60), || {
            let tip = v.executed();
            listed.extend(block_transactions(v, next, tip));
            next = tip + 1;
            listed.len() >= expected.len()
        });
        assert!(
            complete,
            "validator {}: {} of {} payloads ordered\n{}",
            v.index,
            listed.len(),
            expected.len(),
            cluster.dump_logs()
        );

        listed.sort();
        assert_eq!(
            listed, expected,
            "validator {} ordered other payloads",
            v.index
        );
    }

    let key = bench_key(CHAIN, 0);
    let tx = transfer(&key, 0, Address([1; 20]), 1, CHAIN);
    let v0 = &cluster.validators[0];
    let r = http::post_bytes(v0.rpc, "/v1/transactions", &tx.encode(), HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "wrong_mode");
    let body = codec::encode(&vec![tx]);
    let r = http::post_bytes(v0.rpc, "/v1/transactions/batch", &body, HTTP_TIMEOUT).unwrap();
    assert_eq!(error_code(&r), "wrong_mode");
    for v in &mut cluster.validators {
        assert!(v.terminate(), "validator {} did not stop cleanly", v.index);
    }
}

/// Runs `ordo --rpc V ARGS… --json` against validator `v` and returns its JSON; the
/// command must succeed.
fn ordo_json(v: &Validator, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("--rpc")
        .arg(v.rpc.to_string())
        .arg("--json")
        .args(args)
        .env_remove("ORDO_TESTNET_DIR")
        .output()
        .expect("the ordo binary runs");
    assert!(
        out.status.success(),
        "ordo {args:?} exited {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// The example contracts, deployed and driven through the `ordo contract` CLI on four
/// validator processes: an ERC-20 transfer with its event, an AMM pair with liquidity and
/// a swap, an NFT mint, and a DAO proposal that, voted through, calls a counter. Every
/// validator then answers every read alike and holds the same state root at one height.
#[test]
fn four_validators_run_the_example_contracts_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::new(dir.path(), 4, 1);
    cluster.start_all();
    let key = cluster.net.dev_key_path.to_str().unwrap().to_string();
    let me = ordo_types::keyfile::read(&cluster.net.dev_key_path)
        .unwrap()
        .address()
        .to_string();
    let other = Address([0x42; 20]).to_string();
    let v = &cluster.validators[0];
    let k = ["--key", key.as_str()];
    let with_key = |args: &[&str]| -> Vec<String> {
        args.iter().chain(k.iter()).map(|s| s.to_string()).collect()
    };
    let run = |v: &Validator, args: Vec<String>| -> Value {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ordo_json(v, &args)
    };
    let deploy = |args: &[&str]| -> String {
        let out = run(v, with_key(&[&["contract", "deploy"], args].concat()));
        assert_eq!(out["execution_status"], "success", "{out}");
        out["contract"]
            .as_str()
            .expect("a created contract")
            .to_string()
    };
    let call = |to: &str, sig: &str, args: &[&str]| -> Value {
        let out = run(
            v,
            with_key(&[&["contract", "call", to, sig], args].concat()),
        );
        assert_eq!(out["execution_status"], "success", "{sig}: {out}");
        out
    };
    let read_on = |v: &Validator, to: &str, sig: &str, args: &[&str]| -> Value {
        let out = run(
            v,
            [&["contract", "read", to, sig], args]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert_eq!(out["status"], "success", "{sig}: {out}");
        out["returns"].clone()
    };

    // ERC-20: deploy with constructor arguments, transfer, its decoded event, a read.
    let token = deploy(&["Token", "Ordo", "ORD", "1000000"]);
    let sent = call(
        &token,
        "transfer(address,uint256) returns (bool)",
        &[&other, "250", "--abi", "Token"],
    );
    assert_eq!(sent["returns"], json!([true]));
    assert_eq!(sent["evm"]["logs"][0]["event"], "Transfer", "{sent}");
    assert_eq!(sent["evm"]["logs"][0]["args"]["value"], "250", "{sent}");
    assert_eq!(
        read_on(v, &token, "balanceOf(address) returns (uint256)", &[&other]),
        json!(["250"])
    );

    // A revert through the CLI: more than the sender holds; the reason is decoded.
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args([
            "--rpc",
            &v.rpc.to_string(),
            "--json",
            "contract",
            "call",
            &token,
        ])
        .args([
            "transfer(address,uint256)",
            &other,
            "99999999",
            "--key",
            &key,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reverted["execution_status"], "reverted", "{reverted}");
    assert!(
        reverted["revert_reason"]
            .as_str()
            .unwrap_or("")
            .contains("insufficient balance"),
        "{reverted}"
    );

    // AMM: a second token, a pair over both, liquidity, a swap.
    let token_b = deploy(&["Token", "Other", "OTH", "1000000"]);
    let pair = deploy(&["Pair", &token, &token_b]);
    for t in [&token, &token_b] {
        call(t, "approve(address,uint256)", &[&pair, "1000000"]);
    }
    call(
        &pair,
        "addLiquidity(uint256,uint256)",
        &["100000", "100000"],
    );
    let swapped = call(
        &pair,
        "swap(address,uint256,uint256) returns (uint256)",
        &[&token, "1000", "900"],
    );
    let out: u64 = swapped["returns"][0].as_str().unwrap().parse().unwrap();
    assert!((900..1000).contains(&out), "{swapped}");

    // NFT: a collection and a mint.
    let collection = deploy(&["Collection", "Art", "ART"]);
    let minted = call(&collection, "mint() returns (uint256)", &[]);
    assert_eq!(minted["returns"], json!(["1"]));
    assert_eq!(
        read_on(v, &collection, "ownerOf(uint256) returns (address)", &["1"])[0]
            .as_str()
            .unwrap()
            .to_lowercase(),
        me.to_lowercase()
    );

    // DAO: propose a call to a counter, vote it through, execute it after the vote.
    let counter = deploy(&["Counter"]);
    // Voting is open for 40 blocks: an idle chain makes a few a second, and the vote
    // below is one CLI command after the proposal.
    let dao = deploy(&["Dao", &token, "40", "1"]);
    let increment = format!(
        "0x{}",
        hex_of(&ordo_execution::contracts::call_data("increment()", &[]))
    );
    let proposed = call(
        &dao,
        "propose(address,uint256,bytes,string) returns (uint256)",
        &[&counter, "0", &increment, "count one"],
    );
    let id = proposed["returns"][0].as_str().unwrap().to_string();
    call(&dao, "vote(uint256,bool)", &[&id, "true"]);
    // Execution is allowed once the voting period has passed.
    let until = proposed["height"].as_u64().unwrap() + 41;
    assert!(wait_for(Duration::from_secs(60), || v.executed() > until));
    call(&dao, "execute(uint256)", &[&id]);
    assert_eq!(
        read_on(v, &counter, "get() returns (uint256)", &[]),
        json!(["1"])
    );

    // Every validator answers the reads alike and holds the same root at one height.
    let height = v.executed();
    assert!(wait_for(Duration::from_secs(30), || cluster
        .validators
        .iter()
        .all(|w| w.executed() >= height)));
    let roots: Vec<Value> = cluster
        .validators
        .iter()
        .map(|w| w.get(&format!("/v1/blocks/{height}")).expect("block")["state_root"].clone())
        .collect();
    assert!(
        roots.iter().all(|r| r == &roots[0] && !r.is_null()),
        "{roots:?}"
    );
    for w in &cluster.validators {
        assert_eq!(
            read_on(w, &token, "balanceOf(address) returns (uint256)", &[&other]),
            json!(["250"])
        );
        assert_eq!(
            read_on(w, &counter, "get() returns (uint256)", &[]),
            json!(["1"])
        );
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
