//! The sequential reference executor: transactions one after another, in block order.
//!
//! It is the definition of a block's result; the parallel executor is tested against it.

use ordo_types::{SignedTransaction, StateView};

use crate::error::Result;
use crate::executor::Executor;
use crate::output::{finalize, ExecutedBlock, InOrderRun};
use crate::prepare::{prepare, Prepared, NONE};
use crate::state::StateValue;
use crate::stats::ExecutionStats;
use crate::vm::{self, BlockContext, Blocked, ChainConfig, SlotReader, SLOTS};

/// Executes blocks on the calling thread.
#[derive(Debug, Clone)]
pub struct SequentialExecutor {
    config: ChainConfig,
}

impl SequentialExecutor {
    pub fn new(config: ChainConfig) -> Self {
        SequentialExecutor { config }
    }
}

impl Executor for SequentialExecutor {
    fn config(&self) -> &ChainConfig {
        &self.config
    }

    fn execute_transactions(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock> {
        if crate::dynamic::has_contracts(txs) {
            return crate::dynamic::run_in_order(
                view,
                &self.config,
                block,
                txs,
                ExecutionStats::default(),
            );
        }
        let prep = prepare(view, txs, false)?;
        let executing = std::time::Instant::now();
        let run = run_in_order(&self.config, block, txs, &prep);
        let mut stats = ExecutionStats {
            phases: prep.phases,
            ..ExecutionStats::default()
        };
        stats.phases.execute = executing.elapsed();
        finalize(view, &self.config, &prep, run, stats, false)
    }
}

/// Reads the current value of each slot's key straight from the running state.
struct Current<'a> {
    keys: &'a [u32; SLOTS],
    current: &'a [Option<StateValue>],
}

impl SlotReader for Current<'_> {
    fn read(&mut self, slot: usize) -> std::result::Result<Option<StateValue>, Blocked> {
        // An unused slot is never read: the VM reads only what the payload declares.
        Ok(match self.keys[slot] {
            NONE => None,
            k => self.current[k as usize].clone(),
        })
    }
}

/// Runs every transaction in block order over the prepared keys.
pub(crate) fn run_in_order(
    config: &ChainConfig,
    block: &BlockContext,
    txs: &[SignedTransaction],
    prep: &Prepared,
) -> InOrderRun {
    let mut current = prep.base.clone();
    let mut written = vec![None; current.len()];
    let mut tokens = Vec::new();
    let mut receipts = Vec::with_capacity(txs.len());
    for (t, keys) in txs.iter().zip(&prep.txs) {
        let mut reader = Current {
            keys: &keys.keys,
            current: &current,
        };
        let effects = match vm::execute(config, block, t, keys.sender, &mut reader) {
            Ok(e) => e,
            Err(Blocked) => unreachable!("the in-order reader never blocks"),
        };
        for (s, w) in effects.writes.iter().enumerate() {
            if let Some(value) = w {
                let k = keys.keys[s] as usize;
                current[k] = Some(value.clone());
                written[k] = Some(value.clone());
            }
        }
        tokens.extend(effects.token);
        receipts.push(effects.receipt);
    }
    InOrderRun {
        written,
        tokens,
        receipts,
    }
}
