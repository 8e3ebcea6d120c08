//! `storage-bench`: the figures behind the storage issue's targets.
//!
//! - `commit_block_10k_*`: [`Storage::commit_executed`] of a 10,000-transaction block
//!   (20,000 state writes to keys drawn from a pool of accounts, 10,000 receipts and
//!   transaction index entries), WAL fsynced before the call returns, the default
//!   durability; the same without fsync for comparison.
//! - `read_cache_per_s`: state reads through a view that hit the hot-key cache.
//! - `read_db_per_s`: state reads through a view with the cache disabled, after the
//!   memtables were flushed, so they go through RocksDB's block cache, bloom filters and
//!   table files.
//!
//! `*_cpu_p50_ms` is the committing thread's CPU time (not counting RocksDB's background
//! flushes), which tells the commit's cost apart from waiting for a busy machine; the
//! machine's load average is printed as a figure too.
//!
//! `--json` prints one JSON object per figure: `{"name", "value", "unit"}`.
//! `--blocks N` sets the timed blocks per durability setting (default 40).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use ordo_storage::{BlockCommit, Storage, StorageConfig, TxOutcome};
use ordo_types::{Hash32, StateAccumulator};
use rand::{Rng, SeedableRng};

const TXS: usize = 10_000;
const ACCOUNTS: u64 = 200_000;
const WARMUP_BLOCKS: u64 = 3;
const READS: usize = 1_000_000;
const HOT_KEYS: u64 = 50_000;

struct Args {
    json: bool,
    blocks: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        json: false,
        blocks: 40,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => args.json = true,
            "--blocks" => {
                args.blocks = it
                    .next()
                    .context("--blocks needs a number")?
                    .parse()
                    .context("--blocks needs a number")?
            }
            "-h" | "--help" => {
                println!("usage: storage-bench [--json] [--blocks N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; usage: storage-bench [--json] [--blocks N]"),
        }
    }
    Ok(args)
}

struct Report {
    json: bool,
}

impl Report {
    fn figure(&self, name: &str, value: f64, unit: &str) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "name": name, "value": value, "unit": unit })
            );
        } else {
            println!("{name:<36} {value:>14.2} {unit}");
        }
    }
}

fn account_key(i: u64) -> Vec<u8> {
    let mut key = b"acct/".to_vec();
    key.extend_from_slice(Hash32::digest(b"ordo/bench/account\0", &i.to_le_bytes()).as_bytes());
    key
}

/// A 10,000-transaction block: each transaction writes its sender's and its receiver's
/// account and leaves a receipt.
fn block(height: u64, rng: &mut impl Rng) -> BlockCommit {
    let mut state_writes = Vec::with_capacity(2 * TXS);
    let mut transactions = Vec::with_capacity(TXS);
    for i in 0..TXS {
        for _ in 0..2 {
            let mut value = vec![0u8; 48];
            rng.fill(&mut value[..]);
            state_writes.push((account_key(rng.gen_range(0..ACCOUNTS)), Some(value)));
        }
        let mut receipt = vec![0u8; 96];
        rng.fill(&mut receipt[..]);
        transactions.push(TxOutcome {
            hash: Hash32::digest_parts(
                b"ordo/bench/tx\0",
                &[&height.to_le_bytes(), &(i as u64).to_le_bytes()],
            ),
            status: 0,
            receipt,
        });
    }
    BlockCommit {
        height,
        block_hash: block_hash(height),
        state_writes,
        transactions,
        // Storage stores the accumulator, it does not check it against the writes.
        accumulator: StateAccumulator::new(),
        skipped: Vec::new(),
    }
}

fn block_hash(height: u64) -> Hash32 {
    Hash32::digest(b"ordo/bench/block\0", &height.to_le_bytes())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// CPU time of the calling thread, in ms. RocksDB applies a write batch on the thread
/// that writes it, so this is the commit's own work, whatever else runs on the machine.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Commits `count` blocks from `next_height` on; returns wall and thread-CPU times in ms.
fn commit_blocks(
    storage: &Storage,
    next_height: &mut u64,
    count: u64,
    rng: &mut impl Rng,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut wall = Vec::with_capacity(count as usize);
    let mut cpu = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let height = *next_height;
        let commit = Arc::new(block(height, rng));
        storage.record_committed(height, &block_hash(height), Some(b"block"), Some(b"qc"))?;
        let started = Instant::now();
        let cpu_started = thread_cpu_ms();
        storage.commit_executed(&commit)?;
        cpu.push(thread_cpu_ms() - cpu_started);
        wall.push(started.elapsed().as_secs_f64() * 1e3);
        *next_height += 1;
    }
    Ok((wall, cpu))
}

