//! Local multi-validator orchestration (`ordo testnet up | status | logs | down`) and the
//! end-to-end load generator (`ordo bench`). Nothing here is needed by a validator: the
//! validators are `ordo run` processes, driven over their RPC and metrics endpoints.
//!
//! Public API:
//! - [`testnet::up`] / [`testnet::Testnet`] (`status`, `down`, `crash`): a testnet folder
//!   and its detached validator processes; [`testnet::UpOptions`], [`testnet::UpReport`].
//! - [`bench::run`] with a [`bench::BenchConfig`]: one benchmark run, returning a
//!   [`bench::BenchReport`] (text summary, JSON, and [`bench::plot::svg`]).
//! - [`ports`]: port checks and a free port base; [`process`]: pid files, liveness,
//!   stopping; [`client`]: the RPC calls used; [`interrupt`]: Ctrl-C as a flag.
//! - [`faults::run`] with a [`faults::FaultsConfig`]: the process-level fault suite (kills,
//!   pauses, wipes, partitions, flooding under load, then the chain and ledger checks).
//! - [`TestnetError`]: what can go wrong, one line each.

pub mod bench;
pub mod client;
mod error;
pub mod faults;
pub mod hosts;
pub mod interrupt;
pub mod ports;
pub mod process;
pub mod testnet;

pub use error::{Result, TestnetError};
