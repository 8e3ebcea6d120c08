//! The steady load under which faults are injected: each sender account keeps one transfer
//! in flight, submitted to a live validator, and learns its fate by asking a validator.
//!
//! A sender never guesses: its next nonce comes from what it saw committed, and whenever
//! something it sent did not commit as expected (failed, expired, lost with a crashed
//! validator's mempool) it reads its nonce from the chain again before sending more. Every
//! transaction a validator answered `pending` is recorded in the [`Ledger`], which the
//! checks later resolve independently of what the senders concluded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ordo_cli::http;
use ordo_cli::localnet::bench_key;
use ordo_types::{now_ms, Address, Hash32, KeyPair, Payload, Transaction};
use parking_lot::Mutex;

use super::rng::Rng;
use super::Live;
use crate::client;

/// Short: a paused validator accepts connections and never answers.
pub(super) const RPC_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a sender asks about its transaction in flight.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// After a refusal or a dead validator, before the sender tries again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// Sender threads; each serves many accounts, so the load does not need a thread per
/// account.
const WORKERS: usize = 8;

/// A transaction some validator answered `pending` to.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub hash: Hash32,
    pub sender: u32,
    pub nonce: u64,
    pub expiry_ms: u64,
    pub validator: usize,
}

/// Everything the load sent that a validator accepted, and the counters of the run.
#[derive(Default)]
pub struct Ledger {
    pub accepted: Mutex<Vec<Accepted>>,
    /// (instant in ms since the load started) of each success the senders observed.
    pub commits_at_ms: Mutex<Vec<u64>>,
    pub committed_ok: AtomicU64,
    pub committed_failed: AtomicU64,
    /// Accepted, then provably never committed: expired with a validator's mempool.
    pub expired: AtomicU64,
    /// Refusals by error code (`busy`, `mempool_full`, ...), and connection failures.
    pub refused: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    fn refuse(&self, code: &str) {
        *self.refused.lock().entry(code.to_string()).or_default() += 1;
    }
}

/// The running load; [`Load::finish`] stops it.
pub struct Load {
    pub ledger: Arc<Ledger>,
    pub started: Instant,
    stop_sending: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<u64>>,
}

pub struct LoadSpec {
    pub chain_id: u64,
    /// Bench accounts `0..senders` send to each other.
    pub senders: u32,
    pub expiry: Duration,
    pub seed: u64,
}

impl Load {
    pub fn start(spec: LoadSpec, rpcs: Vec<SocketAddr>, live: Live) -> Load {
        let ledger = Arc::new(Ledger::default());
        let started = Instant::now();
        let stop_sending = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let rpcs: Arc<[SocketAddr]> = rpcs.into();
        let addresses: Arc<[Address]> = (0..spec.senders)
            .map(|i| bench_key(spec.chain_id, i).address())
            .collect();
        let workers = (0..WORKERS)
            .map(|w| {
                let accounts: Vec<u32> = (0..spec.senders)
                    .filter(|a| *a as usize % WORKERS == w)
                    .collect();
                let worker = Worker {
                    chain_id: spec.chain_id,
                    senders: spec.senders,
                    addresses: addresses.clone(),
                    expiry: spec.expiry,
                    rng: Rng::new(spec.seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9)),
                    accounts: accounts
                        .into_iter()
                        .map(|i| Account::new(spec.chain_id, i))
                        .collect(),
                    rpcs: rpcs.clone(),
                    live: live.clone(),
                    ledger: ledger.clone(),
                    started,
                    stop_sending: stop_sending.clone(),
                    stop: stop.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("faults-load-{w}"))
                    .spawn(move || worker.run())
                    .expect("a load thread starts")
            })
            .collect();
        Load {
            ledger,
            started,
            stop_sending,
            stop,
            workers,
        }
    }

    /// Stops sending, waits at most `drain` for the transactions in flight to be settled,
    /// then stops. Returns how many were still unsettled.
    pub fn finish(&mut self, drain: Duration) -> u64 {
        self.stop_sending.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + drain;
        while Instant::now() < deadline && !self.workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::SeqCst);
        std::mem::take(&mut self.workers)
            .into_iter()
            .map(|w| w.join().unwrap_or(0))
            .sum()
    }
}

