//! The Ordo validator: configuration, genesis, local-network generation, and the process
//! that wires consensus, network, execution and storage together.
//!
//! Public API:
//! - [`NodeConfig`]: a validator's TOML config ([`NodeConfig::load`] names a bad field).
//! - [`GenesisFile`]: chain id, validators, initial state ([`GenesisFile::load`]).
//! - [`localnet::generate`] / [`localnet::open`]: the files of an N-validator network on
//!   127.0.0.1; [`localnet::bench_key`] gives the funded benchmark accounts' keys.
//! - [`run`] / [`run_until`] / [`start`]: a validator process until SIGTERM / Ctrl-C;
//!   [`RunningNode::shutdown`] stops a started one.
//! - [`http`]: a minimal blocking HTTP/1.1 client for the RPC (tests, CLI, load tools).
//! - [`NodeError`]: what can go wrong.

mod batches;
mod block_sync;
#[cfg(feature = "byzantine")]
mod byzantine;
pub mod config;
mod dedup;
mod driver;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod genesis;
pub mod http;
pub mod localnet;
mod node;
mod payload;
mod pipeline;
mod roots;
pub mod rpc;
mod shared;
mod supervisor;
mod tx_index;
pub mod wire;

pub use config::NodeConfig;
pub use error::{NodeError, Result};
pub use genesis::GenesisFile;
pub use node::{run, run_until, start, RunningNode};
pub use pipeline::status_name;
