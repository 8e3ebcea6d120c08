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
//! - [`SafetyData`] is what storage keeps (as bytes: [`SafetyData::to_bytes`]).
//! - [`LeaderPolicy`]: round-robin or leader reputation.
//! - [`sim`]: the deterministic network simulator with partitions, crashes and twins.

mod block_tree;
mod committee;
mod config;
mod error;
mod leader;
pub mod messages;
mod replica;
mod safety;
pub mod sim;

pub use committee::{ed25519_verify, sim_verify, Committee, Signer, SimSigner, VerifyFn};
pub use config::Config;
pub use error::ConsensusError;
pub use leader::LeaderPolicy;
pub use messages::{
    Block, Epoch, Message, Proposal, QuorumCert, Round, Timeout, TimeoutCert, ValidatorIndex, Vote,
};
pub use replica::{Action, Event, Replica, Stats};
pub use safety::SafetyData;
