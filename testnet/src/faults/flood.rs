//! Flooding: clients that submit transfers as fast as the validators answer, mostly validly
//! signed and some forged, far above what the network commits, while the honest load goes
//! on. Measures what the
//! flood is told (accepted, or refused by code), how long a refusal takes, and each
//! validator's resident memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ordo_cli::http;
use ordo_cli::localnet::bench_key;
use ordo_types::{now_ms, Amount, KeyPair, Payload, Signature, SignedTransaction, Transaction};
use parking_lot::Mutex;
use rayon::prelude::*;
use serde::Serialize;

use super::rng::Rng;
use super::Live;
use crate::bench::workload::batch_body;
use crate::client;

/// Transactions per flood request.
const BATCH: usize = 1024;
/// Requests signed ahead: 64k transactions, about a second of signing on two cores.
const POOL_BATCHES: usize = 64;
/// Senders of the flood: a request waits for its answer, so enough of them to offer ten
/// times what the network commits (with four, the flood offered only about three times).
const FLOOD_THREADS: usize = 16;
/// One request in this many is forged. Each forgery costs a validator about 55 µs (the
/// batch check fails, then every signature is checked alone to name the bad ones), so a
/// flood of mostly forgeries is bounded by signature checks, not by the mempool; half
/// forged held the offer to about three times capacity on 2 cores.
const FORGED_EVERY: usize = 8;

#[derive(Debug, Default, Clone, Serialize)]
pub struct FloodReport {
    pub seconds: f64,
    /// Transactions offered per second.
    pub offered_tps: f64,
    /// `offered_tps / committed_tps`: how far over capacity the flood was.
    pub overload: f64,
    pub offered: u64,
    pub accepted: u64,
    /// Per-transaction and whole-request refusals by code (`busy`, `mempool_full`, ...).
    pub refused: BTreeMap<String, u64>,
    pub requests: u64,
    /// Answer time of the flood's requests, milliseconds.
    pub answer_ms_p50: f64,
    pub answer_ms_p99: f64,
    /// Honest transactions committed per second in a quiet stretch just before the flood,
    /// and during it.
    pub honest_tps_before: f64,
    pub honest_tps_during: f64,
    /// Transactions the network committed per second during the flood (flood and honest),
    /// from a validator's `ordo_node_committed_transactions_total`: what it could take.
    pub committed_tps: f64,
    /// Each validator's peak resident memory during the flood, MiB (`None`: not running).
    pub peak_rss_mib: Vec<Option<f64>>,
    /// Each validator's resident memory as the flood began, MiB.
    pub start_rss_mib: Vec<Option<f64>>,
}

struct Tally {
    offered: u64,
    accepted: u64,
    requests: u64,
    refused: BTreeMap<String, u64>,
    answers: Histogram<u64>,
}