fn report_commits(report: &Report, prefix: &str, (mut wall, mut cpu): (Vec<f64>, Vec<f64>)) {
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    report.figure(&format!("{prefix}_p50_ms"), percentile(&wall, 0.5), "ms");
    report.figure(&format!("{prefix}_p90_ms"), percentile(&wall, 0.9), "ms");
    report.figure(&format!("{prefix}_max_ms"), percentile(&wall, 1.0), "ms");
    report.figure(&format!("{prefix}_cpu_p50_ms"), percentile(&cpu, 0.5), "ms");
}

fn reads_per_second(storage: &Storage, keys: &[Vec<u8>], reads: usize, threads: usize) -> f64 {
    let view = storage.state_view();
    let per_thread = reads / threads;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let view = view.clone();
            scope.spawn(move || {
                let mut i = t * 7919;
                for _ in 0..per_thread {
                    i = (i + 104_729) % keys.len();
                    let value = view.read(&keys[i]).expect("read");
                    black_box(value);
                }
            });
        }
    });
    (per_thread * threads) as f64 / started.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let report = Report { json: args.json };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    if !args.json {
        println!(
            "storage-bench: {cores} cores, store in {}",
            dir.path().display()
        );
    }

    let mut height = 1;
    {
        let (storage, _) = Storage::open(dir.path(), StorageConfig::default())?;
        commit_blocks(&storage, &mut height, WARMUP_BLOCKS, &mut rng)?;
        let synced = commit_blocks(&storage, &mut height, args.blocks, &mut rng)?;
        report_commits(&report, "commit_block_10k", synced);
    }
    {
        let config = StorageConfig {
            sync_commits: false,
            ..StorageConfig::default()
        };
        let (storage, _) = Storage::open(dir.path(), config)?;
        let unsynced = commit_blocks(&storage, &mut height, args.blocks, &mut rng)?;
        report_commits(&report, "commit_block_10k_nosync", unsynced);
        storage.flush()?;
    }

    // Keys that exist: the accounts the blocks wrote most are spread over the pool.
    let keys: Vec<Vec<u8>> = (0..ACCOUNTS).map(account_key).collect();
    {
        let config = StorageConfig {
            cache_entries: 0,
            ..StorageConfig::default()
        };
        let (storage, _) = Storage::open(dir.path(), config)?;
        reads_per_second(&storage, &keys, READS / 10, 1);
        report.figure(
            "read_db_per_s",
            reads_per_second(&storage, &keys, READS, 1),
            "reads/s",
        );
        report.figure(
            &format!("read_db_per_s_{cores}threads"),
            reads_per_second(&storage, &keys, READS, cores),
            "reads/s",
        );
    }
    {
        let (storage, _) = Storage::open(dir.path(), StorageConfig::default())?;
        let hot = &keys[..HOT_KEYS as usize];
        reads_per_second(&storage, hot, HOT_KEYS as usize * 2, 1);
        let before = storage.cache_stats();
        report.figure(
            "read_cache_per_s",
            reads_per_second(&storage, hot, READS * 2, 1),
            "reads/s",
        );
        let after = storage.cache_stats();
        let hit_rate = (after.hits - before.hits) as f64
            / ((after.hits + after.misses) - (before.hits + before.misses)) as f64;
        report.figure("read_cache_hit_rate", hit_rate, "fraction");
        report.figure(
            &format!("read_cache_per_s_{cores}threads"),
            reads_per_second(&storage, hot, READS * 2, cores),
            "reads/s",
        );
    }
    report.figure("machine_cores", cores as f64, "cores");
    if let Some(load) = load_average() {
        report.figure("machine_load_avg_1m", load, "runnable");
    }
    Ok(())
}

/// The one-minute load average, to tell a busy machine's figures apart.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
