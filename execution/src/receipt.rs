//! Receipts: what each transaction did, in block order.
//!
//! Effects on state by status (the rule is the same in every executor):
//!
//! | status | state effect | fee |
//! |---|---|---|
//! | `Success` | nonce bumped, fee paid, payload applied | charged |
//! | `WrongChain`, `Expired`, `BadNonce`, `ComputeLimitExceeded`, `CannotPayFee` | none | none |
//! | `InsufficientBalance`, `UnknownPool`, `SlippageExceeded`, `UnknownCollection`, `Overflow` | nonce bumped, fee paid, payload not applied | charged |
//!
//! Checks run in this order: chain id, expiry, nonce, compute limit, fee; then the
//! payload's own checks. The first failing check names the status.

use bincode::{Decode, Encode};

/// The outcome of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum TxStatus {
    Success,
    /// The transaction names another chain.
    WrongChain,
    /// The block's timestamp is past the transaction's expiry.
    Expired,
    /// The nonce is not the sender's next one, which is `expected`.
    BadNonce {
        expected: u64,
    },
    /// A `Compute` call asks for more than [`crate::MAX_COMPUTE_ITERATIONS`].
    ComputeLimitExceeded,
    /// The sender's balance does not cover the fee.
    CannotPayFee,
    /// After the fee, the sender cannot cover what the payload spends.
    InsufficientBalance,
    /// A swap names a pool that does not exist.
    UnknownPool,
    /// A swap would return less than its `min_out`.
    SlippageExceeded,
    /// A mint names a collection that does not exist.
    UnknownCollection,
    /// The payload would overflow a balance, a reserve or a counter.
    Overflow,
}

impl TxStatus {
    /// Whether the transaction paid its fee and used its nonce.
    pub fn charged(&self) -> bool {
        !matches!(
            self,
            TxStatus::WrongChain
                | TxStatus::Expired
                | TxStatus::BadNonce { .. }
                | TxStatus::ComputeLimitExceeded
                | TxStatus::CannotPayFee
        )
    }
}

/// One transaction's receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Receipt {
    pub status: TxStatus,
    /// Native coin paid to the fee sink; zero when nothing was charged.
    pub fee: u64,
    /// Work units charged; zero when nothing was charged.
    pub gas_used: u64,
}

impl Receipt {
    pub(crate) const fn uncharged(status: TxStatus) -> Self {
        Receipt {
            status,
            fee: 0,
            gas_used: 0,
        }
    }
}