/// Floods the live validators from `accounts` (bench account indices) for `duration`,
/// sampling memory of `pids` meanwhile.
pub fn flood(
    chain_id: u64,
    accounts: std::ops::Range<u32>,
    rpcs: &[SocketAddr],
    live: &Live,
    pids: &[Option<i32>],
    duration: Duration,
    seed: u64,
) -> FloodReport {
    // Signed before the clock starts, so that the flood's pace is the validators' and not
    // this machine's signing speed. Accounts in turn, nonces counting up: each valid request
    // is new work, until the pool wraps and repeats (then duplicates and stale nonces, which
    // a validator must refuse cheaply). One request in `FORGED_EVERY` is forged.
    let keys: Vec<KeyPair> = accounts.map(|i| bench_key(chain_id, i)).collect();
    let expiry = now_ms() + duration.as_millis() as u64 + 60_000;
    let tx = |k: usize, amount: Amount| {
        let key = &keys[k % keys.len()];
        Transaction {
            chain_id,
            sender: key.public(),
            nonce: (k / keys.len()) as u64,
            expiry,
            payload: Payload::Transfer {
                to: key.address(),
                amount,
            },
        }
    };
    let signed = (0..POOL_BATCHES).into_par_iter().map(|b| {
        let encoded: Vec<Vec<u8>> = (b * BATCH..(b + 1) * BATCH)
            .map(|k| tx(k, 1).sign(&keys[k % keys.len()]).encode())
            .collect();
        batch_body(encoded.iter().map(Vec::as_slice))
    });
    // Forgeries: the same senders and nonces with another amount (another hash, so the
    // screening before signature checks lets them through) and a signature that fails.
    // They cost nothing to make and a signature check each to refuse: the costly flood.
    let forgeries = POOL_BATCHES / (FORGED_EVERY - 1);
    let forged = (0..forgeries).into_par_iter().map(|b| {
        let encoded: Vec<Vec<u8>> = (b * BATCH..(b + 1) * BATCH)
            .map(|k| {
                SignedTransaction::Ordo(ordo_types::OrdoTransaction {
                    tx: tx(k, 2),
                    signature: Signature([0x5a; 64]),
                })
                .encode()
            })
            .collect();
        batch_body(encoded.iter().map(Vec::as_slice))
    });
    let mut forged = forged.collect::<Vec<_>>().into_iter();
    let mut bodies: Vec<Vec<u8>> = Vec::with_capacity(POOL_BATCHES + forgeries);
    for (i, s) in signed.collect::<Vec<_>>().into_iter().enumerate() {
        bodies.push(s);
        if i % (FORGED_EVERY - 1) == FORGED_EVERY - 2 {
            bodies.extend(forged.next());
        }
    }
    let bodies = Arc::new(bodies);
    let tally = Mutex::new(Tally {
        offered: 0,
        accepted: 0,
        requests: 0,
        refused: BTreeMap::new(),
        answers: Histogram::new_with_bounds(1, 120_000, 2).expect("valid bounds"),
    });
    let stop = AtomicBool::new(false);
    let start_rss: Vec<Option<f64>> = pids.iter().map(|p| p.and_then(rss_mib)).collect();
    let mut peak = start_rss.clone();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..FLOOD_THREADS {
            let (bodies, tally, stop) = (bodies.clone(), &tally, &stop);
            s.spawn(move || {
                let mut rng = Rng::new(seed ^ (0xf100d + t as u64));
                let mut next = t;
                while !stop.load(Ordering::Relaxed) {
                    let body = &bodies[next % bodies.len()];
                    next += FLOOD_THREADS;
                    let live_now: Vec<usize> =
                        (0..rpcs.len()).filter(|i| live.is_live(*i)).collect();
                    if live_now.is_empty() {
                        break;
                    }
                    let v = live_now[rng.below(live_now.len() as u64) as usize];
                    let sent = Instant::now();
                    let answer = http::post_bytes(
                        rpcs[v],
                        "/v1/transactions/batch",
                        body,
                        Duration::from_secs(10),
                    );
                    let ms = sent.elapsed().as_millis() as u64;
                    let mut t = tally.lock();
                    t.requests += 1;
                    t.offered += BATCH as u64;
                    let _ = t.answers.record(ms.max(1));
                    match answer {
                        Ok(r) if r.status == 200 => {
                            let json = r.json().unwrap_or_default();
                            t.accepted += json["accepted"].as_u64().unwrap_or(0);
                            for code in json["errors"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|e| e.as_str())
                            {
                                *t.refused.entry(code.to_string()).or_default() += 1;
                            }
                        }
                        Ok(r) => {
                            let code = client::error_code(&r)
                                .unwrap_or_else(|| format!("http_{}", r.status));
                            *t.refused.entry(code).or_default() += BATCH as u64;
                        }
                        Err(_) => {
                            *t.refused.entry("unreachable".into()).or_default() += BATCH as u64
                        }
                    }
                }
            });
        }
        while started.elapsed() < duration {
            for (p, pid) in peak.iter_mut().zip(pids) {
                if let Some(now) = pid.and_then(rss_mib) {
                    *p = Some(p.map_or(now, |p: f64| p.max(now)));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let seconds = started.elapsed().as_secs_f64();
    let t = tally.into_inner();
    FloodReport {
        seconds,
        offered_tps: t.offered as f64 / seconds,
        offered: t.offered,
        accepted: t.accepted,
        refused: t.refused,
        requests: t.requests,
        answer_ms_p50: t.answers.value_at_quantile(0.5) as f64,
        answer_ms_p99: t.answers.value_at_quantile(0.99) as f64,
        peak_rss_mib: peak,
        start_rss_mib: start_rss,
        ..FloodReport::default()
    }
}

/// A process's resident memory from `/proc`, MiB.
pub fn rss_mib(pid: i32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
