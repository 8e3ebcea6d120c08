//! The execution pipeline: committed blocks in height order through three stages, each
//! working on its block while the next stage finishes the previous one.
//!
//! ```text
//! committed height (watch) ─▶ fetch: block from RocksDB, its batches (memory, disk, a
//!                             recent block's push, or peers; verified once), duplicates
//!                             dropped (transaction index, and the blocks fetched but not
//!                             yet written)
//!                          ─▶ execute: ParallelExecutor on the latest state (staged
//!                             overlay included), stage the results
//!                          ─▶ commit: one atomic RocksDB write batch, raise the executed
//!                             height (RPC waiters wake), publish the executed block
//!                             (crate::events) to whoever keeps state derived from it
//! ```
//!
//! Channels between stages are bounded (a few blocks), so memory stays flat when
//! execution falls behind; the RPC then refuses ingress (see [`crate::shared::Shared::overloaded`]).
//! Consensus is never waited on: it only raises the committed height.
//!
//! Invariants: heights are executed one after another, starting after the last executed
//! height in storage, so a restarted node first executes the committed blocks it had not.
//! Which transactions execute depends on the committed chain alone: a transaction whose
//! hash one of the 256 heights below, or an earlier place in its own block, ordered is
//! dropped before execution (see [`crate::dedup`]). So a restart or a state sync changes
//! nothing, and every validator reaches the same state. A transaction executed again past
//! that window (it fails on its nonce unless it never changed state) replaces its index
//! entry with the later receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_execution::{BlockContext, Executor, ParallelExecutor, Receipt, TxStatus};
use ordo_network::BatchBody;
use ordo_storage::{BlockCommit, TxOutcome};
use ordo_types::{codec, Hash32, PublicKey, SignedTransaction, StateAccumulator};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::batches::{push_deadline, Batches, Source, PUSH_GRACE};
use crate::dedup::DuplicateFilter;
use crate::events::{ExecutedBlock, Publisher};
use crate::shared::{ExecutedTip, Shared};
use crate::supervisor::{Supervisor, TaskError};

/// One block ready to execute.
struct Job {
    height: u64,
    block_hash: Hash32,
    timestamp_ms: u64,
    digests: Vec<Hash32>,
    txs: Vec<SignedTransaction>,
    /// `txs[i]`'s hash, computed once when the block was gathered.
    hashes: Vec<Hash32>,
    /// Hashes the block ordered that the duplicate rule skipped (see [`crate::dedup`]).
    skipped: Vec<Hash32>,
    fetched_at: Instant,
}

struct Executed {
    /// When its batches were stored: the start of the execution stage's share of latency.
    fetched_at: Instant,
    commit: Arc<BlockCommit>,
    timestamp_ms: u64,
    digests: Vec<Hash32>,
    txs: usize,
}

/// The stable code of a transaction status, as stored in the transaction index.
pub fn status_code(status: &TxStatus) -> u8 {
    match status {
        TxStatus::Success => 0,
        TxStatus::WrongChain => 1,
        TxStatus::Expired => 2,
        TxStatus::BadNonce { .. } => 3,
        TxStatus::ComputeLimitExceeded => 4,
        TxStatus::CannotPayFee => 5,
        TxStatus::InsufficientBalance => 6,
        TxStatus::UnknownPool => 7,
        TxStatus::SlippageExceeded => 8,
        TxStatus::UnknownCollection => 9,
        TxStatus::Overflow => 10,
        TxStatus::EvmInvalid(_) => 11,
        TxStatus::Reverted => 12,
        TxStatus::Halted(_) => 13,
    }
}

/// The name of a status code, for clients.
pub fn status_name(code: u8) -> &'static str {
    match code {
        0 => "success",
        1 => "wrong_chain",
        2 => "expired",
        3 => "bad_nonce",
        4 => "compute_limit_exceeded",
        5 => "cannot_pay_fee",
        6 => "insufficient_balance",
        7 => "unknown_pool",
        8 => "slippage_exceeded",
        9 => "unknown_collection",
        10 => "overflow",
        11 => "evm_invalid",
        12 => "reverted",
        13 => "halted",
        _ => "unknown",
    }
}

