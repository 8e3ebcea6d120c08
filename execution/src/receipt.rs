//! Receipts: what each transaction did, in block order.
//!
//! Effects on state by status (the rule is the same in every executor):
//!
//! | status | state effect | fee |
//! |---|---|---|
//! | `Success` | nonce bumped, fee paid, payload applied | charged |
//! | `WrongChain`, `Expired`, `BadNonce`, `ComputeLimitExceeded`, `CannotPayFee` | none | none |
//! | `InsufficientBalance`, `UnknownPool`, `SlippageExceeded`, `UnknownCollection`, `Overflow` | nonce bumped, fee paid, payload not applied | charged |
//! | `EvmInvalid` | none | none |
//! | `Reverted`, `Halted` | nonce bumped, fee for the gas used paid, the call's effects undone | charged |
//!
//! Checks run in this order: chain id, expiry, nonce, compute limit, fee; then the
//! payload's own checks. The first failing check names the status. A contract
//! transaction's fee is its gas used times the gas price; it must be able to pay for its
//! whole gas limit (plus the value it sends) before it runs.

use bincode::{Decode, Encode};
use ordo_types::{Address, Amount};

/// Why the EVM refused a contract transaction before running it (nothing is charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum EvmInvalid {
    /// The gas limit does not cover the transaction's intrinsic gas (its data, creation).
    IntrinsicGas,
    /// The gas limit is above the per-transaction cap.
    GasLimitTooHigh,
    /// The sender cannot pay the gas limit's fee plus the value it sends.
    InsufficientFunds,
    /// Init code longer than EIP-3860 allows.
    InitCodeTooLarge,
    /// The block's gas limit is used up.
    BlockGasExhausted,
    /// Any other refusal by the EVM's checks.
    Other,
    /// An Ethereum transaction's fee cap (`gasPrice` or `maxFeePerGas`) is below the
    /// chain's gas price.
    FeeCapTooLow,
    /// An Ethereum transaction whose signature recovers no sender. Verification keeps such
    /// transactions out of batches; execution refuses one all the same, alike everywhere.
    InvalidSignature,
}

/// Why the EVM stopped a contract transaction abnormally (its gas limit is charged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum EvmHalt {
    OutOfGas,
    /// An undefined opcode or `INVALID`.
    InvalidOpcode,
    /// Calls nested deeper than 1,024.
    CallTooDeep,
    /// A created contract's code is over EIP-170's limit.
    CodeSizeLimit,
    StackOverflow,
    StackUnderflow,
    /// A jump to a place that is not a `JUMPDEST`.
    InvalidJump,
    /// Any other halt (a state change in a static call, a failed precompile, ...).
    Other,
}

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
    /// A contract transaction the EVM refused before running it.
    EvmInvalid(EvmInvalid),
    /// The contract reverted; [`EvmOutcome::output`] holds the revert data.
    Reverted,
    /// The EVM halted the contract.
    Halted(EvmHalt),
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
                | TxStatus::EvmInvalid(_)
        )
    }
}

/// A log a contract emitted (`LOG0`..`LOG4`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Log {
    pub address: Address,
    pub topics: Vec<[u8; 32]>,
    pub data: Vec<u8>,
}

/// What a contract transaction produced besides its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct EvmOutcome {
    /// The call's return data, or the revert data of a revert.
    pub output: Vec<u8>,
    /// Logs of a successful transaction, in emission order; none otherwise.
    pub logs: Vec<Log>,
    /// The contract a successful deploy created.
    pub created: Option<Address>,
}

/// One transaction's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Receipt {
    pub status: TxStatus,
    /// Native coin paid to the fee sink; zero when nothing was charged.
    pub fee: Amount,
    /// Work units charged; zero when nothing was charged.
    pub gas_used: u64,
    /// Set for contract transactions that ran.
    pub evm: Option<Box<EvmOutcome>>,
}

/// The largest encoded receipt a reader decodes. Output and logs are bounded by gas: log
/// data costs 8 gas a byte and memory quadratic gas, so a transaction within the
/// [`crate::MAX_TX_GAS`] cap of 30 million gas cannot produce 4 MiB of either.
pub const MAX_RECEIPT_BYTES: usize = 8 << 20;

impl Receipt {
    pub(crate) const fn uncharged(status: TxStatus) -> Self {
        Receipt {
            status,
            fee: 0,
            gas_used: 0,
            evm: None,
        }
    }
}
