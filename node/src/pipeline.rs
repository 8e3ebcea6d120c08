//! The execution pipeline: committed blocks in height order through three stages, each
//! working on its block while the next stage finishes the previous one.
//!
//! ```text
//! committed height (watch) ─▶ fetch: block from RocksDB, its batches (memory, disk or
//!                             peers, verified once), duplicates dropped (transaction
//!                             index, and the blocks fetched but not yet written)
//!                          ─▶ execute: ParallelExecutor on the latest state (staged
//!                             overlay included), stage the results
//!                          ─▶ commit: one atomic RocksDB write batch, wake RPC waiters,
//!                             announce the state root
//! ```
//!
//! Channels between stages are bounded (a few blocks), so memory stays flat when
//! execution falls behind; the RPC then refuses ingress (see [`crate::shared::Shared::overloaded`]).
//! Consensus is never waited on: it only raises the committed height.
//!
//! Invariants: heights are executed one after another, starting after the last executed
//! height in storage, so a restarted node first executes the committed blocks it had not.
//! Which transactions execute depends on the committed chain alone: a transaction whose
//! hash a lower height, or an earlier place in its own block, included (executed and
//! indexed, whatever its status) is dropped before execution (see [`crate::dedup`]). So a
//! restart changes nothing, every executed transaction has exactly one index entry (its
//! first receipt), and every validator reaches the same state.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_execution::{BlockContext, Executor, ParallelExecutor, Receipt, TxStatus};
use ordo_network::{BatchBody, NetworkHandle};
use ordo_storage::{BlockCommit, TxOutcome};
use ordo_types::{codec, Hash32, SignedTransaction, StateAccumulator};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::batches::{Batches, Source};
use crate::dedup::DuplicateFilter;
use crate::roots::Verdict;
use crate::shared::{ExecutedTip, Shared};
use crate::wire::NodeMessage;

/// One block ready to execute.
struct Job {
    height: u64,
    block_hash: Hash32,
    timestamp_ms: u64,
    digests: Vec<Hash32>,
    txs: Vec<SignedTransaction>,
    /// `txs[i]`'s hash, computed once when the block was gathered.
    hashes: Vec<Hash32>,
    fetched_at: Instant,
}

struct Executed {
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
        _ => "unknown",
    }
}

pub struct Pipeline {
    pub shared: Arc<Shared>,
    pub batches: Arc<Batches>,
    pub network: NetworkHandle,
    pub executor: Arc<ParallelExecutor>,
    /// The accumulator of the last executed state.
    pub accumulator: StateAccumulator,
}

pub struct PipelineHandles {
    pub fetch: tokio::task::JoinHandle<()>,
    pub execute: std::thread::JoinHandle<()>,
    pub commit: std::thread::JoinHandle<()>,
}

impl Pipeline {
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> std::io::Result<PipelineHandles> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(4);
        let (done_tx, done_rx) = mpsc::channel::<Executed>(4);
        let start = self.shared.executed_tip().height + 1;
        let fetch = tokio::spawn(fetch_stage(
            self.shared.clone(),
            self.batches.clone(),
            start,
            jobs_tx,
            shutdown,
        ));
        let shared = self.shared.clone();
        let executor = self.executor.clone();
        let accumulator = self.accumulator;
        let execute = std::thread::Builder::new()
            .name("ordo-execute".into())
            .spawn(move || execute_stage(shared, executor, accumulator, jobs_rx, done_tx))?;
        let shared = self.shared.clone();
        let batches = self.batches.clone();
        let network = self.network.clone();
        let commit = std::thread::Builder::new()
            .name("ordo-commit".into())
            .spawn(move || commit_stage(shared, batches, network, done_rx))?;
        Ok(PipelineHandles {
            fetch,
            execute,
            commit,
        })
    }
}

