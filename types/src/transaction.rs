//! Signed transactions.
//!
//! A transaction's hash is BLAKE3 over the canonical bytes of its unsigned body, and the
//! sender signs that hash. The hash is therefore the transaction's identity whatever its
//! signature bytes, which keeps deduplication and status lookups unambiguous.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::{
    codec, verify_batch, Address, Amount, ChainId, Hash32, KeyPair, PublicKey, Result, Signature,
};

const TX_DOMAIN: &[u8] = b"ordo/tx\0";

/// The largest encoded [`SignedTransaction`] a node accepts. Native ones are under 200
/// bytes; a contract deployment carries init code of up to [`MAX_INIT_CODE_BYTES`].
pub const MAX_TRANSACTION_BYTES: usize = MAX_INIT_CODE_BYTES + 1024;

/// The longest init code a deployment may carry (EIP-3860: twice the EIP-170 code limit).
pub const MAX_INIT_CODE_BYTES: usize = 2 * 24_576;

/// Which way a swap trades against a constant-product pool of two assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapDirection {
    /// Pay asset A, receive asset B.
    AToB,
    /// Pay asset B, receive asset A.
    BToA,
}

/// What a transaction does. Its semantics belong to the execution crate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// Moves `amount` of the native coin to `to`.
    Transfer {
        to: Address,
        #[serde(with = "crate::amount::decimal")]
        amount: Amount,
    },
    /// Trades `amount_in` against AMM pool `pool`; fails if it would yield under `min_out`.
    Swap {
        pool: u32,
        amount_in: u64,
        min_out: u64,
        direction: SwapDirection,
    },
    /// Mints the next token of NFT collection `collection` to the sender.
    Mint { collection: u32 },
    /// Metered work over the sender's state, standing in for contract logic.
    Compute { iterations: u32 },
    /// Creates an EVM contract: runs `init_code` with `value` attached and stores the code
    /// it returns at the address the EVM's `CREATE` derives from the sender and nonce.
    Deploy {
        #[serde(with = "crate::hash::hex_bytes")]
        init_code: Vec<u8>,
        #[serde(with = "crate::amount::decimal")]
        value: Amount,
        gas_limit: u64,
    },
    /// Calls the EVM contract (or pays the account) at `to` with `input` and `value`.
    Call {
        to: Address,
        #[serde(with = "crate::hash::hex_bytes")]
        input: Vec<u8>,
        #[serde(with = "crate::amount::decimal")]
        value: Amount,
        gas_limit: u64,
    },
}

impl Payload {
    /// Whether the EVM runs this payload.
    pub fn is_evm(&self) -> bool {
        matches!(self, Payload::Deploy { .. } | Payload::Call { .. })
    }
}

/// The body a sender signs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: ChainId,
    pub sender: PublicKey,
    /// Must equal the sender's next nonce when the transaction executes.
    pub nonce: u64,
    /// Unix time in milliseconds after which no block may include the transaction.
    pub expiry: u64,
    pub payload: Payload,
}

/// A transaction with its sender's signature over [`Transaction::hash`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    /// The transaction's identity: a digest of its canonical unsigned bytes.
    pub fn hash(&self) -> Hash32 {
        Hash32::digest(TX_DOMAIN, &codec::encode(self))
    }

    pub fn sender_address(&self) -> Address {
        self.sender.address()
    }

    /// Signs with `key`, which must be the sender's key for the result to verify.
    pub fn sign(self, key: &KeyPair) -> SignedTransaction {
        let signature = key.sign(self.hash().as_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    pub fn hash(&self) -> Hash32 {
        self.tx.hash()
    }

    /// Checks the signature alone; use [`SignedTransaction::verify_many`] for batches.
    pub fn verify(&self) -> Result<()> {
        self.tx
            .sender
            .verify(self.hash().as_bytes(), &self.signature)
    }

    /// Verifies all signatures in one batch; on failure the error names every bad index.
    pub fn verify_many(txs: &[SignedTransaction]) -> Result<()> {
        let hashes: Vec<Hash32> = txs.iter().map(SignedTransaction::hash).collect();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = txs
            .iter()
            .zip(&hashes)
            .map(|(t, h)| (h.as_bytes().as_slice(), &t.tx.sender, &t.signature))
            .collect();
        verify_batch(&items)
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes one transaction from untrusted bytes (size-limited, no trailing bytes).
    /// The signature is not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        codec::decode::<Self, MAX_TRANSACTION_BYTES>(bytes)
    }
}
