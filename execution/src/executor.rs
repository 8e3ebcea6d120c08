//! The contract every executor keeps with its caller.
//!
//! Invariant: for the same view, block and transactions, every implementation returns the
//! same receipts and write set, byte for byte; the state root is derived from the write set
//! and the parent accumulator alone, so it agrees too.

use ordo_types::{SignedTransaction, StateAccumulator, StateView};

use crate::error::Result;
use crate::output::{BlockOutput, ExecutedBlock};
use crate::vm::{BlockContext, ChainConfig};

/// Executes blocks. Every implementation gives the same results, byte for byte.
pub trait Executor: Send + Sync {
    fn config(&self) -> &ChainConfig;

    /// Runs `txs` in block order against the state in `view`: receipts and the sorted
    /// write set, without the state root.
    fn execute_transactions(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock>;

    /// Runs `txs` and updates `parent`, the accumulator of the state in `view`.
    fn execute_block(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
        parent: &StateAccumulator,
    ) -> Result<BlockOutput> {
        Ok(self
            .execute_transactions(view, block, txs)?
            .into_output(parent, false))
    }
}
