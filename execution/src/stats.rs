//! How a block was executed: which path ran, how much work was repeated, and where the
//! time went.
//!
//! Invariant: nothing here decides a block's results. Runs that agree on every receipt
//! and change may report different figures, so these are never compared for determinism
//! and never reach storage or consensus; they feed metrics and benchmarks only.

/// How a block was executed; never part of the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionStats {
    /// Whether transactions ran on the parallel engine (false: sequential path).
    pub parallel: bool,
    /// Executions beyond each transaction's first complete one (failed validations).
    pub reexecutions: u64,
    /// Executions stopped at a read of a value not yet written (dependency waits).
    pub suspensions: u64,
    pub phases: PhaseTimes,
}

/// Where a block's execution time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Sender addresses and declared keys.
    pub declare: std::time::Duration,
    /// Interning keys and linking each key's declarers.
    pub intern: std::time::Duration,
    /// Reading and decoding the keys' values before the block.
    pub load: std::time::Duration,
    /// Running the transactions (engine or in-order loop).
    pub execute: std::time::Duration,
    /// Building and sorting the write set.
    pub finalize: std::time::Duration,
}
