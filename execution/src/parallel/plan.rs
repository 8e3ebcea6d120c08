//! Whether a block is worth the Block-STM engine, judged from its declared keys.
//!
//! The declared keys give each transaction's possible predecessors (the previous declarer
//! of each key). With each transaction weighted by its rough cost, the longest chain of
//! predecessors bounds any schedule from below, and so the block's available parallelism
//! is `total / max(longest chain, total / threads)`. Cheap transactions need more of it to
//! repay the engine's bookkeeping than heavy ones.

use ordo_types::SignedTransaction;

use crate::prepare::{Prepared, NONE};
use crate::vm::cost_weight;

/// Blocks smaller than this run sequentially: starting workers costs more than they save.
const MIN_PARALLEL_TXS: usize = 64;
/// Average weight from which transactions count as heavy.
const HEAVY_WEIGHT: u64 = 8;
/// Parallelism a block of cheap transactions needs to use the engine.
const CHEAP_THRESHOLD: f64 = 1.8;
/// Parallelism a block of heavy transactions needs to use the engine.
const HEAVY_THRESHOLD: f64 = 1.25;

/// The block's available parallelism on `threads` workers (1.0: none).
pub(crate) fn available_parallelism(
    txs: &[SignedTransaction],
    prep: &Prepared,
    threads: usize,
) -> (f64, u64) {
    let mut depth = vec![0u64; txs.len()];
    let mut total = 0u64;
    let mut longest = 0u64;
    for (j, (t, keys)) in txs.iter().zip(&prep.txs).enumerate() {
        let w = u64::from(cost_weight(&t.tx));
        let ready = keys
            .prev
            .iter()
            .filter(|&&p| p != NONE)
            .map(|&p| depth[p as usize])
            .max()
            .unwrap_or(0);
        depth[j] = ready + w;
        longest = longest.max(depth[j]);
        total += w;
    }
    if total == 0 {
        return (1.0, 0);
    }
    let bound = (longest as f64).max(total as f64 / threads as f64);
    (total as f64 / bound, total / txs.len() as u64)
}

/// Whether to run `txs` on the engine with `threads` workers.
pub(crate) fn worth_parallel(txs: &[SignedTransaction], prep: &Prepared, threads: usize) -> bool {
    if threads < 2 || txs.len() < MIN_PARALLEL_TXS {
        return false;
    }
    let (parallelism, mean_weight) = available_parallelism(txs, prep, threads);
    let threshold = if mean_weight >= HEAVY_WEIGHT {
        HEAVY_THRESHOLD
    } else {
        CHEAP_THRESHOLD
    };
    parallelism >= threshold
}
