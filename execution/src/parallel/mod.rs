//! The parallel executor: a dedicated rayon pool running block preparation, the Block-STM
//! engine ([`engine`]) and the state-root update.
//!
//! Before running the engine it estimates, from the keys transactions declare, how much
//! parallelism the block offers ([`plan`]); a block too small or too contended to gain
//! runs through the sequential loop instead. Both paths compute the sequential result, so
//! the choice changes speed only.

mod engine;
mod plan;

use std::time::Instant;

use ordo_types::{SignedTransaction, StateAccumulator, StateView};
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{ExecutionError, Result};
use crate::executor::Executor;
use crate::output::{finalize, BlockOutput, ExecutedBlock};
use crate::prepare::prepare;
use crate::sequential::run_in_order;
use crate::stats::ExecutionStats;
use crate::vm::{BlockContext, ChainConfig};

/// When to use the Block-STM engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Decide per block from its declared keys.
    Auto,
    /// Always the engine (for tests and measurements).
    AlwaysParallel,
    /// Never the engine; preparation and the root still use the pool.
    AlwaysSequential,
}

/// Tuning of the parallel executor; none of it changes results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParallelOptions {
    /// Worker threads of the dedicated pool.
    pub threads: usize,
    pub strategy: Strategy,
    /// Treat every transaction's declared keys as estimated writes until it executes, so
    /// that readers wait instead of reading stale values and re-executing.
    pub preseed_estimates: bool,
}

impl Default for ParallelOptions {
    /// One worker per core.
    fn default() -> Self {
        ParallelOptions::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl ParallelOptions {
    /// `threads` workers, automatic strategy, pre-seeded estimates.
    pub fn new(threads: usize) -> Self {
        ParallelOptions {
            threads: threads.max(1),
            strategy: Strategy::Auto,
            preseed_estimates: true,
        }
    }
}

/// Executes blocks on its own pool of worker threads.
pub struct ParallelExecutor {
    config: ChainConfig,
    options: ParallelOptions,
    pool: ThreadPool,
    /// One block at a time: the engine occupies every pool thread until its block is
    /// committed, so two blocks sharing the pool could each hold a thread the other needs.
    one_block: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for ParallelExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelExecutor")
            .field("options", &self.options)
            .finish()
    }
}

impl ParallelExecutor {
    pub fn new(config: ChainConfig, options: ParallelOptions) -> Result<Self> {
        let pool = ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .thread_name(|i| format!("ordo-exec-{i}"))
            // Execution is bulk work: it must never delay a vote (see ordo_types::priority).
            .start_handler(|_| ordo_types::lower_thread_priority())
            .build()
            .map_err(|e| ExecutionError::ThreadPool(e.to_string()))?;
        Ok(ParallelExecutor {
            config,
            options,
            pool,
            one_block: parking_lot::Mutex::new(()),
        })
    }

    pub fn options(&self) -> &ParallelOptions {
        &self.options
    }

    fn run(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock> {
        let started = Instant::now();
        // One worker gains nothing from splitting work: the sequential executor's own path.
        let split = self.options.threads > 1;
        let prep = prepare(view, txs, split)?;
        let use_engine = match self.options.strategy {
            Strategy::AlwaysParallel => true,
            Strategy::AlwaysSequential => false,
            Strategy::Auto => plan::worth_parallel(txs, &prep, self.options.threads),
        };
        let mut stats = ExecutionStats {
            parallel: use_engine,
            ..ExecutionStats::default()
        };
        stats.phases = prep.phases;
        let executing = Instant::now();
        let run = if use_engine {
            let engine = engine::Engine::new(
                &self.config,
                block,
                txs,
                &prep,
                self.options.preseed_estimates,
            );
            rayon::broadcast(|_| engine.work());
            stats.reexecutions = engine.reexecutions();
            stats.suspensions = engine.suspensions();
            engine.into_run()
        } else {
            run_in_order(&self.config, block, txs, &prep)
        };
        stats.phases.execute = executing.elapsed();
        let executed = finalize(view, &self.config, &prep, run, stats, split)?;
        let mode = if use_engine { "parallel" } else { "sequential" };
        metrics::counter!("ordo_execution_blocks_total", "mode" => mode).increment(1);
        metrics::counter!("ordo_execution_transactions_total").increment(txs.len() as u64);
        metrics::counter!("ordo_execution_reexecutions_total").increment(stats.reexecutions);
        metrics::histogram!("ordo_execution_block_seconds").record(started.elapsed());
        tracing::debug!(
            height = block.height,
            txs = txs.len(),
            mode,
            reexecutions = stats.reexecutions,
            suspensions = stats.suspensions,
            "executed block"
        );
        Ok(executed)
    }
}

impl Executor for ParallelExecutor {
    fn config(&self) -> &ChainConfig {
        &self.config
    }

    fn execute_transactions(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock> {
        let _one_block = self.one_block.lock();
        self.pool.install(|| self.run(view, block, txs))
    }

    fn execute_block(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
        parent: &StateAccumulator,
    ) -> Result<BlockOutput> {
        let _one_block = self.one_block.lock();
        self.pool.install(|| {
            Ok(self
                .run(view, block, txs)?
                .into_output(parent, self.options.threads > 1))
        })
    }
}
