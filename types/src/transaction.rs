//! Signed transactions.
//!
//! A transaction's hash is BLAKE3 over the canonical bytes of its unsigned body, and the
//! sender signs that hash. The hash is therefore the transaction's identity whatever its
//! signature bytes, which keeps deduplication and status lookups unambiguous.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::ethereum::EthTransaction;
use crate::{
    codec, verify_batch, Address, Amount, ChainId, Error, Hash32, KeyPair, PublicKey, Result,
    Signature,
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

    /// The most gas the EVM may spend on this payload; 0 for native payloads, which the
    /// block gas limit does not count.
    pub fn gas_limit(&self) -> u64 {
        match self {
            Payload::Deploy { gas_limit, .. } | Payload::Call { gas_limit, .. } => *gas_limit,
            _ => 0,
        }
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

/// An Ordo transaction with its sender's ed25519 signature over [`Transaction::hash`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
pub struct OrdoTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

/// What clients submit and blocks order: an Ordo transaction (ed25519) or an Ethereum one
/// (secp256k1, see [`crate::ethereum`]). Both travel the same path; the accessors below are
/// what admission, ordering and execution read. In JSON an Ordo transaction is its fields
/// and an Ethereum one `{"ethereum": "0x<raw bytes>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignedTransaction {
    Ordo(OrdoTransaction),
    /// Boxed: it is several times the size of an Ordo transaction, which is the common
    /// kind in batches.
    Ethereum(Box<EthTransaction>),
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
        SignedTransaction::Ordo(OrdoTransaction {
            tx: self,
            signature,
        })
    }
}

impl From<EthTransaction> for SignedTransaction {
    fn from(tx: EthTransaction) -> Self {
        SignedTransaction::Ethereum(Box::new(tx))
    }
}

/// What [`SignedTransaction::sender_address`] answers for an Ethereum transaction whose
/// signature does not recover. Verification keeps such transactions out of batches, and
/// execution refuses one before it reads this account (`InvalidSignature`); the address
/// only keeps the accessor total.
const UNRECOVERABLE: Address = Address([0; crate::ADDRESS_BYTES]);

impl SignedTransaction {
    /// The identity: BLAKE3 of the unsigned body (Ordo), keccak-256 of the signed bytes
    /// (Ethereum, as wallets compute it).
    pub fn hash(&self) -> Hash32 {
        match self {
            SignedTransaction::Ordo(t) => t.tx.hash(),
            SignedTransaction::Ethereum(t) => t.hash(),
        }
    }

    pub fn chain_id(&self) -> ChainId {
        match self {
            SignedTransaction::Ordo(t) => t.tx.chain_id,
            SignedTransaction::Ethereum(t) => t.chain_id(),
        }
    }

    pub fn nonce(&self) -> u64 {
        match self {
            SignedTransaction::Ordo(t) => t.tx.nonce,
            SignedTransaction::Ethereum(t) => t.nonce(),
        }
    }

    /// Unix time in milliseconds after which no block may include it; an Ethereum
    /// transaction never expires (its nonce keeps it from running twice).
    pub fn expiry(&self) -> u64 {
        match self {
            SignedTransaction::Ordo(t) => t.tx.expiry,
            SignedTransaction::Ethereum(_) => u64::MAX,
        }
    }

    pub fn payload(&self) -> &Payload {
        match self {
            SignedTransaction::Ordo(t) => &t.tx.payload,
            SignedTransaction::Ethereum(t) => t.payload(),
        }
    }

    /// The most the sender pays per unit of gas, if it said (Ethereum transactions do).
    pub fn fee_cap(&self) -> Option<u128> {
        match self {
            SignedTransaction::Ordo(_) => None,
            SignedTransaction::Ethereum(t) => Some(t.fee_cap()),
        }
    }

    /// The sending account. For an Ethereum transaction this recovers the signer on first
    /// use (verification does it first in the node); see [`UNRECOVERABLE`].
    pub fn sender_address(&self) -> Address {
        match self {
            SignedTransaction::Ordo(t) => t.tx.sender_address(),
            SignedTransaction::Ethereum(t) => t.sender().unwrap_or(UNRECOVERABLE),
        }
    }

    /// The Ordo transaction, if it is one.
    pub fn as_ordo(&self) -> Option<&OrdoTransaction> {
        match self {
            SignedTransaction::Ordo(t) => Some(t),
            SignedTransaction::Ethereum(_) => None,
        }
    }

    /// The Ordo transaction, if it is one, to change (tests forge transactions this way).
    pub fn as_ordo_mut(&mut self) -> Option<&mut OrdoTransaction> {
        match self {
            SignedTransaction::Ordo(t) => Some(t),
            SignedTransaction::Ethereum(_) => None,
        }
    }

    /// Checks the signature alone; use [`SignedTransaction::verify_many`] for batches.
    pub fn verify(&self) -> Result<()> {
        match self {
            SignedTransaction::Ordo(t) => t.tx.sender.verify(self.hash().as_bytes(), &t.signature),
            SignedTransaction::Ethereum(t) => {
                t.sender().map(|_| ()).map_err(|_| Error::BadSignature)
            }
        }
    }

    /// Verifies all signatures: the ed25519 ones in one batch, the Ethereum ones by
    /// recovering their senders. On failure the error names every bad index.
    pub fn verify_many(txs: &[SignedTransaction]) -> Result<()> {
        let ordo: Vec<(usize, &OrdoTransaction, Hash32)> = txs
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ordo().map(|o| (i, o, o.tx.hash())))
            .collect();
        let items: Vec<(&[u8], &PublicKey, &Signature)> = ordo
            .iter()
            .map(|(_, t, h)| (h.as_bytes().as_slice(), &t.tx.sender, &t.signature))
            .collect();
        let mut bad: Vec<usize> = match verify_batch(&items) {
            Ok(()) => Vec::new(),
            Err(Error::BadSignatures { bad, .. }) => bad.into_iter().map(|k| ordo[k].0).collect(),
            Err(e) => return Err(e),
        };
        bad.extend(txs.iter().enumerate().filter_map(|(i, t)| match t {
            SignedTransaction::Ethereum(e) if e.sender().is_err() => Some(i),
            _ => None,
        }));
        if bad.is_empty() {
            return Ok(());
        }
        bad.sort_unstable();
        Err(Error::BadSignatures {
            bad,
            total: txs.len(),
        })
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
