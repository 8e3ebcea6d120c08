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
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::dynamic::{self, engine::Engine as DynamicEngine};
use crate::error::{ExecutionError, Result};
use crate::executor::Executor;
use crate::output::{finalize, BlockOutput, ExecutedBlock};
use crate::prepare::prepare;
use crate::sequential::run_in_order;
use crate::state::StateKey;
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
    /// Which path pays on contract blocks here (see [`ContractPace`]).
    contract_pace: parking_lot::Mutex<ContractPace>,
}

/// How fast each path ran contract blocks on this machine, per transaction.
///
/// Whether the run-time-keyed engine beats the in-order loop depends on the machine (its
/// cores, caches and allocator) and the workload, not only on the block, so the executor
/// measures: it keeps a moving average of each path's time per transaction, runs the
/// faster one, and every [`EXPLORE_EVERY`] contract blocks runs the other for
/// [`EXPLORE_RUN`] blocks so that a change in the workload is noticed. Both paths compute
/// the same result, so the choice changes speed only, and validators may choose
/// differently.
///
/// The first block after a switch is not counted: a path that has not run for a while
/// starts on cold caches and on allocator pages the system has taken back. Counted, the
/// in-order loop's rare runs looked slower than it is, and the executor kept running the
/// engine where it was slower (exec-bench `nft` at 2 to 100 collections: 0.83 to 0.90x).
/// A path's average last counted more than [`STALE_AFTER`] blocks ago is replaced by its
/// next counted block rather than moved by it: the workload may have changed since. A
/// return from an exploration finds its average fresh, and moves it as usual (replaced,
/// one outlier block there handed the slower path the next thirty blocks).
///
/// A change of workload shows as the running path's time rising far above its average
/// ([`PACE_SHIFT`]): the other path is tried at once rather than at its next turn. Without
/// that, a path judged on an old workload could keep losing for up to [`EXPLORE_EVERY`]
/// blocks (exec-bench `nft` at 2 collections right after `amm`: the engine kept running
/// at 2.3 times the loop's time per transaction, 0.95x for the row).
#[derive(Debug, Default, Clone, Copy)]
struct ContractPace {
    engine_ns: Option<f64>,
    in_order_ns: Option<f64>,
    blocks: u64,
    /// The path of the last block, and how many blocks in a row took it.
    last: Option<bool>,
    streak: u32,
    /// A path being tried (the engine: `true`), and for how many more blocks.
    exploring: Option<(bool, u64)>,
    /// The block each path was last counted in.
    engine_at: u64,
    in_order_at: u64,
}

/// Every this many contract blocks, the path that is currently slower runs again ...
const EXPLORE_EVERY: u64 = 32;
/// ... for this many blocks, the first of which warms it up.
const EXPLORE_RUN: u64 = 2;
/// Weight of the newest block in each path's moving average.
const PACE_WEIGHT: f64 = 0.25;
/// A block of the running path this many times slower than its average is a change of
/// workload, not noise (blocks of one workload vary by a few tens of per cent).
const PACE_SHIFT: f64 = 1.5;
/// A path's average older than this many blocks is stale: longer than an exploration
/// and the uncounted block after it.
const STALE_AFTER: u64 = EXPLORE_RUN + 2;

impl ContractPace {
    fn use_engine(&mut self) -> bool {
        self.blocks += 1;
        let engine = match (self.engine_ns, self.in_order_ns) {
            (None, _) => true,
            (_, None) => false,
            (Some(engine), Some(in_order)) => {
                let faster = engine < in_order;
                if self.exploring.is_none() && self.blocks % EXPLORE_EVERY == 0 {
                    self.exploring = Some((!faster, EXPLORE_RUN));
                }
                match self.exploring {
                    Some((path, left)) => {
                        self.exploring = (left > 1).then_some((path, left - 1));
                        path
                    }
                    None => faster,
                }
            }
        };
        if self.last == Some(engine) {
            self.streak = self.streak.saturating_add(1);
        } else {
            (self.last, self.streak) = (Some(engine), 1);
        }
        engine
    }

