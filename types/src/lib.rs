//! Ordo's shared primitives: the few types every other crate speaks.
//!
//! - [`Hash32`]: a 32-byte BLAKE3 digest, always taken over a domain tag so that no two
//!   kinds of object can share a digest.
//! - [`KeyPair`], [`PublicKey`], [`Signature`], [`verify_batch`]: ed25519 signing and
//!   verification; batches are checked together and a failed batch names its bad members.
//! - [`Address`]: an account, derived from its owner's public key; [`Amount`]: a 128-bit
//!   quantity of the native coin, a decimal string in JSON.
//! - [`Transaction`], [`SignedTransaction`], [`Payload`]: what clients sign and submit;
//!   [`EthTransaction`]: an Ethereum transaction, the other kind a [`SignedTransaction`] is.
//! - [`codec`]: the one canonical binary encoding (bincode 2, fixed-width integers), with
//!   decoding that enforces a size limit and rejects trailing bytes.
//! - [`keyfile`]: key files on disk, written with mode 0600.
//! - [`StateView`], [`StateAccumulator`]: the executor's read access to state, and the
//!   incremental commitment behind every state root.
//! - [`BoundedSet`]: the one "seen" window, a set that forgets its oldest members;
//!   [`now_ms`]: the one wall clock; [`SeededRng`]: the one seeded generator of tests
//!   and workloads; [`lower_thread_priority`]: how threads doing bulk work (signature
//!   checks, execution) yield the cores to consensus; [`bulk`]: the pool of such threads
//!   that async tasks hand their signature checks to.
//!
//! Keep this crate small: anything with behaviour beyond encoding and cryptography belongs
//! to the crate that owns that behaviour. The bulk pool is here because the network and
//! the node both hand it their signature checks, and it must be one pool.

pub mod amount;
mod bounded;
pub mod bulk;
mod clock;
pub mod codec;
mod crypto;
mod error;
pub mod ethereum;
mod hash;
pub mod keyfile;
mod priority;
mod rng;
mod state;
mod transaction;

pub use amount::Amount;
pub use bounded::BoundedSet;
pub use clock::now_ms;
pub use crypto::{verify_batch, Address, KeyPair, PublicKey, Signature, ADDRESS_BYTES};
pub use error::Error;
pub use ethereum::{EthKey, EthTransaction};
pub use hash::{Hash32, HexParseError};
pub use priority::{lower_thread_priority, BULK_NICE};
pub use rng::SeededRng;
pub use state::{
    StateAccumulator, StateFamily, StateView, CODE_KEY_TAG, LANES as STATE_ACCUMULATOR_LANES,
    SLOT_KEY_TAG,
};
pub use transaction::{
    OrdoTransaction, Payload, SignedTransaction, SwapDirection, Transaction, MAX_INIT_CODE_BYTES,
    MAX_TRANSACTION_BYTES,
};

/// Identifies one chain; part of every signed transaction so that a signature made for
/// one network is never valid on another.
pub type ChainId = u64;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
