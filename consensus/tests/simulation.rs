//! Seeded simulation of whole committees: safety, liveness after healing, determinism.
//!
//! `ORDO_SIM_SCENARIOS=N ORDO_SIM_SEED=S cargo test --release -p ordo-consensus --test simulation`
//! runs N scenarios derived from S (default 2,000 from a fixed seed); a failing scenario
//! prints `ORDO_SIM_REPLAY=<seed>`, which replays exactly that scenario.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ordo_consensus::sim::{run, Fault, SimConfig, SimReport};
use ordo_consensus::LeaderPolicy;
use ordo_types::Hash32;

const DEFAULT_SCENARIOS: usize = 2_000;
const DEFAULT_SEED: u64 = 0x0bd0_5eed;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn scenario_seed(base: u64, i: u64) -> u64 {
    let h = Hash32::digest_parts(
        b"ordo/sim-scenario\0",
        &[&base.to_le_bytes(), &i.to_le_bytes()],
    );
    u64::from_le_bytes(h.0[..8].try_into().expect("8 bytes"))
}

/// Everything about a scenario follows from its seed, so the seed alone replays it.
fn scenario(seed: u64) -> SimConfig {
    let n = [4, 7, 10][(seed % 3) as usize];
    let f = (n - 1) / 3;
    let fault = match (seed / 3) % 6 {
        0 => Fault::None,
        1 => Fault::Lossy,
        2 => Fault::Partition,
        3 => Fault::CrashRestart,
        4 => Fault::Crash,
        _ => Fault::Twins(f),
    };
    let mut cfg = SimConfig::new(n, seed, fault);
    if (seed / 18) % 2 == 1 {
        cfg.leader_policy = LeaderPolicy::RoundRobin;
    }
    // A slice of the runs signs and verifies with real ed25519.
    cfg.real_crypto = (seed / 36) % 25 == 0;
    if (seed / 900) % 4 == 0 {
        cfg.payload_interval_ms = None;
    }
    cfg
}

fn kind_label(cfg: &SimConfig) -> String {
    format!("{}", cfg.fault)
}

fn check(seed: u64, report: &SimReport) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(report.safety_violations.iter().cloned());
    problems.extend(report.double_votes.iter().cloned());
    if let Some(l) = &report.liveness_failure {
        problems.push(format!("liveness: {l}"));
    }
    if !problems.is_empty() {
        problems.insert(
            0,
            format!("scenario failed; replay with ORDO_SIM_REPLAY={seed:#x}"),
        );
    }
    problems
}

#[test]
fn seeded_scenarios_are_safe_live_and_deterministic() {
    if let Some(seed) = env_u64("ORDO_SIM_REPLAY") {
        let cfg = scenario(seed);
        eprintln!("replaying {cfg:?}");
        let report = run(&cfg);
        eprintln!("{report:#?}");
        let problems = check(seed, &report);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        return;
    }
    let count = env_u64("ORDO_SIM_SCENARIOS").map_or(DEFAULT_SCENARIOS, |v| v as usize);
    let base = env_u64("ORDO_SIM_SEED").unwrap_or(DEFAULT_SEED);
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let kinds: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let violations = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let seed = scenario_seed(base, i as u64);
                let cfg = scenario(seed);
                let report = run(&cfg);
                let mut problems = check(seed, &report);
                // Determinism audit on every eighth run: the same seed, the same logs.
                if i % 8 == 0 && run(&cfg).fingerprint != report.fingerprint {
                    problems.push(format!(
                        "nondeterminism; replay with ORDO_SIM_REPLAY={seed:#x}"
                    ));
                }
                if !report.is_safe() {
                    violations.fetch_add(1, Ordering::Relaxed);
                }
                *kinds
                    .lock()
                    .expect("no panics while held")
                    .entry(kind_label(&cfg))
                    .or_default() += 1;
                if !problems.is_empty() {
                    let msg = problems.join("\n  ");
                    eprintln!("{msg}");
                    failures.lock().expect("no panics while held").push(msg);
                }
            });
        }
    });
    let kinds = kinds.into_inner().expect("threads joined");
    let failures = failures.into_inner().expect("threads joined");
    println!(
        "{count} scenarios from seed {base:#x} in {:.1} s on {threads} threads",
        started.elapsed().as_secs_f64()
    );
    println!("per kind: {}", ordo_consensus::sim::summarize(&kinds));
    println!("{} safety violations", violations.load(Ordering::Relaxed));
    assert!(
        failures.is_empty(),
        "{} failing scenarios:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