    fn record(&mut self, engine: bool, ns_per_tx: f64) {
        if self.streak <= 1 {
            return;
        }
        let (slot, at) = if engine {
            (&mut self.engine_ns, &mut self.engine_at)
        } else {
            (&mut self.in_order_ns, &mut self.in_order_at)
        };
        let stale = self.blocks.saturating_sub(*at) > STALE_AFTER;
        *at = self.blocks;
        // Only a slowdown: the other path may now be the faster one. (A path that got
        // faster is still the one to run; and after one slow block, its usual blocks
        // read as much faster than the average that block raised.)
        let shifted = slot.is_some_and(|avg| !stale && ns_per_tx > avg * PACE_SHIFT);
        // A shifted block moves the average like any other: one slow block (a page fault
        // storm, another process) must not hand the other path the next 32 blocks; the
        // other path's fresh block decides.
        *slot = Some(match *slot {
            Some(avg) if !stale => avg + PACE_WEIGHT * (ns_per_tx - avg),
            _ => ns_per_tx,
        });
        if shifted && self.exploring.is_none() {
            self.exploring = Some((!engine, EXPLORE_RUN));
        }
    }
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
            contract_pace: parking_lot::Mutex::new(ContractPace::default()),
        })
    }

    pub fn options(&self) -> &ParallelOptions {
        &self.options
    }

    /// A block without contract transactions: every key declared up front.
    fn run_declared(
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

impl ParallelExecutor {
    /// Runs a block: a contract block on the calling thread, whose own in-order loop then
    /// runs where the sequential executor's would, freeing what it allocated on the thread
    /// that allocated it (run on a worker, it measured up to a tenth slower, exec-bench
    /// `nft`), and whose engine borrows the workers for its run and the block's end; any
    /// other block on the workers.
    fn run_here(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock> {
        if dynamic::has_contracts(txs) {
            return self.run_contracts(view, block, txs);
        }
        self.pool.install(|| self.run_declared(view, block, txs))
    }

    /// A block with contract transactions: keys found at run time ([`dynamic`]).
    fn run_contracts(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
    ) -> Result<ExecutedBlock> {
        let started = Instant::now();
        let use_engine = match self.options.strategy {
            Strategy::AlwaysParallel => true,
            Strategy::AlwaysSequential => false,
            // Below a few chunks per worker the engine's bookkeeping cannot pay; above,
            // whichever path has been faster here.
            Strategy::Auto => {
                self.options.threads > 1
                    && txs.len() >= 16 * self.options.threads
                    && self.contract_pace.lock().use_engine()
            }
        };
        let executed = if use_engine {
            // Each sender is a hash of a public key: on the pool, not ahead of it alone.
            let senders = self
                .pool
                .install(|| txs.par_iter().map(|t| t.sender_address()).collect());
            let gas = dynamic::within_block_gas(&self.config, txs);
            let engine = DynamicEngine::new(view, &self.config, block, txs, senders, gas);
            self.pool.broadcast(|_| engine.work());
            let executed = Instant::now();
            let sink = StateKey::Account(self.config.fee_sink);
            self.pool.install(|| -> Result<ExecutedBlock> {
                let run = engine.into_run(&sink)?;
                let mut stats = ExecutionStats {
                    parallel: true,
                    reexecutions: run.reexecutions,
                    ..ExecutionStats::default()
                };
                stats.phases.execute = executed.duration_since(started);
                dynamic::close(view, &self.config, run.outcome, stats, executed, true)
            })?
        } else {
            dynamic::run_in_order(view, &self.config, block, txs, ExecutionStats::default())?
        };
        if self.options.strategy == Strategy::Auto && txs.len() >= 16 * self.options.threads {
            let ns_per_tx = started.elapsed().as_nanos() as f64 / txs.len() as f64;
            self.contract_pace.lock().record(use_engine, ns_per_tx);
        }
        let mode = if use_engine { "parallel" } else { "sequential" };
        metrics::counter!("ordo_execution_blocks_total", "mode" => mode).increment(1);
        metrics::counter!("ordo_execution_transactions_total").increment(txs.len() as u64);
        metrics::counter!("ordo_execution_reexecutions_total")
            .increment(executed.stats.reexecutions);
        metrics::histogram!("ordo_execution_block_seconds").record(started.elapsed());
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
        self.run_here(view, block, txs)
    }

    fn execute_block(
        &self,
        view: &dyn StateView,
        block: &BlockContext,
        txs: &[SignedTransaction],
        parent: &StateAccumulator,
    ) -> Result<BlockOutput> {
        let _one_block = self.one_block.lock();
        let executed = self.run_here(view, block, txs)?;
        // The state root's hashing uses the workers whichever path ran.
        self.pool
            .install(|| Ok(executed.into_output(parent, self.options.threads > 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one block: asks the pace which path, and reports `ns` for whichever ran.
    fn block(pace: &mut ContractPace, engine_ns: f64, in_order_ns: f64) -> bool {
        let engine = pace.use_engine();
        pace.record(engine, if engine { engine_ns } else { in_order_ns });
        engine
    }

    #[test]
    fn contract_blocks_take_the_faster_path_and_sometimes_try_the_other() {
        let mut pace = ContractPace::default();
        // Unmeasured: the engine until a warm block of it is counted, then the loop.
        let first: Vec<bool> = (0..4).map(|_| block(&mut pace, 900.0, 600.0)).collect();
        assert_eq!(first, [true, true, false, false]);
        assert_eq!(
            (pace.engine_ns, pace.in_order_ns),
            (Some(900.0), Some(600.0))
        );
        let choices: Vec<bool> = (0..64).map(|_| block(&mut pace, 900.0, 600.0)).collect();
        let tries = choices.iter().filter(|&&engine| engine).count();
        assert_eq!(
            tries as u64,
            2 * EXPLORE_RUN,
            "the slower engine runs {EXPLORE_RUN} blocks in every {EXPLORE_EVERY}"
        );
        // The engine becomes faster: its warm runs move the average, and the choice flips.
        for _ in 0..(4 * EXPLORE_EVERY) {
            block(&mut pace, 300.0, 600.0);
        }
        assert!(pace.engine_ns.unwrap() < 600.0);
        let engine = (0..30).filter(|_| block(&mut pace, 300.0, 600.0)).count();
        assert!(engine >= 28);
    }

    /// The workload changes under a path judged faster: the other path is tried within a
    /// block and taken from then on, both ways, rather than at its next turn.
    #[test]
    fn a_change_of_workload_is_noticed_at_once() {
        let mut pace = ContractPace::default();
        // Past two explorations, and clear of the next one for the rest of the test.
        for _ in 0..(2 * EXPLORE_EVERY + 4) {
            block(&mut pace, 300.0, 600.0);
        }
        // Settled on the engine.
        assert!(block(&mut pace, 300.0, 600.0));
        // Now the engine is the slower one.
        let choices: Vec<bool> = (0..6).map(|_| block(&mut pace, 900.0, 400.0)).collect();
        assert_eq!(
            choices,
            [true, false, false, false, false, false],
            "{pace:?}"
        );
        // And back.
        let choices: Vec<bool> = (0..6).map(|_| block(&mut pace, 300.0, 900.0)).collect();
        assert_eq!(choices, [false, true, true, true, true, true], "{pace:?}");
    }

    /// One slow block of the faster path right after an exploration moves its average
    /// but does not hand the slower path the blocks up to the next exploration.
    #[test]
    fn one_outlier_after_an_exploration_does_not_switch_paths() {
        let mut pace = ContractPace::default();
        for _ in 0..(EXPLORE_EVERY + 2) {
            block(&mut pace, 300.0, 600.0);
        }
        // Back on the engine after the exploration at block 32: its first block (34) is
        // not counted, the next is an outlier.
        assert_eq!(pace.streak, 1, "{pace:?}");
        assert!(block(&mut pace, 1_000.0, 600.0));
        let engine = (0..8).filter(|_| block(&mut pace, 300.0, 600.0)).count();
        assert!(engine >= 6, "the engine ran {engine} of 8 blocks: {pace:?}");
    }

    #[test]
    fn the_first_block_after_a_switch_is_not_counted() {
        let mut pace = ContractPace::default();
        for _ in 0..4 {
            block(&mut pace, 500.0, 400.0);
        }
        // The loop runs from now on. Each time the engine is tried, its first (cold) block
        // is ten times slower; counted, it would make the engine look slower still, and
        // the loop's cold first block after each try would drag the loop's average up.
        for _ in 0..(4 * EXPLORE_EVERY) {
            let engine = pace.use_engine();
            let cold = pace.streak == 1;
            let ns = match (engine, cold) {
                (true, true) => 5_000.0,
                (true, false) => 500.0,
                (false, true) => 4_000.0,
                (false, false) => 400.0,
            };
            pace.record(engine, ns);
        }
        assert_eq!(pace.engine_ns, Some(500.0));
        assert_eq!(pace.in_order_ns, Some(400.0));
    }
}
