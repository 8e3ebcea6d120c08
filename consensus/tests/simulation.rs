//! Seeded simulation of whole committees: safety, liveness after healing, determinism.
//!
//! `ORDO_SIM_SCENARIOS=N ORDO_SIM_SEED=S cargo test --release -p consensus --test simulation`
//! runs N scenarios derived from S (default 2,000 from a fixed seed); a failing scenario
//! prints `ORDO_SIM_REPLAY=<seed>`, which replays exactly that scenario.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ordo_consensus::sim::{run, scenario, scenario_seed, Fault, SimConfig, SimReport};
use ordo_consensus::LeaderPolicy;

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
    let forged = std::sync::atomic::AtomicU64::new(0);
    let refused = std::sync::atomic::AtomicU64::new(0);
    let finished = AtomicUsize::new(0);
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
                if report.forged_responses > 0 {
                    forged.fetch_add(report.forged_responses, Ordering::Relaxed);
                    refused.fetch_add(report.stats.invalid_messages, Ordering::Relaxed);
                }
                let done = finished.fetch_add(1, Ordering::Relaxed) + 1;
                if done % 5_000 == 0 {
                    eprintln!(
                        "progress: {done} scenarios, {} safety violations, {} failing, {:.0} s",
                        violations.load(Ordering::Relaxed),
                        failures.lock().map_or(0, |f| f.len()),
                        started.elapsed().as_secs_f64()
                    );
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
    println!(
        "forged block responses sent: {}; messages refused in those scenarios: {}",
        forged.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    println!("{} safety violations", violations.load(Ordering::Relaxed));
    assert!(
        failures.is_empty(),
        "{} failing scenarios:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn control_f_plus_one_twins_produce_a_detected_fork() {
    // With f + 1 keys on two nodes each, both sides of a split hold a quorum of keys, so
    // honest replicas on opposite sides commit different blocks; if the checker does not
    // see it, the checker is blind.
    for n in [4usize, 7, 10] {
        let f = (n - 1) / 3;
        let mut cfg = SimConfig::new(n, 1, Fault::Twins(f + 1));
        cfg.twins_static_split = true;
        cfg.heal_at_ms = cfg.duration_ms;
        let report = run(&cfg);
        println!(
            "n = {n}, {} twins, fixed split: {} safety violations, first: {:?}",
            f + 1,
            report.safety_violations.len(),
            report.safety_violations.first()
        );
        assert!(
            !report.safety_violations.is_empty(),
            "no fork detected with f + 1 twins at n = {n}"
        );
        // The same split with only f twins leaves one side short of a quorum: no fork.
        let mut safe = SimConfig::new(n, 1, Fault::Twins(f));
        safe.twins_static_split = true;
        safe.heal_at_ms = safe.duration_ms;
        assert!(run(&safe).is_safe(), "fork with only f twins at n = {n}");
    }
    // Per-round random partitions find forks too, less reliably.
    let forks = (0..10u64)
        .filter(|seed| !run(&SimConfig::new(4, *seed, Fault::Twins(2))).is_safe())
        .count();
    println!("n = 4, 2 twins, per-round partitions: forks in {forks} of 10 seeds");
}

/// Byzantine validators (the twins of f keys) compute another state and carry its roots
/// in the blocks they lead: honest validators refuse to vote for those blocks (counted)
/// and never commit a block carrying a root no honest validator computed (the simulator
/// checks every honest commit), and the chain stays live.
#[test]
fn roots_no_honest_validator_computed_are_never_certified() {
    let mut refusals = 0;
    for seed in 0..10u64 {
        let report = run(&SimConfig::new(4, seed, Fault::Twins(1)));
        let problems = check(seed, &report);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        refusals += report.stats.root_refusals;
    }
    assert!(
        refusals > 0,
        "no Byzantine leader's roots reached a vote: nothing was tested"
    );
}

#[test]
fn crash_restart_never_signs_two_votes_in_a_round() {
    for seed in 0..30u64 {
        let n = [4, 7, 10][(seed % 3) as usize];
        let report = run(&SimConfig::new(n, seed, Fault::CrashRestart));
        assert!(
            report.double_votes.is_empty(),
            "seed {seed}: {:?}",
            report.double_votes
        );
        assert!(
            report.is_safe(),
            "seed {seed}: {:?}",
            report.safety_violations
        );
    }
}

#[test]
fn same_seed_same_commit_log() {
    for fault in [Fault::Lossy, Fault::CrashRestart, Fault::Twins(1)] {
        let cfg = SimConfig::new(4, 42, fault);
        let a = run(&cfg);
        let b = run(&cfg);
        assert_eq!(a.fingerprint, b.fingerprint, "{fault}");
        assert_eq!(a.chain, b.chain);
        let other = run(&SimConfig::new(4, 43, fault));
        assert_ne!(a.fingerprint, other.fingerprint, "seed must matter");
    }
}

/// Rounds after warm-up that certified a block, with 1 of 4 validators down.
fn certified_share(policy: LeaderPolicy, seed: u64) -> (f64, f64, u64) {
    let mut cfg = SimConfig::new(4, seed, Fault::Crash);
    cfg.duration_ms = 60_000;
    cfg.loss = 0.0;
    cfg.leader_policy = policy;
    let report = run(&cfg);
    (
        report.certified_round_share(50),
        report.rounds_per_block(),
        report.stats.local_timeouts,
    )
}

#[test]
fn leader_reputation_skips_a_crashed_validator() {
    for seed in [1u64, 2, 3] {
        let (rep, rep_rpb, rep_to) = certified_share(LeaderPolicy::reputation(4), seed);
        let (rr, rr_rpb, rr_to) = certified_share(LeaderPolicy::RoundRobin, seed);
        println!(
            "seed {seed}: certified rounds after warm-up: reputation {:.1}% ({rep_rpb:.2} rounds/block, {rep_to} timeouts), round-robin {:.1}% ({rr_rpb:.2} rounds/block, {rr_to} timeouts)",
            rep * 100.0,
            rr * 100.0
        );
        assert!(
            rep >= 0.9,
            "reputation certified only {:.1}% of rounds",
            rep * 100.0
        );
        assert!(
            rr < rep,
            "round-robin should lose rounds to the crashed leader"
        );
    }
}

#[test]
fn idle_chain_paces_itself() {
    let mut cfg = SimConfig::new(4, 5, Fault::None);
    cfg.payload_interval_ms = None;
    cfg.loss = 0.0;
    let idle = run(&cfg);
    let seconds = cfg.duration_ms as f64 / 1000.0;
    let per_second = idle.chain.len() as f64 / seconds;
    let ceiling = 1000.0 / cfg.max_batch_delay_ms as f64;
    println!(
        "idle: {per_second:.1} empty blocks per simulated second (max batch delay {} ms), {} timeouts",
        cfg.max_batch_delay_ms, idle.stats.local_timeouts
    );
    assert!(idle.chain.iter().all(|(_, payload)| *payload == 0));
    assert!(per_second <= ceiling, "{per_second} empty blocks/s");
    assert!(
        per_second >= ceiling / 4.0,
        "the idle chain should still move"
    );
    assert_eq!(
        idle.stats.local_timeouts, 0,
        "pacing must not cost timeouts"
    );

    cfg.max_batch_delay_ms = 0;
    let spinning = run(&cfg);
    assert!(
        spinning.chain.len() > 3 * idle.chain.len(),
        "without the delay the chain should race ({} vs {})",
        spinning.chain.len(),
        idle.chain.len()
    );
}

/// A validator down, with no data, until the heal joins then: it catches up on the
/// committed chain forward, never holding more than an answer's worth of blocks whose
/// parents it lacks, commits exactly the chain the others committed (the simulator checks
/// every commit's parent and every height against the others), and keeps up after.
#[test]
fn a_validator_that_joins_late_catches_up_forward() {
    for seed in 0..12u64 {
        let mut cfg = SimConfig::new([4, 7][(seed % 2) as usize], seed, Fault::Rejoin);
        // Long enough that the chain it missed is more than one answer's worth (128) in
        // every seed: chains of these networks grow by 4 to 16 blocks a simulated second.
        cfg.heal_at_ms = 60_000;
        cfg.duration_ms = 70_000;
        let report = run(&cfg);
        let problems = check(seed, &report);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        let s = &report.stats;
        // More than one answer's worth: at least one full answer was followed at once.
        assert!(
            s.catch_up_requests >= 2 && s.catch_up_blocks > 128,
            "seed {seed}: {s:?}\n{}",
            report.node_states.join("\n")
        );
        assert!(
            s.max_orphans <= 128,
            "seed {seed}: held {} orphans",
            s.max_orphans
        );
    }
}

/// The bound that kept a wiped validator out for good: walking back from the tip, it held
/// every block until the walk reached its tree, at most 65,536, so after about half an
/// hour of load it could never rejoin. Forward, it rejoins a chain longer than that while
/// holding no orphan at all. Fast links and short timeouts make the chain long quickly
/// (about 70,000 blocks in 1,050 simulated seconds; some 35 s of the simulator's time).
#[test]
fn a_wiped_validator_rejoins_a_chain_longer_than_the_old_orphan_bound() {
    let mut cfg = SimConfig::new(4, 1, Fault::Rejoin);
    cfg.min_latency_ms = 1;
    cfg.jitter_ms = 1;
    cfg.payload_interval_ms = Some(2);
    cfg.max_batch_delay_ms = 1;
    cfg.base_timeout_ms = 50;
    cfg.heal_at_ms = 1_050_000;
    cfg.duration_ms = 1_060_000;
    let report = run(&cfg);
    let problems = check(1, &report);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let s = &report.stats;
    assert!(
        s.catch_up_blocks > 65_536,
        "the late validator caught up on {} blocks: {s:?}",
        s.catch_up_blocks
    );
    assert!(s.max_orphans <= 128, "held {} orphans", s.max_orphans);
}
