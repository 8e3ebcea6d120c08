//! The control build. `--features insecure-sync` reverts the defences against forged
//! block-sync responses (the block id that binds the whole certificate, verification of
//! synced certificates, responses taken only from the peer asked, commits derived from the
//! block tree), so that the simulator's control test can show that it sees the fork they
//! prevent. A checker that cannot see a fork proves nothing by finding none.
//!
//! Never enable it in a validator: `cargo test -p consensus --features insecure-sync
//! --test sync_control` is its one use.

/// Whether the defences are off.
pub(crate) const INSECURE_SYNC: bool = cfg!(feature = "insecure-sync");
