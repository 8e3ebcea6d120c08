//! The client side of Ordo, kept out of the validator library: what the `ordo` binary
//! (this crate's `src/main.rs`), the testnet tools and the process-level tests share.
//!
//! Public API:
//! - [`dev_accounts`]: the standard Ethereum development accounts a local testnet funds.
//! - [`http`]: a minimal blocking HTTP/1.1 client for the RPC (CLI, load tools, tests).
//! - [`localnet::generate`] / [`localnet::open`]: the files of an N-validator network on
//!   127.0.0.1; [`localnet::bench_key`] gives the funded benchmark accounts' keys.
//!
//! The validator library (ordo-node) never depends on this crate; the binary's `ordo run`
//! only loads a config and calls [`ordo_node::run`].

pub mod ceremony;
pub mod dev_accounts;
#[cfg(any(test, feature = "fuzz"))]
#[doc(hidden)]
pub mod fuzz_targets;
pub mod http;
pub mod localnet;
