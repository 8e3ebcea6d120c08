//! The Ordo validator: configuration, genesis, and the process that wires consensus,
//! network, execution and storage together. Nothing here is client or tooling code: the
//! `ordo` binary, the RPC's HTTP client and the local-network generator live in ordo-cli,
//! and the fuzz bodies are compiled only for tests and the `fuzz` feature.
//!
//! Public API:
//! - [`NodeConfig`]: a validator's TOML config ([`NodeConfig::load`] names a bad field).
//! - [`GenesisFile`]: chain id, validators, initial state ([`GenesisFile::load`]).
//! - [`run`] / [`run_until`] / [`start`]: a validator process until SIGTERM / Ctrl-C;
//!   [`RunningNode::shutdown`] stops a started one.
//! - [`NodeError`]: what can go wrong.

mod admission;
mod batches;
mod block_sync;
mod bulk;
#[cfg(feature = "byzantine")]
mod byzantine;
pub mod config;
mod dedup;
mod driver;
mod driver_input;
mod error;
mod events;
#[cfg(any(test, feature = "fuzz"))]
#[doc(hidden)]
pub mod fuzz_targets;
pub mod genesis;
mod node;
mod payload;
mod pipeline;
mod pruner;
mod roots;
pub mod rpc;
mod shared;
pub mod snapshots;
mod statesync;
mod supervisor;
mod tx_index;
pub mod wire;

pub use config::NodeConfig;
pub use error::{NodeError, Result};
pub use genesis::GenesisFile;
pub use node::{run, run_until, start, RunningNode};
pub use pipeline::status_name;