struct Pending {
    hash: Hash32,
    expiry_ms: u64,
}

struct Account {
    index: u32,
    key: KeyPair,
    /// `None` until read from the chain (at start, and after any surprise).
    next_nonce: Option<u64>,
    pending: Option<Pending>,
    due: Instant,
}

impl Account {
    fn new(chain_id: u64, index: u32) -> Account {
        Account {
            index,
            key: bench_key(chain_id, index),
            next_nonce: None,
            pending: None,
            due: Instant::now(),
        }
    }
}

struct Worker {
    chain_id: u64,
    senders: u32,
    /// Every sender's address, as a recipient.
    addresses: Arc<[Address]>,
    expiry: Duration,
    rng: Rng,
    accounts: Vec<Account>,
    rpcs: Arc<[SocketAddr]>,
    live: Live,
    ledger: Arc<Ledger>,
    started: Instant,
    stop_sending: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

/// What a validator says about a transaction.
enum Fate {
    Committed { success: bool },
    Expired,
    Open,
}

impl Worker {
    /// Returns how many transactions were still in flight when told to stop.
    fn run(mut self) -> u64 {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let sending = !self.stop_sending.load(Ordering::SeqCst);
            if !sending && self.accounts.iter().all(|a| a.pending.is_none()) {
                break;
            }
            let now = Instant::now();
            for i in 0..self.accounts.len() {
                if self.accounts[i].due > now {
                    continue;
                }
                if self.accounts[i].pending.is_some() {
                    self.poll(i);
                } else if sending {
                    self.send(i);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.accounts.iter().filter(|a| a.pending.is_some()).count() as u64
    }

    fn pick_live(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.rpcs.len())
            .filter(|i| self.live.is_live(*i))
            .collect();
        (!live.is_empty()).then(|| live[self.rng.below(live.len() as u64) as usize])
    }

    fn send(&mut self, i: usize) {
        let Some(v) = self.pick_live() else {
            self.accounts[i].due = Instant::now() + RETRY_AFTER;
            return;
        };
        let addr = self.rpcs[v];
        let nonce = match self.accounts[i].next_nonce {
            Some(n) => n,
            None => match client::account(addr, &self.accounts[i].key.address(), RPC_TIMEOUT) {
                Ok((_, n)) => {
                    self.accounts[i].next_nonce = Some(n);
                    n
                }
                Err(_) => {
                    self.ledger.refuse("unreachable");
                    self.accounts[i].due = Instant::now() + RETRY_AFTER;
                    return;
                }
            },
        };
        let mut to = self.rng.below(u64::from(self.senders)) as u32;
        if to == self.accounts[i].index {
            to = (to + 1) % self.senders;
        }
        let expiry_ms = now_ms() + self.expiry.as_millis() as u64;
        let account = &self.accounts[i];
        let tx = Transaction {
            chain_id: self.chain_id,
            sender: account.key.public(),
            nonce,
            expiry: expiry_ms,
            payload: Payload::Transfer {
                to: self.addresses[to as usize],
                amount: 1,
            },
        }
        .sign(&account.key);
        let hash = tx.hash();
        let answer = http::post_bytes(addr, "/v1/transactions", &tx.encode(), RPC_TIMEOUT);
        match answer {
            Ok(r) if r.status == 200 => {
                self.ledger.accepted.lock().push(Accepted {
                    hash,
                    sender: account.index,
                    nonce,
                    expiry_ms,
                    validator: v,
                });
                let account = &mut self.accounts[i];
                account.pending = Some(Pending { hash, expiry_ms });
                account.due = Instant::now() + POLL_EVERY;
            }
            Ok(r) => {
                let code = client::error_code(&r).unwrap_or_else(|| format!("http_{}", r.status));
                if code == "bad_nonce" || code.contains("nonce") {
                    self.accounts[i].next_nonce = None;
                }
                self.ledger.refuse(&code);
                self.accounts[i].due = Instant::now() + RETRY_AFTER;
            }
            Err(_) => {
                self.ledger.refuse("unreachable");
                self.accounts[i].due = Instant::now() + RETRY_AFTER;
            }
        }
    }

    fn poll(&mut self, i: usize) {
        let (hash, expiry_ms) = {
            let p = self.accounts[i]
                .pending
                .as_ref()
                .expect("polled with a pending tx");
            (p.hash, p.expiry_ms)
        };
        // Any validator will do, and a different one each time: one that lags (restarted,
        // wiped) answers `unknown` until it catches up and must not hold the sender.
        let Some(v) = self.pick_live() else {
            self.accounts[i].due = Instant::now() + RETRY_AFTER;
            return;
        };
        let fate = match fate(self.rpcs[v], &hash, expiry_ms) {
            Ok(f) => f,
            Err(_) => {
                self.accounts[i].due = Instant::now() + RETRY_AFTER;
                return;
            }
        };
        let account = &mut self.accounts[i];
        match fate {
            Fate::Open => {
                account.due = Instant::now() + POLL_EVERY;
                return;
            }
            Fate::Committed { success: true } => {
                self.ledger.committed_ok.fetch_add(1, Ordering::Relaxed);
                self.ledger
                    .commits_at_ms
                    .lock()
                    .push(self.started.elapsed().as_millis() as u64);
                account.next_nonce = account.next_nonce.map(|n| n + 1);
            }
            Fate::Committed { success: false } => {
                self.ledger.committed_failed.fetch_add(1, Ordering::Relaxed);
                account.next_nonce = None;
            }
            Fate::Expired => {
                self.ledger.expired.fetch_add(1, Ordering::Relaxed);
                account.next_nonce = None;
            }
        }
        account.pending = None;
        account.due = Instant::now();
    }
}

/// Where transaction `hash` stands on validator `addr`. It is expired only once the
/// validator executed a block stamped after its expiry without it: no later block can
/// include it then. A validator that never saw it says `unknown`, so the expiry is
/// checked against the executed chain rather than taken from the answer.
fn fate(addr: SocketAddr, hash: &Hash32, expiry_ms: u64) -> crate::Result<Fate> {
    let status = tx_status(addr, hash)?;
    if status["status"] == "committed" {
        return Ok(Fate::Committed {
            success: status["success"].as_bool().unwrap_or(false),
        });
    }
    if now_ms() <= expiry_ms || executed_timestamp_ms(addr)? <= expiry_ms {
        return Ok(Fate::Open);
    }
    // The tip passed the expiry: ask again, in case the block before it held the
    // transaction and was executed between the two questions.
    let status = tx_status(addr, hash)?;
    Ok(if status["status"] == "committed" {
        Fate::Committed {
            success: status["success"].as_bool().unwrap_or(false),
        }
    } else {
        Fate::Expired
    })
}

pub(super) fn tx_status(addr: SocketAddr, hash: &Hash32) -> crate::Result<serde_json::Value> {
    let path = format!("/v1/transactions/{hash}");
    let r = http::get(addr, &path, RPC_TIMEOUT)
        .map_err(|e| crate::TestnetError::rpc(addr, format!("GET {path}: {e}")))?;
    r.json()
        .filter(|_| r.status == 200)
        .ok_or_else(|| crate::TestnetError::rpc(addr, format!("GET {path}: HTTP {}", r.status)))
}

/// The timestamp of the newest block validator `addr` executed.
pub(super) fn executed_timestamp_ms(addr: SocketAddr) -> crate::Result<u64> {
    let status = client::status(addr, RPC_TIMEOUT)?;
    let height = status["executed_height"].as_u64().unwrap_or(0);
    if height == 0 {
        return Ok(0);
    }
    let block = client::block(addr, height, RPC_TIMEOUT)?;
    Ok(block.and_then(|b| b["timestamp_ms"].as_u64()).unwrap_or(0))
}