pub struct Pipeline {
    pub shared: Arc<Shared>,
    pub batches: Arc<Batches>,
    pub executor: Arc<ParallelExecutor>,
    /// The accumulator of the last executed state.
    pub accumulator: StateAccumulator,
    /// The batches of each committed block, for the payload owner: (author, seq, digest).
    pub committed_batches: mpsc::Sender<Vec<(PublicKey, u64, Hash32)>>,
    /// Who hears of each executed block.
    pub events: Publisher,
}

impl Pipeline {
    /// Starts the three stages under `supervisor`.
    pub fn spawn(
        self,
        supervisor: &mut Supervisor,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(4);
        let (done_tx, done_rx) = mpsc::channel::<Executed>(4);
        let start = self.shared.executed_tip().height + 1;
        supervisor.spawn(
            "fetch",
            fetch_stage(
                self.shared.clone(),
                self.batches.clone(),
                self.committed_batches,
                start,
                jobs_tx,
                shutdown,
            ),
        );
        let shared = self.shared.clone();
        let executor = self.executor.clone();
        let accumulator = self.accumulator;
        supervisor.spawn_thread("execute", move || {
            execute_stage(shared, executor, accumulator, jobs_rx, done_tx)
        })?;
        let shared = self.shared.clone();
        let events = self.events;
        supervisor.spawn_thread("commit", move || commit_stage(shared, events, done_rx))?;
        Ok(())
    }
}

