//! A user's `ordo transfer` (nonce read from the node) against random validators of a
//! four-validator network while one validator is paused (SIGSTOP) and another is killed and
//! restarted: no transfer may end committed-but-failed with `bad_nonce` because its nonce
//! was read from a validator that had not yet executed the sender's previous transfer, and
//! money is conserved.
//!
//! Real `ordo run` processes on free 127.0.0.1 ports and real `ordo transfer` processes,
//! one sender account per client thread. Bounded in time (about 45 s on 2 cores) and in
//! count (`ORDO_STALE_TRANSFERS` per thread, default 250). A failing run prints its seed;
//! `ORDO_STALE_SEED` replays the same choice of validators. `ORDO_STALE_BIN` runs another
//! build of `ordo` (one from before a fix, for instance) in place of this one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ordo_cli::http;
use ordo_cli::localnet::{self, bench_key, LocalnetSpec};
use ordo_types::{keyfile, now_ms, Address, KeyPair, SeededRng};
use serde_json::Value;

mod common;
use common::{validator_ports, wait_for};

const CHAIN: u64 = 4343;
const VALIDATORS: usize = 4;
/// Client threads, one funded sender each: the four.
const CLIENTS: usize = 4;
/// How long the clients keep starting transfers.
const LOAD_FOR: Duration = Duration::from_secs(24);
/// The longest one `ordo transfer` may run before the test gives up on it: a transfer sent
/// to a validator that is then frozen waits for its request timeouts.
const TRANSFER_LIMIT: Duration = Duration::from_secs(20);
/// Transactions expire quickly so that none is still in flight long after the load.
const EXPIRES_IN_SECS: &str = "10";
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The `ordo` binary under test.
fn ordo_bin() -> PathBuf {
    std::env::var_os("ORDO_STALE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ordo")))
}

/// A validator process, killed when dropped (a paused one too: SIGKILL ends it).
struct Validator {
    config: PathBuf,
    log: PathBuf,
    rpc: SocketAddr,
    child: Option<Child>,
}

