//! Ordo's execution: the state model, transaction semantics, and two executors that give
//! byte-identical results: a sequential reference and a parallel Block-STM engine.
//!
//! - [`Executor`]: executes a block's transactions against a [`StateView`]
//!   ([`Executor::execute_transactions`]) and updates the state root
//!   ([`Executor::execute_block`]). Implemented by [`SequentialExecutor`] and
//!   [`ParallelExecutor`] (a dedicated rayon pool of `threads` workers).
//! - [`StateKey`], [`StateValue`]: typed state and its canonical bytes at the storage
//!   boundary; [`WriteSet`], [`Receipt`], [`TxStatus`]: encodable results.
//! - [`ChainConfig`], [`BlockContext`]: what execution needs besides transactions.
//! - [`genesis()`]: the initial state from a [`GenesisSpec`], with its accumulator.
//! - [`MemoryState`]: an in-memory [`StateView`] for tests and benchmarks.
//! - [`workload`]: generators of benchmark and test blocks.
//!
//! Transactions arrive with verified signatures; the executors check chain id, expiry,
//! nonce and balances (see [`receipt`] for each failure's effect on state).
//!
//! Contract transactions (`Deploy`, `Call`) run in revm (`evm`): a block holding one goes
//! through `dynamic` instead, where every transaction reads state keys one at a time as it
//! runs (read and write sets found at run time), in order or on a second Block-STM engine
//! keyed by state key (`dynamic::engine`). Which path a block takes depends on its
//! transactions alone, so every executor takes the same one.
//!
//! How a block runs (both executors): *prepare* derives sender addresses, interns every
//! declared key (sender, recipient, pool, holding, collection, storage) to a dense index,
//! links each key's declarers in block order and loads the keys' values through the view;
//! *execute* runs the transactions over those values; *finalize* builds the sorted write
//! set and credits the block's fees to the fee sink as one commutative delta. The state
//! root is the parent's [`ordo_types::StateAccumulator`] updated from the write set only.
//! The parallel executor runs preparation and finalization on its pool, and execution on
//! the Block-STM engine when the block's declared-key graph offers enough parallelism to
//! repay the engine's bookkeeping (heavy transactions); otherwise (cheap or contended
//! blocks) through the same in-order loop as the sequential executor.
//!
//! Modules only use those below them, so that either executor can change without the
//! shared phases or the state model depending back on it. From the bottom: `error`,
//! `receipt`, `stats`, `worker`; `state`; `vm`, `evm`, `genesis`; `prepare`; `output`
//! (finalization); `dynamic` (contract blocks); `memory`, `executor`; `sequential` (the
//! in-order loop); `parallel`; `workload`. `allocator` stands apart: the binaries'
//! allocator options.
//!
//! Tests: `cargo test -p ordo-execution` runs the determinism property (parallel equals
//! sequential at 1, 2, 4 and 8 threads; `ORDO_DETERMINISM_CASES` for more cases) and the
//! 100-block stress test over two accounts (`ORDO_STRESS_BLOCKS`), and `tests/contracts.rs`
//! the same property over random contract blocks (against plain revm too). Benchmark:
//! `cargo run --release -p ordo-execution --bin exec-bench -- --quick [--json]`.
//!
//! [`StateView`]: ordo_types::StateView

pub mod allocator;
mod code;
pub mod contracts;
mod dynamic;
mod error;
mod evm;
mod executor;
pub mod genesis;
mod memory;
mod output;
mod parallel;
mod prepare;
pub mod receipt;
mod sequential;
mod state;
mod stats;
mod vm;
mod worker;
pub mod workload;

pub use error::{ExecutionError, Result};
pub use evm::{read_only_call, ReadOnlyCall, ReadOnlyRequest, MAX_TX_GAS};
pub use executor::Executor;
pub use genesis::{genesis, Genesis, GenesisSpec};
pub use memory::MemoryState;
pub use output::{apply_changes, BlockOutput, Change, ExecutedBlock, WriteSet};
pub use parallel::{ParallelExecutor, ParallelOptions, Strategy};
pub use prepare::MAX_BLOCK_TRANSACTIONS;
pub use receipt::{EvmHalt, EvmInvalid, EvmOutcome, Log, Receipt, TxStatus, MAX_RECEIPT_BYTES};
pub use sequential::SequentialExecutor;
pub use state::{Account, Code, Collection, KeyBytes, Pool, StateKey, StateValue, MAX_CODE_BYTES};
pub use stats::{ExecutionStats, PhaseTimes};
pub use vm::{
    compute, BlockContext, ChainConfig, COMPUTE_BASE_GAS, DEFAULT_BLOCK_GAS_LIMIT,
    MAX_COMPUTE_ITERATIONS, MINT_GAS, SWAP_GAS, TRANSFER_GAS,
};
