//! The child process of the crash test (`tests/crash.rs`): commits blocks of the
//! deterministic workload in a loop, pipelined as the node does it (block h+1 executes
//! on a staged view while a writer thread commits block h), and writes safety data
//! between blocks. Each line it prints names something that is durable: `executed H`
//! after block H's commit returned, `safety N` after safety record N's write returned.
//! It runs until killed.

mod workload;

use std::io::Write;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use anyhow::{bail, Context};
use ordo_storage::{BlockCommit, Storage, StorageConfig, TxOutcome};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: storage-crash-child DIR")?;
    let config = StorageConfig {
        retain_heights: Some(workload::RETAIN_HEIGHTS),
        ..StorageConfig::small()
    };
    let (storage, recovery) = Storage::open(&dir, config)?;
    let mut accumulator = recovery.accumulator;
    let mut height = recovery.last_executed.map_or(1, |h| h + 1);
    let mut safety: u64 = match storage.safety_data()? {
        Some(bytes) => parse_safety(&bytes)?,
        None => 0,
    };

    let (to_writer, from_executor) = sync_channel::<Arc<BlockCommit>>(2);
    let writer_storage = storage.clone();
    let writer = std::thread::spawn(move || -> anyhow::Result<()> {
        for commit in from_executor {
            writer_storage.commit_executed(&commit)?;
            report(&format!("executed {}", commit.height));
        }
        Ok(())
    });

    loop {
        let hash = workload::block_hash(height);
        let block = format!("block {height}").into_bytes();
        let qc = format!("qc {height}").into_bytes();
        storage.record_committed(height, &hash, Some(&block), Some(&qc))?;

        let view = storage.state_view();
        let writes = workload::block_writes(height);
        for (key, value) in &writes {
            if let Some(old) = view.read(key)? {
                accumulator.remove(key, &old);
            }
            if let Some(value) = value {
                accumulator.insert(key, value);
            }
        }
        let transactions = (0..workload::TXS_PER_BLOCK)
            .map(|i| TxOutcome {
                hash: workload::tx_hash(height, i),
                status: workload::status(height, i),
                receipt: workload::receipt(height, i),
            })
            .collect();
        let commit = Arc::new(BlockCommit {
            height,
            block_hash: hash,
            state_writes: writes.into_iter().collect(),
            transactions,
            accumulator: accumulator.clone(),
            skipped: Vec::new(),
        });
        storage.stage_executed(commit.clone())?;
        if to_writer.send(commit).is_err() {
            // The writer stopped: its error says why.
            return match writer.join() {
                Ok(result) => result,
                Err(_) => bail!("writer thread panicked"),
            };
        }

        safety += 1;
        storage.write_safety_data(format!("safety {safety}").as_bytes())?;
        report(&format!("safety {safety}"));
        if height % 16 == 0 {
            storage.prune()?;
        }
        height += 1;
    }
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the test is gone; the kill follows.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn parse_safety(bytes: &[u8]) -> anyhow::Result<u64> {
    let text = std::str::from_utf8(bytes).context("safety data is not text")?;
    text.strip_prefix("safety ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected safety data {text:?}"))
}
