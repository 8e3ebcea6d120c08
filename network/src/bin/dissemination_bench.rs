//! dissemination-bench: the rate at which local validators (real libp2p sockets on
//! 127.0.0.1, all in this process) disseminate batches and form proofs of availability.
//!
//! Two runs: signed transfers (every signature verified at ingress by the author's
//! mempool and again by every receiving validator), then unsigned opaque payloads. Every
//! validator makes batches from its own share of the load. A run's dissemination rate is
//! its payload count over the time from the first submission until every validator holds
//! (has verified and stored) every batch; the rate of proofs of availability (f + 1
//! holders) is reported beside it, with the proof latency from batch creation.
//!
//! `cargo run --release -p ordo-network --bin dissemination-bench -- [--json]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use ordo_network::{
    network_keypair_from_seed, network_public_key, start, AvailableBatch, BatchBody, Committee,
    Dissemination, DisseminationConfig, Mempool, MempoolConfig, NetworkConfig, ValidatorInfo,
};
use ordo_types::{Address, Hash32, KeyPair, Payload, SignedTransaction, Transaction};
use rayon::prelude::*;
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(
    name = "dissemination-bench",
    about = "Batch dissemination rate across local validators"
)]
struct Args {
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Signed transactions in the signed run, spread over the validators.
    #[arg(long, default_value_t = 200_000)]
    signed_txs: usize,
    /// Opaque payloads in the opaque run, spread over the validators.
    #[arg(long, default_value_t = 1_000_000)]
    opaque_payloads: usize,
    #[arg(long, default_value_t = 512)]
    payload_bytes: usize,
    #[arg(long, default_value_t = 500_000)]
    batch_bytes: usize,
    #[arg(long, default_value_t = 20)]
    batch_delay_ms: u64,
    /// Offered signed transactions per second over all validators; 0 submits as fast as
    /// the mempools take them.
    #[arg(long, default_value_t = 0.0)]
    signed_rate: f64,
    /// Offered opaque payloads per second over all validators; 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    opaque_rate: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const CHAIN: u64 = 1;
/// Transactions per sender, well inside the mempool's nonce window.
const TXS_PER_SENDER: usize = 100;

struct Cluster {
    diss: Vec<Dissemination>,
    proofs: Vec<mpsc::Receiver<AvailableBatch>>,
}

async fn start_cluster(args: &Args) -> anyhow::Result<Cluster> {
    let n = args.validators;
    let consensus: Vec<KeyPair> = (0..n)
        .map(|i| KeyPair::from_seed([i as u8 + 1; 32]))
        .collect();
    let network: Vec<_> = (0..n)
        .map(|i| network_keypair_from_seed([i as u8 + 101; 32]))
        .collect();
    let placeholder: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
    let mut validators = Vec::new();
    for (c, k) in consensus.iter().zip(&network) {
        let key = network_public_key(k).context("ed25519 identity")?;
        validators.push(ValidatorInfo::new(c.public(), key, placeholder.clone())?);
    }
    let committee = Arc::new(Committee::new(CHAIN, validators)?);
    let mut diss = Vec::new();
    let mut proofs = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n {
        let (net, inbound) = start(NetworkConfig::new(
            network[i].clone(),
            placeholder.clone(),
            committee.clone(),
        ))
        .await?;
        let config = DisseminationConfig {
            max_batch_bytes: args.batch_bytes,
            max_batch_txs: 100_000,
            max_batch_delay: Duration::from_millis(args.batch_delay_ms),
            accept_opaque: true,
            ..DisseminationConfig::default()
        };
        let mut mempool = MempoolConfig::new(CHAIN);
        mempool.max_transactions = args.signed_txs + 1;
        mempool.max_bytes = usize::MAX;
        let (d, outputs) = Dissemination::spawn(
            config,
            consensus[i].clone(),
            net.clone(),
            inbound.batches,
            inbound.batch_requests,
            Arc::new(Mempool::new(mempool)),
        );
        diss.push(d);
        proofs.push(outputs.proofs);
        handles.push(net);
    }
    for a in &handles {
        for (j, b) in handles.iter().enumerate() {
            if a.peer_id() != b.peer_id() {
                a.set_peer_address(&consensus[j].public(), b.listen_addr().clone())?;
            }
        }
    }
    for h in &handles {
        if !h
            .wait_connected(Duration::from_secs(30), |s| s.len() == n - 1)
            .await
        {
            bail!("validators did not connect within 30 s");
        }
    }
    Ok(Cluster { diss, proofs })
}

/// Each validator's share of signed transfers, signed in parallel before the clock starts.
fn signed_load(args: &Args) -> Vec<Vec<SignedTransaction>> {
    let per_validator = args.signed_txs / args.validators;
    let expiry = ordo_types::now_ms() + 3_600_000;
    (0..args.validators)
        .map(|v| {
            (0..per_validator)
                .into_par_iter()
                .map(|i| {
                    let sender = (v * per_validator + i) / TXS_PER_SENDER;
                    let mut seed = [0u8; 32];
                    seed[..8].copy_from_slice(&(sender as u64).to_le_bytes());
                    seed[8] = 0xA5;
                    let key = KeyPair::from_seed(seed);
                    Transaction {
                        chain_id: CHAIN,
                        sender: key.public(),
                        nonce: (i % TXS_PER_SENDER) as u64,
                        expiry,
                        payload: Payload::Transfer {
                            to: Address([7; 20]),
                            amount: 1,
                        },
                    }
                    .sign(&key)
                })
                .collect()
        })
        .collect()
}

/// CPU seconds this process has used, user and system.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Waits until `done` payloads are due at `rate` per second since `started`.
async fn pace(started: tokio::time::Instant, done: usize, rate: f64) {
    if rate > 0.0 {
        tokio::time::sleep_until(started + Duration::from_secs_f64(done as f64 / rate)).await;
    }
}

struct RunResult {
    cpu_s: f64,
    payloads: usize,
    batches: usize,
    to_last_proof: Duration,
    to_all_stored: Duration,
    latency_us: Histogram<u64>,
}

impl RunResult {
    /// Payloads per second held by every validator.
    fn rate(&self) -> f64 {
        self.payloads as f64 / self.to_all_stored.as_secs_f64()
    }
    /// Payloads per second with a proof of availability.
    fn proof_rate(&self) -> f64 {
        self.payloads as f64 / self.to_last_proof.as_secs_f64()
    }
    fn p(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

enum Load {
    Signed(Vec<SignedTransaction>),
    Opaque {
        count: usize,
        payload: Vec<u8>,
        per_batch: usize,
    },
}

async fn run(cluster: &mut Cluster, loads: Vec<Load>, rate: f64) -> anyhow::Result<RunResult> {
    let per_validator_rate = rate / cluster.diss.len() as f64;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let paced_from = tokio::time::Instant::now();
    let mut expected = Vec::new();
    let mut feeders = Vec::new();
    for (d, load) in cluster.diss.iter().zip(loads) {
        let d = d.clone();
        match load {
            Load::Signed(txs) => {
                expected.push(txs.len());
                feeders.push(tokio::spawn(async move {
                    let mut chunks = Vec::new();
                    let mut txs = txs;
                    while !txs.is_empty() {
                        let rest = txs.split_off(txs.len().min(if per_validator_rate > 0.0 {
                            256
                        } else {
                            2048
                        }));
                        chunks.push(std::mem::replace(&mut txs, rest));
                    }
                    let mut submitted = 0;
                    for chunk in chunks {
                        pace(paced_from, submitted, per_validator_rate).await;
                        submitted += chunk.len();
                        let pool = d.mempool().clone();
                        let refused = tokio::task::spawn_blocking(move || {
                            pool.insert_many(chunk, |_| 0, ordo_types::now_ms())
                                .iter()
                                .filter(|r| r.is_err())
                                .count()
                        })
                        .await?;
                        if refused > 0 {
                            bail!("{refused} transactions refused by the mempool");
                        }
                    }
                    Ok(())
                }));
            }
            Load::Opaque {
                count,
                payload,
                per_batch,
            } => {
                expected.push(count);
                feeders.push(tokio::spawn(async move {
                    let mut left = count;
                    while left > 0 {
                        pace(paced_from, count - left, per_validator_rate).await;
                        let n = left.min(per_batch);
                        d.disseminate(BatchBody::Opaque(vec![payload.clone(); n]))
                            .await?;
                        left -= n;
                    }
                    Ok(())
                }));
            }
        }
    }
    let mut latency_us = Histogram::<u64>::new(3)?;
    let mut digests: Vec<Hash32> = Vec::new();
    let mut to_last_proof = Duration::ZERO;
    let mut collectors = Vec::new();
    for (rx, want) in cluster.proofs.iter_mut().zip(expected.iter().copied()) {
        collectors.push(async move {
            let mut got = 0usize;
            let mut seen = Vec::new();
            while got < want {
                let a = tokio::time::timeout(Duration::from_secs(120), rx.recv())
                    .await
                    .context("no proof of availability for 120 s")?
                    .context("dissemination stopped")?;
                got += a.proof.info.num_txs as usize;
                seen.push((a.proof.info.digest, a.latency));
            }
            anyhow::Ok((seen, started.elapsed()))
        });
    }
    for result in futures::future::join_all(collectors).await {
        let (seen, done) = result?;
        to_last_proof = to_last_proof.max(done);
        for (digest, latency) in seen {
            latency_us.record(latency.as_micros() as u64)?;
            digests.push(digest);
        }
    }
    for f in feeders {
        f.await??;
    }
    // Every validator holds every batch (f + 1 of them had it at each proof).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cluster
        .diss
        .iter()
        .all(|d| digests.iter().all(|x| d.store().contains(x)))
    {
        if Instant::now() > deadline {
            for (i, d) in cluster.diss.iter().enumerate() {
                let missing = digests.iter().filter(|x| !d.store().contains(x)).count();
                eprintln!(
                    "  validator {i}: {missing} of {} batches missing; {:?}; dropped sends {:?}",
                    digests.len(),
                    d.stats(),
                    d.network().stats().sends_dropped
                );
            }
            bail!("not every validator stored every batch within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let to_all_stored = started.elapsed();
    eprintln!(
        "  run done: last proof {:.2} s, all stored {:.2} s",
        to_last_proof.as_secs_f64(),
        to_all_stored.as_secs_f64()
    );
    for d in &cluster.diss {
        d.store().remove(&digests);
    }
    Ok(RunResult {
        cpu_s: cpu_seconds() - cpu_before,
        payloads: expected.iter().sum(),
        batches: digests.len(),
        to_last_proof,
        to_all_stored,
        latency_us,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.validators < 1 || args.validators > 64 {
        bail!("--validators must be between 1 and 64");
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut cluster = start_cluster(&args).await?;

        eprintln!("signing {} transactions...", args.signed_txs);
        let loads = signed_load(&args);
        eprintln!("signed run...");
        let tx_bytes = loads.first().and_then(|l| l.first()).map(|t| t.encode().len()).unwrap_or(0);
        let signed = run(
            &mut cluster,
            loads.into_iter().map(Load::Signed).collect(),
            args.signed_rate,
        )
        .await?;

        let per_batch = (args.batch_bytes / (args.payload_bytes + 8)).max(1);
        let payload = vec![0xABu8; args.payload_bytes];
        let opaque_loads = (0..args.validators)
            .map(|_| Load::Opaque { count: args.opaque_payloads / args.validators, payload: payload.clone(), per_batch })
            .collect();
        eprintln!("opaque run...");
        let opaque = run(&mut cluster, opaque_loads, args.opaque_rate).await?;

        if args.json {
            let report = serde_json::json!({
                "validators": args.validators,
                "cores": cores,
                "signed_tps": signed.rate().round(),
                "signed_tx_bytes": tx_bytes,
                "signed_txs": signed.payloads,
                "signed_batches": signed.batches,
                "signed_all_stored_s": signed.to_all_stored.as_secs_f64(),
                "signed_poa_tps": signed.proof_rate().round(),
                "signed_offered_rate": args.signed_rate,
                "signed_per_cpu_second": (signed.payloads as f64 / signed.cpu_s).round(),
                "signed_poa_p50_ms": signed.p(0.5),
                "signed_poa_p99_ms": signed.p(0.99),
                "opaque_tps": opaque.rate().round(),
                "opaque_payload_bytes": args.payload_bytes,
                "opaque_payloads": opaque.payloads,
                "opaque_batches": opaque.batches,
                "opaque_all_stored_s": opaque.to_all_stored.as_secs_f64(),
                "opaque_poa_tps": opaque.proof_rate().round(),
                "opaque_offered_rate": args.opaque_rate,
                "opaque_per_cpu_second": (opaque.payloads as f64 / opaque.cpu_s).round(),
                "opaque_poa_p50_ms": opaque.p(0.5),
                "opaque_poa_p99_ms": opaque.p(0.99),
                "poa_p50_ms": signed.p(0.5),
                "poa_p99_ms": signed.p(0.99),
            });
            println!("{report}");
        } else {
            println!("dissemination-bench: {} validators on 127.0.0.1, {cores} cores", args.validators);
            for (name, r, size) in [("signed", &signed, tx_bytes), ("opaque", &opaque, args.payload_bytes)] {
                println!(
                    "  {name:<6} {:>8.0}/s held by all ({:.0}/s proven; {} x {size} B in {} batches; last proof {:.2} s, all stored {:.2} s); proof latency p50 {:.1} ms, p99 {:.1} ms; {:.0} per CPU-second",
                    r.rate(), r.proof_rate(), r.payloads, r.batches, r.to_last_proof.as_secs_f64(), r.to_all_stored.as_secs_f64(), r.p(0.5), r.p(0.99), r.payloads as f64 / r.cpu_s
                );
            }
        }
        anyhow::Ok(())
    })?;
    // The swarms' tasks are still running; the process ends here.
    std::process::exit(0)
}