async fn fetch_stage(
    shared: Arc<Shared>,
    batches: Arc<Batches>,
    committed_batches: mpsc::Sender<Vec<(PublicKey, u64, Hash32)>>,
    mut height: u64,
    jobs: mpsc::Sender<Job>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), TaskError> {
    let mut committed = shared.committed.subscribe();
    let mut filter = DuplicateFilter::new();
    // When this stage last caught up: the end of its last wait for a commit. Blocks met
    // since, one after another (a backlog, or timestamps ahead of this clock), wait for
    // pushes together, until one grace after then at most: never one grace each.
    let mut caught_up = tokio::time::Instant::now();
    loop {
        // Wait until consensus has committed `height`.
        let already = *committed.borrow() >= height;
        while *committed.borrow_and_update() < height {
            tokio::select! {
                changed = committed.changed() => if changed.is_err() {
                    return Err(TaskError::closed("the committed height"));
                },
                _ = shutdown.changed() => return Ok(()),
            }
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        if !already {
            caught_up = tokio::time::Instant::now();
        }
        let Some((block_hash, bytes)) = shared.storage.block_at(height)? else {
            return Err(TaskError::Invariant(format!(
                "committed block {height} is missing from storage"
            )));
        };
        let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| {
            TaskError::Invariant(format!("committed block {height} does not decode: {e}"))
        })?;
        let author = batches.validator_key(block.author);
        let mut txs = Vec::new();
        let mut hashes = Vec::new();
        let mut sequences = Vec::with_capacity(block.payload.len());
        let mut unstored = Vec::new();
        // A validator outside the quorum that ordered the block may still be receiving or
        // checking some of its batches' pushes (a few milliseconds at the median).
        let push_until = push_deadline(block.timestamp_ms).min(caught_up + PUSH_GRACE);
        for digest in &block.payload {
            let mut delay = Duration::from_millis(50);
            let batch = loop {
                if let Some(found) = batches.get_pushed(digest, author, push_until).await {
                    break found;
                }
                warn!(height, batch = %digest.short(), "batch of a committed block unavailable; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            };
            let (batch, source) = batch;
            sequences.push((batch.author, batch.seq, *digest));
            if !matches!(source, Source::Disk) {
                unstored.push((*digest, batch.clone()));
            }
            metrics::counter!("ordo_node_committed_transactions_total")
                .increment(batch.body.len() as u64);
            if let BatchBody::Transactions(list) = &batch.body {
                for tx in list {
                    txs.push(tx.clone());
                    hashes.push(tx.hash());
                }
            }
        }
        // Both reach RocksDB, so both run off the async workers: the batches are kept on
        // disk so that a restart, or a peer catching up, finds them here (written at once:
        // a write would block a worker for as long as another writer's fsync in the same
        // log group), and the duplicate filter reads the transaction index.
        let storage = shared.storage.clone();
        let stored = tokio::task::spawn_blocking(move || {
            if !unstored.is_empty() {
                let encoded: Vec<(Hash32, Vec<u8>)> = unstored
                    .iter()
                    .map(|(digest, batch)| (*digest, codec::encode(&**batch)))
                    .collect();
                if let Err(e) = storage.put_batches(&encoded) {
                    return (filter, Err(TaskError::Storage(e)));
                }
            }
            let keep = filter
                .admit(&storage, height, &hashes)
                .map(|keep| (keep, hashes))
                .map_err(TaskError::Storage);
            (filter, keep)
        })
        .await
        .map_err(|e| TaskError::Panicked(format!("storing the batches of block {height}: {e}")))?;
        let (back, kept) = stored;
        filter = back;
        let (keep, hashes) = kept?;
        if committed_batches.try_send(sequences).is_err() {
            // Costs nothing lasting: the next commit of the same authors says as much.
            metrics::counter!("ordo_node_offer_notices_dropped_total").increment(1);
        }
        let before = txs.len();
        let skipped: Vec<Hash32> = hashes
            .iter()
            .zip(&keep)
            .filter_map(|(hash, keep)| (!keep).then_some(*hash))
            .collect();
        let (txs, hashes): (Vec<SignedTransaction>, Vec<Hash32>) = txs
            .into_iter()
            .zip(hashes)
            .zip(keep)
            .filter_map(|(pair, keep)| keep.then_some(pair))
            .unzip();
        metrics::counter!("ordo_node_duplicate_transactions_total")
            .increment((before - txs.len()) as u64);
        let job = Job {
            height,
            block_hash,
            timestamp_ms: block.timestamp_ms,
            digests: block.payload.clone(),
            txs,
            hashes,
            skipped,
            fetched_at: Instant::now(),
        };
        if jobs.send(job).await.is_err() {
            return Err(TaskError::closed("the execute stage's input"));
        }
        height += 1;
    }
}

fn execute_stage(
    shared: Arc<Shared>,
    executor: Arc<ParallelExecutor>,
    mut accumulator: StateAccumulator,
    mut jobs: mpsc::Receiver<Job>,
    done: mpsc::Sender<Executed>,
) -> Result<(), TaskError> {
    // The executor runs a contract block's in-order loop on this thread (its engine and
    // every other block on its workers): bulk work, below consensus like the workers.
    ordo_types::lower_thread_priority();
    while let Some(job) = jobs.blocking_recv() {
        let started = Instant::now();
        metrics::histogram!("ordo_node_fetch_wait_seconds")
            .record(started.duration_since(job.fetched_at).as_secs_f64());
        let view = shared.storage.state_view();
        let ctx = BlockContext {
            height: job.height,
            timestamp_ms: job.timestamp_ms,
        };
        let output = executor
            .execute_block(&view, &ctx, &job.txs, &accumulator)
            .map_err(|e| TaskError::Execution(format!("block {}: {e}", job.height)))?;
        let transactions = index_outcomes(&job.hashes, &output.receipts);
        let commit = Arc::new(BlockCommit {
            height: job.height,
            block_hash: job.block_hash,
            state_writes: output
                .write_set
                .to_bytes()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
            transactions,
            accumulator: output.accumulator.clone(),
            skipped: job.skipped,
        });
        shared.storage.stage_executed(commit.clone())?;
        accumulator = output.accumulator;
        metrics::histogram!("ordo_node_execute_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ordo_node_reexecutions_total").increment(output.stats.reexecutions);
        let executed = Executed {
            fetched_at: job.fetched_at,
            commit,
            timestamp_ms: job.timestamp_ms,
            digests: job.digests,
            txs: job.txs.len(),
        };
        if done.blocking_send(executed).is_err() {
            return Err(TaskError::closed("the commit stage's input"));
        }
    }
    // The fetch stage ended (a shutdown, or its failure, which the supervisor has).
    Ok(())
}

/// The transaction index entries of an executed block: every transaction in it, whatever
/// its status. None was ordered in the duplicate rule's window below (the filter let
/// through no such hash); an entry replaces only a receipt from before that window.
pub(crate) fn index_outcomes(hashes: &[Hash32], receipts: &[Receipt]) -> Vec<TxOutcome> {
    hashes
        .iter()
        .zip(receipts)
        .map(|(&hash, r)| TxOutcome {
            hash,
            status: status_code(&r.status),
            receipt: codec::encode::<Receipt>(r),
        })
        .collect()
}

/// Starts the snapshot of the state after `height`, here, before the next block is
/// written, so that it is of exactly that height on every validator. This stage waits
/// only for RocksDB's checkpoint (a memtable flush and hard links); the chunks are
/// written on a thread of their own, which logs how it ends. A snapshot that cannot be
/// taken is logged and counted, never fatal: the validator runs on without it.
fn take_snapshot(storage: &ordo_storage::Storage, height: u64) {
    let started = Instant::now();
    match storage.start_snapshot_at(height) {
        Ok(Some(job)) => {
            info!(
                height,
                stalled_ms = started.elapsed().as_millis() as u64,
                "snapshot started"
            );
            metrics::histogram!("ordo_node_snapshot_stall_seconds")
                .record(started.elapsed().as_secs_f64());
            job.detach();
        }
        Ok(None) => debug!(height, "no snapshot taken (one exists or is being written)"),
        Err(e) => {
            metrics::counter!("ordo_storage_snapshot_failures_total").increment(1);
            warn!(height, error = %e, "cannot start a snapshot");
        }
    }
}

fn commit_stage(
    shared: Arc<Shared>,
    events: Publisher,
    mut done: mpsc::Receiver<Executed>,
) -> Result<(), TaskError> {
    while let Some(executed) = done.blocking_recv() {
        let started = Instant::now();
        let commit = &executed.commit;
        let root = shared.storage.commit_executed(commit)?;
        let height = commit.height;
        if shared.storage.snapshot_due(height) {
            take_snapshot(&shared.storage, height);
        }
        shared.executed.send_replace(ExecutedTip {
            height,
            state_root: root,
            timestamp_ms: executed.timestamp_ms,
        });
        events.publish(&ExecutedBlock {
            height,
            block: commit.block_hash,
            state_root: root,
            timestamp_ms: executed.timestamp_ms,
            transactions: Arc::new(commit.transactions.iter().map(|t| t.hash).collect()),
            digests: Arc::new(executed.digests),
        })?;
        metrics::histogram!("ordo_node_commit_seconds").record(started.elapsed().as_secs_f64());
        // The execution stage's share of a transaction's latency (README, latency by stage).
        metrics::histogram!("ordo_node_block_execution_latency_seconds")
            .record(executed.fetched_at.elapsed().as_secs_f64());
        metrics::gauge!("ordo_node_executed_height").set(height as f64);
        metrics::counter!("ordo_node_executed_transactions_total").increment(executed.txs as u64);
        metrics::counter!("ordo_node_executed_blocks_total").increment(1);
        if executed.txs > 0 {
            debug!(height, txs = executed.txs, root = %root.short(), "executed");
        }
        if height % 1000 == 0 {
            info!(height, root = %root.short(), "executed");
        }
    }
    Ok(())
}
