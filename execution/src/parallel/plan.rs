//! Whether a block is worth the Block-STM engine, judged from its declared keys.
//!
//! The declared keys give each transaction's possible predecessors (the previous declarer
//! of each key). With each transaction weighted by its rough cost, the longest chain of
//! predecessors bounds any schedule from below, and so the block's available parallelism
//! is `total / max(longest chain, total / threads)`. The engine is used when that
//! parallelism repays its bookkeeping: for cheap transactions (transfers, swaps, mints) it
//! does not, and they run through the in-order loop, while preparation and the write set
//! still use every worker.

use ordo_types::SignedTransaction;

use crate::prepare::{Prepared, NONE};
use crate::vm::cost_weight;

/// Blocks smaller than this run sequentially: starting workers costs more than they save.
const MIN_PARALLEL_TXS: usize = 64;
/// The engine's bookkeeping per transaction (reads through the multi-version memory,
/// publication, validation), in units of a plain transaction's execution (about 50 ns);
/// measured with exec-bench as the engine on one thread against the in-order loop.
const ENGINE_OVERHEAD: u64 = 5;
/// The engine must beat the in-order loop's estimate by this factor to be used.
const MARGIN: f64 = 0.8;

/// The block's total weight and its available parallelism on `threads` workers.
pub(crate) fn available_parallelism(
    txs: &[SignedTransaction],
    prep: &Prepared,
    threads: usize,
) -> (u64, f64) {
    let mut depth = vec![0u64; txs.len()];
    let mut total = 0u64;
    let mut longest = 0u64;
    for (j, (t, keys)) in txs.iter().zip(&prep.txs).enumerate() {
        let w = cost_weight(t);
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
        return (0, 1.0);
    }
    let bound = (longest as f64).max(total as f64 / threads as f64);
    (total, total as f64 / bound)
}

/// Whether the engine on `threads` workers is expected to beat the in-order loop.
pub(crate) fn worth_parallel(txs: &[SignedTransaction], prep: &Prepared, threads: usize) -> bool {
    if threads < 2 || txs.len() < MIN_PARALLEL_TXS {
        return false;
    }
    let (total, parallelism) = available_parallelism(txs, prep, threads);
    let engine = (total + ENGINE_OVERHEAD * txs.len() as u64) as f64 / parallelism;
    engine < MARGIN * total as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::prepare;
    use crate::workload::{Fixture, Workload};

    fn decide(workload: Workload, accounts: usize, threads: usize) -> bool {
        let mut fixture = Fixture::new(workload, accounts, 3).unwrap();
        let txs = fixture.block(2_000);
        let prep = prepare(&fixture.state, &txs, false).unwrap();
        worth_parallel(&txs, &prep, threads)
    }

    #[test]
    fn heavy_independent_blocks_use_the_engine() {
        let heavy = Workload::Compute { iterations: 200 };
        assert!(decide(heavy, 100, 2));
        assert!(decide(heavy, 10_000, 2));
        assert!(!decide(heavy, 100, 1), "one thread never uses the engine");
    }

    #[test]
    fn cheap_or_serial_blocks_use_the_loop() {
        assert!(!decide(Workload::Transfer, 2, 2));
        assert!(!decide(Workload::Transfer, 10_000, 2));
        assert!(!decide(Workload::Swap, 2, 8));
        // Two senders of heavy calls form two chains: parallel, but not on one thread.
        assert!(decide(Workload::Compute { iterations: 200 }, 2, 2));
    }
}
