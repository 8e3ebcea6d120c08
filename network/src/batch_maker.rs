//! The batch maker: cuts the mempool into batches by size, count or age.
//!
//! Invariant: a batch is cut as soon as the mempool holds [`BatchLimits`]' `max_bytes` or
//! `max_txs` (the dissemination config's `max_batch_bytes` and `max_batch_txs`), or its
//! oldest transaction has waited `max_delay`; never sooner and, while batches can be
//! disseminated, never much later. Expired transactions met on the way are reported, not
//! batched.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use ordo_types::Hash32;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::batch::{BatchBody, BatchInfo};
use crate::error::Error;
use crate::mempool::Mempool;

/// Room kept for the batch's own fields (author, sequence, length prefixes).
const BATCH_OVERHEAD: usize = 128;

/// Where cut batches go: the dissemination layer, which spawns the maker. A trait, so that
/// the maker does not depend on the module that wires it.
pub(crate) trait BatchSink: Send + Sync + 'static {
    /// Sends one batch on its way. The maker cuts no further batch until this returns, so a
    /// sink that waits (too many batches without a proof) is the maker's back-pressure.
    fn disseminate(&self, body: BatchBody)
        -> impl Future<Output = Result<BatchInfo, Error>> + Send;
}

/// When a batch is cut: by its transactions' encoded bytes, their count, or the age of the
/// oldest; and how much EVM gas it may hold.
pub(crate) struct BatchLimits {
    pub max_bytes: usize,
    pub max_txs: usize,
    /// EVM gas limits a batch holds at most; not a reason to cut one sooner.
    pub max_gas: u64,
    pub max_delay: Duration,
}

pub(crate) struct BatchMaker<S> {
    pub sink: S,
    pub limits: BatchLimits,
    pub mempool: Arc<Mempool>,
    pub expired: mpsc::Sender<Vec<Hash32>>,
}

impl<S: BatchSink> BatchMaker<S> {
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let limits = &self.limits;
        self.mempool.wake_at(
            limits.max_txs,
            limits.max_bytes.saturating_sub(BATCH_OVERHEAD),
        );
        loop {
            loop {
                let (count, bytes, oldest) = self.mempool.status();
                if bytes + BATCH_OVERHEAD >= limits.max_bytes || count >= limits.max_txs {
                    break;
                }
                let Some(oldest) = oldest else {
                    tokio::select! {
                        _ = self.mempool.arrival() => continue,
                        _ = shutdown.changed() => return,
                    }
                };
                let due = tokio::time::Instant::from_std(oldest + limits.max_delay);
                if due <= tokio::time::Instant::now() {
                    break;
                }
                tokio::select! {
                    _ = self.mempool.arrival() => {},
                    _ = tokio::time::sleep_until(due) => {},
                    _ = shutdown.changed() => return,
                }
            }
            let taken = self.mempool.take(
                limits.max_bytes.saturating_sub(BATCH_OVERHEAD),
                limits.max_txs,
                limits.max_gas,
                ordo_types::now_ms(),
            );
            if !taken.expired.is_empty() && self.expired.try_send(taken.expired).is_err() {
                counter!("ordo_network_expired_reports_dropped_total").increment(1);
            }
            if taken.transactions.is_empty() {
                continue;
            }
            tokio::select! {
                r = self.sink.disseminate(BatchBody::Transactions(taken.transactions)) => {
                    if let Err(e) = r {
                        warn!(error = %e, "batch not disseminated");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
