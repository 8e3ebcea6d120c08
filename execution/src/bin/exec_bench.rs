//! `exec-bench`: sequential against parallel execution of 10,000-transaction blocks.
//!
//! Workloads: transfer, swap, mint, and compute at about 10 µs and 45 µs per transaction;
//! 2 to 10,000 accounts (pools for swap, collections for mint; swap and mint senders are
//! 10,000 accounts). Each row executes one block against the genesis state in memory, with
//! the sequential executor and with the parallel one at the row's thread count, in
//! interleaved rounds; times are the best round, and every parallel result is checked equal to the sequential
//! one. The state-root update is not in the timed figures: `root_ms` reports it apart.

use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Result};
use clap::Parser;
use ordo_execution::workload::{Fixture, Workload};
use ordo_execution::{
    compute, ExecutedBlock, Executor, ParallelExecutor, ParallelOptions, SequentialExecutor,
    Strategy,
};
use ordo_types::StateAccumulator;

#[derive(Parser, Debug)]
#[command(about = "Benchmark the sequential and parallel executors")]
struct Args {
    /// Fewer repetitions; finishes in under a minute on 2 cores.
    #[arg(long)]
    quick: bool,
    /// One JSON object per row instead of a table.
    #[arg(long)]
    json: bool,
    /// Transactions per block.
    #[arg(long, default_value_t = 10_000)]
    txs: usize,
    /// Account counts (pools for swap, collections for mint).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 10, 100, 1_000, 10_000])]
    accounts: Vec<usize>,
    /// Workloads: transfer, swap, mint, compute10, compute45, and the contract workloads
    /// erc20, amm (pairs as accounts), nft (collections as accounts) and defi-mix (pairs
    /// and collections as accounts: four token transfers, three swaps, two mints and one
    /// native transfer in ten).
    #[arg(long, value_delimiter = ',', default_values_t = ["transfer", "swap", "mint", "compute10", "compute45"].map(String::from).to_vec())]
    workloads: Vec<String>,
    /// Thread counts; by default 1, 2 and all cores.
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Parallel strategy: auto, parallel (always the engine), sequential.
    #[arg(long, default_value = "auto")]
    strategy: String,
    /// Disable pre-seeded write estimates in the engine.
    #[arg(long)]
    no_preseed: bool,
}

/// Hashes per microsecond of `compute`, measured here: the best of many short runs, so
/// that a run disturbed by other processes does not skew it.
fn iterations_per_us() -> f64 {
    let n = 2_000u32;
    let best = (0..50)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(compute([1; 32], 0, n));
            started.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    n as f64 / (best.as_secs_f64() * 1e6)
}

/// CPU time used so far by every thread of this process.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs the block on every executor in turn, `reps` rounds after an optional warm-up round, so that
/// all of them see the same background load; keeps each one's fastest time (the least
/// disturbed by other processes), its total CPU time over all rounds, and last result.
fn time_interleaved(
    executors: &[&dyn Executor],
    fixture: &Fixture,
    block: &[ordo_types::SignedTransaction],
    reps: usize,
    caller: &rayon::ThreadPool,
    warm_up: bool,
) -> Result<Vec<Timed>> {
    let ctx = fixture.context(1);
    let mut timed: Vec<Timed> = Vec::with_capacity(executors.len());
    for exec in executors {
        // The warm-up round also gives each executor its first result.
        let out = if warm_up {
            caller.install(|| exec.execute_transactions(&fixture.state, &ctx, block))?
        } else {
            ExecutedBlock::default()
        };
        timed.push(Timed {
            best: Duration::MAX,
            cpu: Duration::ZERO,
            out,
        });
    }
    for _ in 0..reps {
        for (exec, slot) in executors.iter().zip(timed.iter_mut()) {
            // Every executor is called from the same non-main thread, as a node's execution
            // stage would call it.
            let (elapsed, cpu, out) = caller.install(|| {
                let cpu = process_cpu();
                let started = Instant::now();
                let out = exec.execute_transactions(&fixture.state, &ctx, block);
                (started.elapsed(), process_cpu().saturating_sub(cpu), out)
            });
            slot.best = slot.best.min(elapsed);
            slot.cpu += cpu;
            slot.out = out?;
        }
    }
    Ok(timed)
}

/// Phase times in µs: declare, intern, load, execute, finalize.
fn phases_us(p: &ordo_execution::PhaseTimes) -> [u64; 5] {
    [p.declare, p.intern, p.load, p.execute, p.finalize].map(|d| d.as_micros() as u64)
}

struct Timed {
    best: Duration,
    cpu: Duration,
    out: ExecutedBlock,
}

