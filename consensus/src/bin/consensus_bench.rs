//! Prints what the consensus core costs and what the simulator shows.
//!
//! `cargo run --release -p consensus --bin consensus-bench`
//!
//! - `replica::cycle/...`: CPU time inside `Replica::handle` per committed block per
//!   replica, with replicas exchanging messages in memory (no network, no simulator
//!   overhead), and the distribution of single `handle` calls.
//! - `sim::...`: figures in simulated time from the seeded simulator (latency 5-50 ms).

use std::collections::VecDeque;
use std::time::Instant;

use ordo_consensus::sim::{run, Fault, SimConfig};
use ordo_consensus::{
    ed25519_verify, sim_verify, Action, Committee, Config, Event, LeaderPolicy, Message, Replica,
    Signer, SimSigner,
};
use ordo_types::{Hash32, KeyPair, PublicKey};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs `n` replicas in lockstep until replica 0 has committed `blocks` blocks.
fn cycle<S: Signer + Clone>(n: usize, signers: Vec<S>, real: bool, blocks: u64) {
    let committee =
        Committee::new(0, signers.iter().map(Signer::public_key).collect()).expect("distinct keys");
    let mut cfg = Config::new(n);
    cfg.verify = if real { ed25519_verify } else { sim_verify };
    cfg.leader_policy = LeaderPolicy::reputation(n);
    let keys: Vec<PublicKey> = signers.iter().map(Signer::public_key).collect();
    let mut replicas: Vec<Replica<S>> = signers
        .into_iter()
        .map(|s| Replica::new(cfg.clone(), committee.clone(), s))
        .collect();
    let mut queue: VecDeque<(usize, usize, Message)> = VecDeque::new();
    let mut calls: Vec<u64> = Vec::new();
    let mut busy_ns = vec![0u64; n];
    let mut committed = 0u64;
    let mut now = 0u64;
    let mut next_digest = 0u64;
    let route = |i: usize, actions: Vec<Action>, queue: &mut VecDeque<_>, committed: &mut u64| {
        for a in actions {
            match a {
                Action::Send { to, message } => {
                    if let Some(j) = keys.iter().position(|k| *k == to) {
                        queue.push_back((i, j, message));
                    }
                }
                Action::Broadcast(message) => {
                    for j in (0..n).filter(|j| *j != i) {
                        queue.push_back((i, j, message.clone()));
                    }
                }
                Action::Commit { blocks, .. } if i == 0 => *committed += blocks.len() as u64,
                _ => {}
            }
        }
    };
    for (i, r) in replicas.iter_mut().enumerate() {
        let actions = r.start(0);
        route(i, actions, &mut queue, &mut committed);
    }
    let wall = Instant::now();
    while committed < blocks {
        now += 1;
        // One fresh payload digest per step keeps every block non-empty.
        let d = Hash32::digest(b"bench-batch\0", &next_digest.to_le_bytes());
        next_digest += 1;
        for (i, r) in replicas.iter_mut().enumerate() {
            let t = Instant::now();
            let actions = r.handle(now, Event::PayloadReady(vec![d.into()]));
            let ns = t.elapsed().as_nanos() as u64;
            busy_ns[i] += ns;
            route(i, actions, &mut queue, &mut committed);
        }
        let mut budget = queue.len();
        while budget > 0 {
            budget -= 1;
            let Some((from, to, message)) = queue.pop_front() else {
                break;
            };
            let from = keys[from];
            let t = Instant::now();
            let actions = replicas[to].handle(now, Event::Message { from, message });
            let ns = t.elapsed().as_nanos() as u64;
            busy_ns[to] += ns;
            calls.push(ns);
            route(to, actions, &mut queue, &mut committed);
        }
        if now % 1_000 == 0 {
            for (i, r) in replicas.iter_mut().enumerate() {
                let actions = r.handle(now, Event::Tick);
                route(i, actions, &mut queue, &mut committed);
            }
        }
    }
    let elapsed = wall.elapsed().as_secs_f64();
    calls.sort_unstable();
    let per_block_us = busy_ns.iter().sum::<u64>() as f64 / n as f64 / committed as f64 / 1e3;
    let crypto = if real { "ed25519" } else { "keyed-hash" };
    println!(
        "replica::cycle/n={n},crypto={crypto}: {per_block_us:.1} us CPU per proposal-vote-QC cycle per replica \
         ({:.0} blocks/s per replica if CPU-bound); handle() p50 {:.1} us, p90 {:.1} us, p99 {:.1} us; \
         {committed} blocks in {elapsed:.2} s wall for all {n} replicas on one thread",
        1e6 / per_block_us,
        percentile(&calls, 0.5) as f64 / 1e3,
        percentile(&calls, 0.9) as f64 / 1e3,
        percentile(&calls, 0.99) as f64 / 1e3,
    );
}

fn sim_crash(n: usize, policy: LeaderPolicy, label: &str) {
    let mut cfg = SimConfig::new(n, 1, Fault::Crash);
    cfg.duration_ms = 60_000;
    cfg.loss = 0.0;
    cfg.leader_policy = policy;
    let r = run(&cfg);
    let f = (n - 1) / 3;
    println!(
        "sim::crash/n={n},down={f},policy={label}: {:.1}% of rounds after round 50 certified a block, \
         {:.2} rounds per committed block, {} local timeouts ({} TCs) over all honest replicas, \
         {:.1} blocks per simulated second",
        r.certified_round_share(50) * 100.0,
        r.rounds_per_block(),
        r.stats.local_timeouts,
        r.stats.tcs_formed,
        r.chain.len() as f64 / (cfg.duration_ms as f64 / 1e3)
    );
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(0, |p| p.get());
    println!("machine: {cores} cores");

    for n in [4usize, 10] {
        let real: Vec<KeyPair> = (0..n)
            .map(|i| KeyPair::from_seed([i as u8 + 1; 32]))
            .collect();
        cycle(n, real, true, 2_000);
        let fake: Vec<SimSigner> = (0..n)
            .map(|i| SimSigner(PublicKey([i as u8 + 1; 32])))
            .collect();
        cycle(n, fake, false, 2_000);
    }

    for n in [4usize, 7, 10] {
        let mut cfg = SimConfig::new(n, 1, Fault::None);
        cfg.loss = 0.0;
        cfg.duration_ms = 60_000;
        let t = Instant::now();
        let r = run(&cfg);
        println!(
            "sim::throughput/n={n}: {:.1} blocks per simulated second per replica, {:.2} rounds per block, \
             {} timeouts; simulated 60 s in {:.2} s wall",
            r.chain.len() as f64 / 60.0,
            r.rounds_per_block(),
            r.stats.local_timeouts,
            t.elapsed().as_secs_f64()
        );
    }

    for n in [4usize, 10] {
        sim_crash(n, LeaderPolicy::reputation(n), "reputation");
        sim_crash(n, LeaderPolicy::RoundRobin, "round-robin");
    }

    for delay in [200u64, 0] {
        let mut cfg = SimConfig::new(4, 1, Fault::None);
        cfg.payload_interval_ms = None;
        cfg.loss = 0.0;
        cfg.duration_ms = 60_000;
        cfg.max_batch_delay_ms = delay;
        let r = run(&cfg);
        println!(
            "sim::idle/n=4,max_batch_delay_ms={delay}: {:.1} empty rounds per simulated second, {} timeouts",
            r.chain.len() as f64 / 60.0,
            r.stats.local_timeouts
        );
    }
}
