//! The batch maker: cuts the mempool into batches by size, count or age.
//!
//! Invariant: a batch is cut as soon as the mempool holds `max_batch_bytes` or
//! `max_batch_txs`, or its oldest transaction has waited `max_batch_delay`; never sooner
//! and, while batches can be disseminated, never much later. Expired transactions met on
//! the way are reported, not batched.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::counter;
use ordo_types::Hash32;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::batch::BatchBody;
use crate::dissemination::Dissemination;
use crate::mempool::Mempool;

/// Room kept for the batch's own fields (author, sequence, length prefixes).
const BATCH_OVERHEAD: usize = 128;

pub(crate) struct BatchMaker {
    pub dissemination: Dissemination,
    pub mempool: Arc<Mempool>,
    pub expired: mpsc::Sender<Vec<Hash32>>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl BatchMaker {
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let config = self.dissemination.config().clone();
        loop {
            loop {
                let (count, bytes, oldest) = self.mempool.status();
                if bytes + BATCH_OVERHEAD >= config.max_batch_bytes || count >= config.max_batch_txs
                {
                    break;
                }
                let Some(oldest) = oldest else {
                    tokio::select! {
                        _ = self.mempool.arrival() => continue,
                        _ = shutdown.changed() => return,
                    }
                };
                let due = tokio::time::Instant::from_std(oldest + config.max_batch_delay);
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
                config.max_batch_bytes.saturating_sub(BATCH_OVERHEAD),
                config.max_batch_txs,
                now_ms(),
            );
            if !taken.expired.is_empty() && self.expired.try_send(taken.expired).is_err() {
                counter!("ordo_network_expired_reports_dropped_total").increment(1);
            }
            if taken.transactions.is_empty() {
                continue;
            }
            tokio::select! {
                r = self.dissemination.disseminate(BatchBody::Transactions(taken.transactions)) => {
                    if let Err(e) = r {
                        warn!(error = %e, "batch not disseminated");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