impl Validator {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(ordo_bin())
            .args(["run", "--config", self.config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ordo run starts");
        self.child = Some(child);
    }

    fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn executed(&self) -> u64 {
        http::get(self.rpc, "/v1/status", HTTP_TIMEOUT)
            .ok()
            .and_then(|r| r.json())
            .and_then(|s| s["executed_height"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// How one `ordo transfer` ended, read from its single JSON document on stdout.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    bad_nonce: usize,
    other_failures: usize,
    /// The other failures by kind (`no_node`, `no_answer`, ...), for the summary line.
    other_kinds: std::collections::BTreeMap<String, usize>,
    gave_up: usize,
    /// Retries the client announced on stderr (one line each).
    retries: usize,
    examples: Vec<String>,
}

/// The first JSON value on stdout, if any (a client that prints more is caught elsewhere).
fn first_json(stdout: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(stdout).ok()?;
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// Runs one `ordo transfer` with a bound on its time; `None` when it had to be killed.
fn run_transfer(rpc: SocketAddr, key: &Path, to: &Address) -> Option<(Option<Value>, String)> {
    let mut child = Command::new(ordo_bin())
        .args(["--rpc", &rpc.to_string(), "transfer", "--key"])
        .arg(key)
        .args(["--to", &to.to_string(), "--amount", "1", "--json"])
        .args(["--expires-in", EXPIRES_IN_SECS])
        .env_remove("ORDO_TESTNET_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ordo transfer starts");
    let deadline = Instant::now() + TRANSFER_LIMIT;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return Some((first_json(&out.stdout), stderr));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Balances of `addresses` read from `rpc`, all at one executed height, at least `from`.
fn balances_at_one_height(rpc: SocketAddr, addresses: &[Address], from: u64) -> (u64, Vec<u128>) {
    for _ in 0..100 {
        let answers: Vec<Value> = addresses
            .iter()
            .filter_map(|a| {
                http::get(rpc, &format!("/v1/accounts/{a}"), HTTP_TIMEOUT)
                    .ok()
                    .filter(|r| r.status == 200)
                    .and_then(|r| r.json())
            })
            .collect();
        if answers.len() == addresses.len() {
            let height = answers[0]["height"].as_u64().unwrap();
            if height >= from && answers.iter().all(|a| a["height"].as_u64() == Some(height)) {
                return (
                    height,
                    answers
                        .iter()
                        .map(|a| a["balance"].as_str().unwrap().parse().unwrap())
                        .collect(),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not read {} balances at one height", addresses.len());
}

#[test]
fn default_nonces_survive_lagging_paused_and_restarted_validators() {
    let started = Instant::now();
    let seed = std::env::var("ORDO_STALE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(now_ms);
    let per_client: usize = std::env::var("ORDO_STALE_TRANSFERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    eprintln!("seed {seed} (replay with ORDO_STALE_SEED={seed})");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let spec = LocalnetSpec {
        validators: VALIDATORS,
        chain_id: CHAIN,
        ports: Some(validator_ports(VALIDATORS)),
        bench_accounts: CLIENTS as u32,
        pools: 0,
        collections: 0,
        ..LocalnetSpec::default()
    };
    let net = localnet::generate(&dir, &spec).unwrap();
    let mut validators = Vec::new();
    for v in &net.validators {
        let mut config = v.config.clone();
        // Two cores shared by four validators, the clients and the test.
        config.execution.threads = 1;
        config.write(&v.config_path).unwrap();
        validators.push(Validator {
            config: v.config_path.clone(),
            log: v.log_path.clone(),
            rpc: v.rpc,
            child: None,
        });
    }
    for v in &mut validators {
        v.start();
    }
    assert!(
        wait_for(Duration::from_secs(30), || validators
            .iter()
            .all(|v| v.executed() > 0)),
        "the validators did not start executing"
    );
    let rpcs: Vec<SocketAddr> = validators.iter().map(|v| v.rpc).collect();

    // One funded sender and one fresh recipient per client.
    let senders: Vec<KeyPair> = (0..CLIENTS).map(|i| bench_key(CHAIN, i as u32)).collect();
    let recipients: Vec<Address> = (0..CLIENTS)
        .map(|_| KeyPair::generate().address())
        .collect();
    let key_paths: Vec<PathBuf> = senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let path = tmp.path().join(format!("sender{i}.key"));
            keyfile::write(&path, k).unwrap();
            path
        })
        .collect();
    let mut watched: Vec<Address> = senders.iter().map(KeyPair::address).collect();
    watched.extend(&recipients);
    watched.push(net.genesis.fee_sink);
    let (_, before) = balances_at_one_height(rpcs[0], &watched, 0);

    // Which validators the clients may reach: a paused one still accepts connections (its
    // kernel does), so clients hang on it as a user's would; a killed one refuses at once.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    // Each client draws its validators from its own stream, all from the run's seed, so
    // that a failing seed replays.
    let mut streams = SeededRng::new(seed);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (tally, stop, sent) = (tally.clone(), stop.clone(), sent.clone());
            let rpcs = rpcs.clone();
            let key = key_paths[c].clone();
            let to = recipients[c];
            let mut rng = SeededRng::new(streams.next_u64());
            std::thread::spawn(move || {
                for _ in 0..per_client {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let rpc = rpcs[rng.below(rpcs.len() as u64) as usize];
                    sent.fetch_add(1, Ordering::Relaxed);
                    let outcome = run_transfer(rpc, &key, &to);
                    let mut t = tally.lock().unwrap();
                    let Some((report, stderr)) = outcome else {
                        t.gave_up += 1;
                        continue;
                    };
                    t.retries += stderr.lines().filter(|l| l.contains("retrying")).count();
                    let report = report.unwrap_or(Value::Null);
                    if report["success"] == true {
                        t.succeeded += 1;
                    } else if report["execution_status"] == "bad_nonce" {
                        t.bad_nonce += 1;
                        if t.examples.len() < 5 {
                            t.examples.push(format!("via {rpc}: {report} {stderr}"));
                        }
                    } else {
                        t.other_failures += 1;
                        let kind = report["kind"].as_str().unwrap_or("no report").to_string();
                        *t.other_kinds.entry(kind).or_default() += 1;
                    }
                }
            })
        })
        .collect();

    // The faults, while the clients run: validator 1 frozen for 4 s, validator 2 killed
    // and restarted 4 s later (it then catches up from behind).
    let faults_from = Instant::now();
    let at = |secs: u64| {
        let when = faults_from + Duration::from_secs(secs);
        std::thread::sleep(when.saturating_duration_since(Instant::now()));
    };
    at(4);
    validators[1].signal(libc::SIGSTOP);
    at(8);
    validators[1].signal(libc::SIGCONT);
    at(12);
    validators[2].kill9();
    at(16);
    validators[2].start();
    at(LOAD_FOR.as_secs());
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }

    // Money moved only between the watched accounts: what the senders lost, the recipients
    // and the fee sink gained. Every success a client saw is in a block some validator had
    // executed when the clients stopped: read validator 0 once it has executed as far.
    let executed = validators
        .iter()
        .map(Validator::executed)
        .max()
        .unwrap_or(0);
    let (height, after) = balances_at_one_height(rpcs[0], &watched, executed);
    let t = tally.lock().unwrap();
    eprintln!(
        "{} transfers: {} succeeded, {} bad_nonce, {} other failures {:?}, {} given up; \
         {} retries; balances at height {height}; {:.1} s",
        sent.load(Ordering::Relaxed),
        t.succeeded,
        t.bad_nonce,
        t.other_failures,
        t.other_kinds,
        t.gave_up,
        t.retries,
        started.elapsed().as_secs_f64()
    );
    let total = |b: &[u128]| b.iter().sum::<u128>();
    assert_eq!(
        total(&before),
        total(&after),
        "money is not conserved (seed {seed})"
    );
    let received: u128 = after[CLIENTS..2 * CLIENTS].iter().sum();
    assert!(
        received as usize >= t.succeeded,
        "recipients got {received} coins for {} successful transfers",
        t.succeeded
    );
    assert!(t.succeeded > 0, "no transfer succeeded (seed {seed})");
    assert_eq!(
        t.bad_nonce,
        0,
        "transfers ended in bad_nonce (seed {seed}):\n{}",
        t.examples.join("\n")
    );
}
