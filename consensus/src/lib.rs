//! Ordo's consensus: 2-chain HotStuff (Jolteon / DiemBFT v4) as a deterministic state
//! machine, and a seeded simulator that tests it.
//!
//! Public API:
//! - [`Replica::new`] / [`Replica::restore`] build a replica from a [`Config`], the
//!   [`Committee`] and a [`Signer`]; [`Replica::start`] enters the first round;
//!   [`Replica::handle`]`(now_ms, `[`Event`]`) -> Vec<`[`Action`]`>` does the rest. Time
//!   arrives with each event; the driver executes actions in order, making each
//!   [`Action::Persist`] durable before the next action, and delivers [`Event::Tick`]
//!   at the deadline of the latest [`Action::SetTimer`].
//! - Payload is opaque: the node reports locally stored payload digests with
//!   [`Event::PayloadReady`]; leaders propose them, voters vote only once a block's
//!   digests are all reported.
//! - Wire types in [`messages`] derive bincode 2 `Encode`/`Decode`; use
//!   [`Message::encode`] / [`Message::decode`] (size-limited).
//! - State roots: the node reports each root it computes ([`Event::Executed`]) and how far
//!   2f peers announced the same ([`Event::PeersExecuted`]); leaders carry them in blocks
//!   and voters vote only for roots they computed ([`state_roots`]), so a certificate
//!   vouches for them ([`verify_root_proof`]); after a restart the node says how far it
//!   executed ([`Replica::restore_executed`]) and answers [`Action::LoadRoots`].
//! - [`SafetyData`] is what storage keeps (as bytes: [`SafetyData::to_bytes`]).
//! - [`LeaderPolicy`]: round-robin or leader reputation.
//! - [`sim`]: the deterministic network simulator with partitions, crashes, twins and
//!   forged block sync.
//!
//! Driver contract, in short: keep a replica on one thread; feed it every authenticated
//! message, every payload digest the batch store holds, and a tick at each requested
//! deadline; execute the returned actions in order; on restart call
//! [`Replica::restore`] with the persisted [`SafetyData`] and the most recent committed
//! blocks (at least the leader-reputation window). A replica asks one peer for missing
//! blocks with [`Message::BlockRequest`] and takes the [`Message::BlockResponse`] from
//! that peer only, verifying every certificate in it; it never answers requests itself:
//! the node keeps the blocks of [`Action::KeepBlock`] and answers with [`sync::answer`]
//! off the consensus thread. [`Action::FetchPayload`] names payload to fetch for a
//! proposal that passed every check.
//!
//! A block's id binds its whole parent certificate except the signature bytes, and what a
//! certificate commits is read from the block tree; `--features insecure-sync` reverts
//! both for the control test alone (see `src/control.rs`).
//!
//! Tests and figures:
//! - `cargo test -p consensus` runs 2,000 seeded scenarios among the rest;
//! - `ORDO_SIM_SCENARIOS=100000 ORDO_SIM_SEED=7 cargo test --release -p consensus
//!   --test simulation seeded -- --nocapture` is the long run; a failure prints
//!   `ORDO_SIM_REPLAY=<seed>`, which replays that scenario alone;
//! - `cargo run --release -p consensus --bin consensus-bench` prints the core's cost
//!   and the simulator's figures.

mod block_tree;
mod committee;
mod config;
mod control;
mod error;
mod leader;
pub mod messages;
mod replica;
mod safety;
pub mod sim;
pub mod state_roots;
pub mod sync;

pub use committee::{ed25519_verify, sim_verify, Committee, Signer, SimSigner, VerifyFn};
pub use config::Config;
pub use error::ConsensusError;
pub use leader::LeaderPolicy;
pub use messages::{
    Block, Epoch, ExecutedRoot, Message, Proposal, QuorumCert, Round, StateRoots, Timeout,
    TimeoutCert, ValidatorIndex, Vote,
};
pub use replica::{Action, Event, ReadyPayload, Replica, Stats};
pub use safety::SafetyData;
pub use state_roots::verify_root_proof;