async fn fetch_stage(
    shared: Arc<Shared>,
    batches: Arc<Batches>,
    mut height: u64,
    jobs: mpsc::Sender<Job>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut committed = shared.committed.subscribe();
    let mut filter = DuplicateFilter::new();
    loop {
        // Wait until consensus has committed `height`.
        while *committed.borrow_and_update() < height {
            tokio::select! {
                changed = committed.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        if *shutdown.borrow() || shared.fatal.lock().is_some() {
            return;
        }
        let block = match shared.storage.block_at(height) {
            Ok(Some((hash, bytes))) => match codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes) {
                Ok(block) => (hash, block),
                Err(e) => {
                    shared.set_fatal(format!("committed block {height} does not decode: {e}"));
                    return;
                }
            },
            Ok(None) => {
                shared.set_fatal(format!("committed block {height} is missing from storage"));
                return;
            }
            Err(e) => {
                shared.set_fatal(format!("reading committed block {height}: {e}"));
                return;
            }
        };
        let (block_hash, block) = block;
        let author = batches.validator_key(block.author);
        let mut txs = Vec::new();
        let mut hashes = Vec::new();
        let mut sequences = Vec::with_capacity(block.payload.len());
        let mut unstored = Vec::new();
        for digest in &block.payload {
            let mut delay = Duration::from_millis(50);
            let batch = loop {
                if let Some(found) = batches.get(digest, author).await {
                    break found;
                }
                warn!(height, batch = %digest.short(), "batch of a committed block unavailable; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
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
                    return (
                        filter,
                        Err(format!("storing the batches of block {height}: {e}")),
                    );
                }
            }
            let keep = filter
                .admit(&storage, height, &hashes)
                .map(|keep| (keep, hashes))
                .map_err(|e| format!("reading the transaction index for block {height}: {e}"));
            (filter, keep)
        })
        .await;
        let (keep, hashes) = match stored {
            Ok((back, Ok(kept))) => {
                filter = back;
                kept
            }
            Ok((_, Err(e))) => {
                shared.set_fatal(e);
                return;
            }
            Err(e) => {
                shared.set_fatal(format!("fetching block {height}: {e}"));
                return;
            }
        };
        batches.committed(sequences);
        let before = txs.len();
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
            fetched_at: Instant::now(),
        };
        if jobs.send(job).await.is_err() {
            return;
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
) {
    while let Some(job) = jobs.blocking_recv() {
        let started = Instant::now();
        metrics::histogram!("ordo_node_fetch_wait_seconds")
            .record(started.duration_since(job.fetched_at).as_secs_f64());
        let view = shared.storage.state_view();
        let ctx = BlockContext {
            height: job.height,
            timestamp_ms: job.timestamp_ms,
        };
        let output = match executor.execute_block(&view, &ctx, &job.txs, &accumulator) {
            Ok(o) => o,
            Err(e) => {
                shared.set_fatal(format!("executing block {}: {e}", job.height));
                return;
            }
        };
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
        });
        if let Err(e) = shared.storage.stage_executed(commit.clone()) {
            shared.set_fatal(format!("staging block {}: {e}", job.height));
            return;
        }
        accumulator = output.accumulator;
        metrics::histogram!("ordo_node_execute_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("ordo_node_reexecutions_total").increment(output.stats.reexecutions);
        let executed = Executed {
            commit,
            timestamp_ms: job.timestamp_ms,
            digests: job.digests,
            txs: job.txs.len(),
        };
        if done.blocking_send(executed).is_err() {
            return;
        }
    }
}

/// The transaction index entries of an executed block: every transaction in it, whatever
/// its status. None is in the index yet (the duplicate filter let through only hashes
/// that no earlier height included), so an entry never replaces an earlier receipt.
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

fn commit_stage(
    shared: Arc<Shared>,
    batches: Arc<Batches>,
    network: NetworkHandle,
    mut done: mpsc::Receiver<Executed>,
) {
    while let Some(executed) = done.blocking_recv() {
        let started = Instant::now();
        let commit = &executed.commit;
        let root = match shared.storage.commit_executed(commit) {
            Ok(root) => root,
            Err(e) => {
                shared.set_fatal(format!("writing block {}: {e}", commit.height));
                return;
            }
        };
        let height = commit.height;
        shared.executed.send_replace(ExecutedTip {
            height,
            state_root: root,
            timestamp_ms: executed.timestamp_ms,
        });
        {
            let mut pending = shared.pending.lock();
            for tx in &commit.transactions {
                pending.remove(&tx.hash);
            }
            if height % 256 == 0 {
                // Expired entries answer `expired` for ten minutes, then `unknown`.
                let horizon = executed.timestamp_ms.saturating_sub(600_000);
                pending.retain(|_, expiry| *expiry > horizon);
            }
        }
        shared.remember_block(height, commit.transactions.iter().map(|t| t.hash).collect());
        batches.store().remove(&executed.digests);
        network.broadcast_consensus(NodeMessage::StateRoot { height, root }.encode());
        let verdict = shared.roots.lock().local(height, root);
        on_verdict(&shared, verdict);
        metrics::histogram!("ordo_node_commit_seconds").record(started.elapsed().as_secs_f64());
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
}

/// Acts on what the state-root tracker found.
pub fn on_verdict(shared: &Shared, verdict: Verdict) {
    match verdict {
        Verdict::Diverged {
            height,
            ours,
            theirs,
        } => {
            metrics::counter!("ordo_node_state_divergence_total").increment(1);
            if !shared.stop_voting.swap(true, Ordering::Relaxed) {
                error!(
                    height,
                    ours = %ours,
                    theirs = %theirs,
                    "state root differs from a quorum of validators; no longer voting"
                );
            }
        }
        Verdict::Agreed { height } => {
            metrics::gauge!("ordo_node_state_root_agreed_height").set(height as f64);
        }
        Verdict::Open => {}
    }
}