fn main() -> Result<()> {
    ordo_execution::allocator::keep_freed_pages_mapped();
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = if args.threads.is_empty() {
        vec![1, 2, cores]
    } else {
        args.threads.clone()
    };
    threads.sort_unstable();
    threads.dedup();
    let strategy = match args.strategy.as_str() {
        "auto" => Strategy::Auto,
        "parallel" => Strategy::AlwaysParallel,
        "sequential" => Strategy::AlwaysSequential,
        other => bail!("unknown strategy {other}"),
    };
    // Rounds per row: as many as fit a time budget, at least two (one with --quick).
    let budget = Duration::from_millis(if args.quick { 600 } else { 4_000 });
    let per_us = iterations_per_us();
    // A plain transaction costs about half a microsecond besides the hashing.
    let iterations = |us: f64| ((us - 0.5) * per_us).max(1.0) as u32;
    let config = ordo_execution::workload::bench_config();
    let sequential = SequentialExecutor::new(config.clone());
    let parallel: Vec<ParallelExecutor> = threads
        .iter()
        .map(|&t| {
            let mut options = ParallelOptions::new(t);
            options.strategy = strategy;
            options.preseed_estimates = !args.no_preseed;
            ParallelExecutor::new(config.clone(), options)
        })
        .collect::<Result<_, _>>()?;
    let root_pool = rayon::ThreadPoolBuilder::new().num_threads(cores).build()?;
    let caller = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;

    if !args.json {
        println!(
            "exec-bench: {} cores, {} txs per block, best of up to 200 interleaved rounds, compute {:.1} hashes/µs",
            cores, args.txs, per_us
        );
        println!(
            "{:<10} {:>8} {:>7} {:>12} {:>12} {:>8} {:>7} {:>7} {:>5} {:>8} {:>9}",
            "workload",
            "accounts",
            "threads",
            "seq_tps",
            "par_tps",
            "speedup",
            "reexec",
            "susp",
            "mode",
            "root_ms",
            "cpu_ratio"
        );
    }
    let started = Instant::now();
    let mut mismatches = 0;
    for name in &args.workloads {
        let workload = match name.as_str() {
            "transfer" => Workload::Transfer,
            "swap" => Workload::Swap,
            "mint" => Workload::Mint,
            "compute10" => Workload::Compute {
                iterations: iterations(10.0),
            },
            "compute45" => Workload::Compute {
                iterations: iterations(45.0),
            },
            "erc20" => Workload::Erc20,
            "amm" => Workload::Amm,
            "nft" => Workload::Nft,
            "defi-mix" => Workload::DefiMix,
            other => bail!("unknown workload {other}"),
        };
        for &accounts in &args.accounts {
            let mut fixture = Fixture::new(workload, accounts, 7)?;
            let block = fixture.block(args.txs);
            let probe = Instant::now();
            sequential.execute_transactions(&fixture.state, &fixture.context(1), &block)?;
            let round = probe.elapsed().mul_f64(1.0 + threads.len() as f64 * 0.8);
            let min_reps = if args.quick { 1.0 } else { 2.0 };
            let reps = (budget.as_secs_f64() / round.as_secs_f64()).clamp(min_reps, 200.0) as usize;
            let mut executors: Vec<&dyn Executor> = vec![&sequential];
            executors.extend(parallel.iter().map(|p| p as &dyn Executor));
            let mut timed =
                time_interleaved(&executors, &fixture, &block, reps, &caller, !args.quick)?;
            let Timed {
                best: seq_time,
                cpu: seq_cpu,
                out: seq_out,
            } = timed.remove(0);
            let root_started = Instant::now();
            let parent: &StateAccumulator = &fixture.parent;
            root_pool.install(|| seq_out.accumulator(parent, cores > 1));
            let root_ms = root_started.elapsed().as_secs_f64() * 1e3;
            for (par, &t) in timed.into_iter().zip(&threads) {
                let (par_time, par_out) = (par.best, par.out);
                // CPU spent by the parallel run per unit of sequential CPU: under load from
                // other processes, wall-clock speedup cannot exceed what free cores allow,
                // while this ratio still shows the engine's own overhead.
                let cpu_ratio = par.cpu.as_secs_f64() / seq_cpu.as_secs_f64();
                if par_out.receipts != seq_out.receipts || par_out.changes != seq_out.changes {
                    eprintln!("MISMATCH: {name} accounts={accounts} threads={t}");
                    mismatches += 1;
                }
                let seq_tps = args.txs as f64 / seq_time.as_secs_f64();
                let par_tps = args.txs as f64 / par_time.as_secs_f64();
                let speedup = par_tps / seq_tps;
                let mode = if par_out.stats.parallel { "par" } else { "seq" };
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "workload": name,
                            "accounts": accounts,
                            "threads": t,
                            "txs": args.txs,
                            "seq_tps": seq_tps.round(),
                            "par_tps": par_tps.round(),
                            "speedup": (speedup * 1000.0).round() / 1000.0,
                            "re_executions": par_out.stats.reexecutions,
                            "suspensions": par_out.stats.suspensions,
                            "mode": mode,
                            "root_ms": (root_ms * 100.0).round() / 100.0,
                            "cpu_ratio": (cpu_ratio * 1000.0).round() / 1000.0,
                            "seq_phases_us": phases_us(&seq_out.stats.phases),
                            "par_phases_us": phases_us(&par_out.stats.phases),
                            "cores": cores,
                        })
                    );
                } else {
                    println!(
                        "{:<10} {:>8} {:>7} {:>12.0} {:>12.0} {:>8.3} {:>7} {:>7} {:>5} {:>8.2} {:>9.3}",
                        name,
                        accounts,
                        t,
                        seq_tps,
                        par_tps,
                        speedup,
                        par_out.stats.reexecutions,
                        par_out.stats.suspensions,
                        mode,
                        root_ms,
                        cpu_ratio
                    );
                }
            }
        }
    }
    if !args.json {
        println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    }
    if mismatches > 0 {
        bail!("{mismatches} rows where parallel differed from sequential");
    }
    Ok(())
}
