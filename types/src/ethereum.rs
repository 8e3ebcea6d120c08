//! Ethereum transactions: what wallets and tools sign with secp256k1 keys.
//!
//! An [`EthTransaction`] is its sender's signed EIP-2718 bytes, decoded once: a legacy
//! transaction with an EIP-155 chain id, or a typed one of type 1 (EIP-2930) or 2
//! (EIP-1559). Its identity is Ethereum's, keccak-256 of those bytes, so the hash a wallet
//! computes is the hash Ordo indexes. Its sender is recovered from the signature (high-s
//! signatures refused, as EIP-2 requires) at most once per copy, and remembered.
//!
//! Onto Ordo's payloads: a transaction with a recipient is a `Call` (an empty input to an
//! account without code only moves the value, as on Ethereum), one without is a `Deploy`;
//! the gas limit is the payload's. It carries no expiry: its nonce alone keeps it from
//! running twice. Fees: the chain charges its genesis gas price for each unit of gas used;
//! the transaction's fee cap (`gasPrice`, or `maxFeePerGas`) must reach that price, and no
//! tip is charged beyond it.
//!
//! Refused when decoded, each with its own [`EthError`]: blob (type 3) and set-code
//! (type 4) transactions, legacy transactions without a chain id (valid on every chain),
//! non-empty access lists (not executed yet), values above 2^128 - 1, and anything that is
//! not exactly one envelope.

use std::sync::OnceLock;

use alloy_consensus::{SignableTransaction, Transaction as _, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{keccak256, TxKind, U256};
use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};

use crate::{Address, Amount, ChainId, Hash32, Payload};

pub use alloy_consensus::{TxEip1559, TxEip2930, TxLegacy};

/// Why an Ethereum transaction is refused before any state is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthError {
    #[error("not an Ethereum transaction envelope: {0}")]
    Malformed(String),
    #[error("transaction type {0} is not supported (legacy, EIP-2930 and EIP-1559 are)")]
    UnsupportedType(u8),
    #[error("a legacy transaction without an EIP-155 chain id is refused: it would be valid on every chain")]
    NoChainId,
    #[error("access lists are not supported yet; send the transaction without one")]
    AccessList,
    #[error("value {0} exceeds the largest amount, 2^128 - 1")]
    ValueTooLarge(U256),
    #[error("invalid sender signature: {0}")]
    BadSignature(String),
}

/// A decoded, signed Ethereum transaction (see the module note).
#[derive(Clone)]
pub struct EthTransaction {
    raw: Vec<u8>,
    envelope: TxEnvelope,
    hash: Hash32,
    chain_id: ChainId,
    payload: Payload,
    /// The recovered sender, or why recovery failed; filled on first use.
    sender: OnceLock<Result<Address, EthError>>,
}

impl EthTransaction {
    /// Decodes the EIP-2718 bytes a wallet signed (what `eth_sendRawTransaction` carries).
    /// The signature is checked later, by [`EthTransaction::sender`].
    pub fn from_raw(raw: Vec<u8>) -> Result<Self, EthError> {
        let envelope =
            TxEnvelope::decode_2718_exact(&raw).map_err(|e| EthError::Malformed(e.to_string()))?;
        let ty = envelope.tx_type() as u8;
        if !matches!(
            envelope,
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_)
        ) {
            return Err(EthError::UnsupportedType(ty));
        }
        let chain_id = envelope.chain_id().ok_or(EthError::NoChainId)?;
        if envelope.access_list().is_some_and(|list| !list.is_empty()) {
            return Err(EthError::AccessList);
        }
        let value = Amount::try_from(envelope.value())
            .map_err(|_| EthError::ValueTooLarge(envelope.value()))?;
        let gas_limit = envelope.gas_limit();
        let input = envelope.input().to_vec();
        let payload = match envelope.kind() {
            TxKind::Create => Payload::Deploy {
                init_code: input,
                value,
                gas_limit,
            },
            TxKind::Call(to) => Payload::Call {
                to: Address(to.0 .0),
                input,
                value,
                gas_limit,
            },
        };
        let hash = Hash32(keccak256(&raw).0);
        Ok(EthTransaction {
            raw,
            envelope,
            hash,
            chain_id,
            payload,
            sender: OnceLock::new(),
        })
    }

    /// The signed EIP-2718 bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Ethereum's transaction hash: keccak-256 of [`EthTransaction::raw`].
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The most the sender agreed to pay per unit of gas.
    pub fn fee_cap(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }

    /// The tip per gas the sender offered (EIP-1559; 0 for the others). Ordo charges none.
    pub fn priority_fee(&self) -> u128 {
        self.envelope.max_priority_fee_per_gas().unwrap_or(0)
    }

    /// The signature as the JSON-RPC shows it: `r`, `s` (big-endian) and the y parity.
    pub fn signature(&self) -> ([u8; 32], [u8; 32], bool) {
        let sig = self.envelope.signature();
        (sig.r().to_be_bytes(), sig.s().to_be_bytes(), sig.v())
    }

    /// 0 (legacy), 1 (EIP-2930) or 2 (EIP-1559).
    pub fn tx_type(&self) -> u8 {
        self.envelope.tx_type() as u8
    }

    /// The sender, recovered from the signature on first use and remembered, by this copy
    /// and in the process-wide memo of recovered senders (a validator decodes a transaction again
    /// after verifying it: from its batch store, to execute it).
    pub fn sender(&self) -> Result<Address, EthError> {
        self.sender
            .get_or_init(|| {
                if let Some(address) = RECOVERED.get(&self.hash) {
                    return Ok(address);
                }
                let recovered = recover(&self.envelope);
                if let Ok(address) = recovered {
                    RECOVERED.insert(self.hash, address);
                }
                recovered
            })
            .clone()
    }

    /// Recovers the sender without either memo: what one signature check costs.
    pub fn recover_uncached(&self) -> Result<Address, EthError> {
        recover(&self.envelope)
    }
}

/// The sender that signed `envelope`, by libsecp256k1 (about 50 µs on this machine's
/// cores, against 150 for k256): EIP-2's low-s rule first, then public-key recovery.
fn recover(envelope: &TxEnvelope) -> Result<Address, EthError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let sig = envelope.signature();
    if sig.s() > alloy_consensus::crypto::SECP256K1N_HALF {
        return Err(EthError::BadSignature(
            "s is in the upper half of the curve order (EIP-2)".into(),
        ));
    }
    let bad = |e: secp256k1::Error| EthError::BadSignature(e.to_string());
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let id = RecoveryId::try_from(i32::from(sig.v())).map_err(bad)?;
    let signature = RecoverableSignature::from_compact(&compact, id).map_err(bad)?;
    let message = secp256k1::Message::from_digest(envelope.signature_hash().0);
    let key = signature.recover(message).map_err(bad)?;
    let digest = keccak256(&key.serialize_uncompressed()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest[12..]);
    Ok(Address(address))
}

/// Senders recovered in this process, by transaction hash (keccak of the signed bytes, so
/// the hash determines the sender): a bounded memo in shards, each cleared when full.
struct RecoveredSenders {
    shards: Vec<parking_lot::Mutex<std::collections::HashMap<Hash32, Address>>>,
}

/// Shards of [`RECOVERED`]: recovery runs on every verification thread at once.
const RECOVERED_SHARDS: usize = 64;
/// Senders each shard remembers: 64 x 4,096, about a quarter million transactions (some
/// 20 MiB), more than a validator has between verifying a batch and executing it.
const RECOVERED_PER_SHARD: usize = 4_096;

/// The process's memo of recovered senders.
static RECOVERED: std::sync::LazyLock<RecoveredSenders> =
    std::sync::LazyLock::new(|| RecoveredSenders {
        shards: (0..RECOVERED_SHARDS)
            .map(|_| parking_lot::Mutex::new(std::collections::HashMap::new()))
            .collect(),
    });

impl RecoveredSenders {
    fn shard(
        &self,
        hash: &Hash32,
    ) -> &parking_lot::Mutex<std::collections::HashMap<Hash32, Address>> {
        &self.shards[usize::from(hash.0[0]) % RECOVERED_SHARDS]
    }

    fn get(&self, hash: &Hash32) -> Option<Address> {
        self.shard(hash).lock().get(hash).copied()
    }

    fn insert(&self, hash: Hash32, address: Address) {
        let mut shard = self.shard(&hash).lock();
        if shard.len() >= RECOVERED_PER_SHARD {
            shard.clear();
        }
        shard.insert(hash, address);
    }
}

impl std::fmt::Debug for EthTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthTransaction")
            .field("hash", &self.hash)
            .field("type", &self.tx_type())
            .field("chain_id", &self.chain_id)
            .field("nonce", &self.nonce())
            .field("payload", &self.payload)
            .finish()
    }
}

/// Equal bytes, equal transaction: everything else is derived from them.
impl PartialEq for EthTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for EthTransaction {}

impl std::hash::Hash for EthTransaction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state)
    }
}

/// On the wire: the raw bytes, length-prefixed; decoding refuses what
/// [`EthTransaction::from_raw`] refuses.
impl bincode::Encode for EthTransaction {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.raw.encode(encoder)
    }
}

impl<Context> bincode::Decode<Context> for EthTransaction {
    fn decode<D: Decoder<Context = Context>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let raw = Vec::<u8>::decode(decoder)?;
        EthTransaction::from_raw(raw).map_err(|e| DecodeError::OtherString(e.to_string()))
    }
}

bincode::impl_borrow_decode!(EthTransaction);

/// In JSON: `{"ethereum": "0x<raw bytes>"}`.
impl serde::Serialize for EthTransaction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EthTransaction", 1)?;
        st.serialize_field("ethereum", &format!("0x{}", hex::encode(&self.raw)))?;
        st.end()
    }
}

impl<'de> serde::Deserialize<'de> for EthTransaction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(with = "crate::hash::hex_bytes")]
            ethereum: Vec<u8>,
        }
        let raw = Raw::deserialize(d)?;
        EthTransaction::from_raw(raw.ethereum).map_err(serde::de::Error::custom)
    }
}

/// A secp256k1 key as Ethereum wallets hold one: for tests, benchmarks and development
/// accounts, never for validators.
#[derive(Clone)]
pub struct EthKey {
    signing: k256::ecdsa::SigningKey,
}

impl EthKey {
    /// The key whose secret scalar is `secret`; `None` if it is zero or not below the curve
    /// order.
    pub fn from_secret(secret: [u8; 32]) -> Option<Self> {
        k256::ecdsa::SigningKey::from_bytes(&secret.into())
            .ok()
            .map(|signing| EthKey { signing })
    }

    /// A key derived from `seed` (keccak of the seed, retried in the negligible case that it
    /// is not a valid scalar): deterministic keys for tests and benchmarks.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut digest = keccak256(seed).0;
        loop {
            if let Some(key) = Self::from_secret(digest) {
                return key;
            }
            digest = keccak256(digest).0;
        }
    }

    /// The secret scalar, big-endian (what wallets import as a private key).
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes().into()
    }

    /// The account: the last 20 bytes of keccak-256 of the uncompressed public key.
    pub fn address(&self) -> Address {
        let point = self.signing.verifying_key().to_encoded_point(false);
        let digest = keccak256(&point.as_bytes()[1..]);
        let mut address = [0u8; 20];
        address.copy_from_slice(&digest[12..]);
        Address(address)
    }

    /// Signs `tx` and returns its EIP-2718 bytes.
    pub fn sign_raw<T>(&self, tx: T) -> Vec<u8>
    where
        T: SignableTransaction<alloy_primitives::Signature>,
        TxEnvelope: From<alloy_consensus::Signed<T>>,
    {
        let digest = tx.signature_hash();
        let (signature, recovery) = self
            .signing
            .sign_prehash_recoverable(digest.as_slice())
            .expect("signing a 32-byte digest cannot fail");
        let signature = alloy_primitives::Signature::from((signature, recovery));
        TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
    }

    /// Signs `tx` and decodes the result, ready to submit.
    pub fn sign<T>(&self, tx: T) -> EthTransaction
    where
        T: SignableTransaction<alloy_primitives::Signature>,
        TxEnvelope: From<alloy_consensus::Signed<T>>,
    {
        EthTransaction::from_raw(self.sign_raw(tx)).expect("a transaction we signed decodes")
    }
}

/// `payload` as the EIP-1559 transaction a wallet would send for it: a call or deployment
/// as it is, a native transfer as a call with the amount as value and no input (21,000
/// gas); `None` for the native payloads Ethereum has no form for (swap, mint, compute).
pub fn eip1559_of(
    chain_id: ChainId,
    nonce: u64,
    payload: Payload,
    fee_cap: u128,
) -> Option<TxEip1559> {
    let (to, value, input, gas) = match payload {
        Payload::Transfer { to, amount } => (Some(to), amount, Vec::new(), 21_000),
        Payload::Call {
            to,
            input,
            value,
            gas_limit,
        } => (Some(to), value, input, gas_limit),
        Payload::Deploy {
            init_code,
            value,
            gas_limit,
        } => (None, value, init_code, gas_limit),
        Payload::Swap { .. } | Payload::Mint { .. } | Payload::Compute { .. } => return None,
    };
    Some(eip1559(chain_id, nonce, to, value, input, gas, fee_cap))
}

/// An EIP-1559 transaction of `chain_id` from the caller's key: a call to `to`, or a
/// deployment when `to` is `None`. Fee cap `fee_cap`, no tip.
pub fn eip1559(
    chain_id: ChainId,
    nonce: u64,
    to: Option<Address>,
    value: Amount,
    input: Vec<u8>,
    gas_limit: u64,
    fee_cap: u128,
) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: fee_cap,
        max_priority_fee_per_gas: 0,
        to: to.map_or(TxKind::Create, |a| TxKind::Call(a.0.into())),
        value: U256::from(value),
        access_list: Default::default(),
        input: input.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn key() -> EthKey {
        EthKey::from_seed(b"test")
    }

    #[test]
    fn a_signed_transaction_round_trips_and_recovers_its_sender() {
        let to = Address([7; 20]);
        let tx = key().sign(eip1559(9, 3, Some(to), 5, vec![1, 2], 50_000, 10));
        assert_eq!(tx.sender(), Ok(key().address()));
        assert_eq!((tx.chain_id(), tx.nonce(), tx.fee_cap()), (9, 3, 10));
        assert_eq!(
            tx.payload(),
            &Payload::Call {
                to,
                input: vec![1, 2],
                value: 5,
                gas_limit: 50_000
            }
        );
        assert_eq!(tx.hash(), Hash32(keccak256(tx.raw()).0));
        let bytes = codec::encode(&tx);
        let back: EthTransaction = codec::decode::<_, 1024>(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.sender(), Ok(key().address()));
        let json = serde_json::to_string(&tx).unwrap();
        assert_eq!(serde_json::from_str::<EthTransaction>(&json).unwrap(), tx);
    }

    #[test]
    fn legacy_and_eip2930_transactions_are_accepted_with_a_chain_id() {
        let legacy = TxLegacy {
            chain_id: Some(9),
            nonce: 1,
            gas_price: 7,
            gas_limit: 21_000,
            to: TxKind::Call([1; 20].into()),
            value: U256::from(u64::MAX) + U256::from(1),
            input: Default::default(),
        };
        let tx = key().sign(legacy.clone());
        assert_eq!((tx.tx_type(), tx.chain_id(), tx.fee_cap()), (0, 9, 7));
        assert!(matches!(tx.payload(), Payload::Call { value, .. } if *value == 1 << 64));
        assert_eq!(tx.sender(), Ok(key().address()));

        let pre_eip155 = TxLegacy {
            chain_id: None,
            ..legacy
        };
        let raw = key().sign_raw(pre_eip155);
        assert_eq!(EthTransaction::from_raw(raw), Err(EthError::NoChainId));

        let deploy = TxEip2930 {
            chain_id: 9,
            nonce: 0,
            gas_price: 1,
            gas_limit: 100_000,
            to: TxKind::Create,
            value: U256::ZERO,
            access_list: Default::default(),
            input: vec![0x60, 0x00].into(),
        };
        let tx = key().sign(deploy);
        assert_eq!(tx.tx_type(), 1);
        assert!(
            matches!(tx.payload(), Payload::Deploy { init_code, .. } if init_code == &[0x60, 0x00])
        );
    }

    #[test]
    fn what_ordo_cannot_run_is_refused_with_its_reason() {
        let mut tx = eip1559(9, 0, Some(Address([1; 20])), 0, vec![], 21_000, 1);
        tx.access_list = alloy_eips::eip2930::AccessList(vec![Default::default()]);
        assert_eq!(
            EthTransaction::from_raw(key().sign_raw(tx)),
            Err(EthError::AccessList)
        );
        let mut tx = eip1559(9, 0, Some(Address([1; 20])), 0, vec![], 21_000, 1);
        tx.value = U256::MAX;
        assert!(matches!(
            EthTransaction::from_raw(key().sign_raw(tx)),
            Err(EthError::ValueTooLarge(_))
        ));
        // A type byte Ordo does not run, and bytes that are no envelope at all.
        assert!(EthTransaction::from_raw(vec![0x03, 0xc0]).is_err());
        assert!(matches!(
            EthTransaction::from_raw(vec![0xde, 0xad]),
            Err(EthError::Malformed(_))
        ));
        // Trailing bytes after the envelope.
        let mut raw = key().sign_raw(eip1559(9, 0, None, 0, vec![], 60_000, 1));
        raw.push(0);
        assert!(EthTransaction::from_raw(raw).is_err());
    }

    #[test]
    fn a_tampered_transaction_recovers_another_sender_or_none() {
        let raw = key().sign_raw(eip1559(9, 0, Some(Address([1; 20])), 1, vec![], 21_000, 1));
        let mut changed = 0;
        for i in 0..raw.len() {
            let mut bytes = raw.clone();
            bytes[i] ^= 0x01;
            if let Ok(tx) = EthTransaction::from_raw(bytes) {
                assert_ne!(tx.sender(), Ok(key().address()), "byte {i}");
                changed += 1;
            }
        }
        assert!(changed > 0);
    }

    #[test]
    fn a_high_s_twin_of_a_valid_signature_is_refused() {
        // (r, n - s) with the other parity recovers the same key on secp256k1, so every
        // signature has a malleable twin; EIP-2 accepts only the low-s one.
        let tx = eip1559(9, 0, Some(Address([1; 20])), 1, vec![], 21_000, 1);
        let raw = key().sign_raw(tx.clone());
        let TxEnvelope::Eip1559(signed) = TxEnvelope::decode_2718_exact(&raw).unwrap() else {
            panic!("an EIP-1559 envelope");
        };
        let sig = *signed.signature();
        // The order of secp256k1's group.
        let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
            .parse()
            .unwrap();
        let twin = alloy_primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
        let twin_raw = TxEnvelope::from(tx.into_signed(twin)).encoded_2718();
        let decoded = EthTransaction::from_raw(twin_raw).expect("it decodes");
        assert!(matches!(decoded.sender(), Err(EthError::BadSignature(_))));
        assert_eq!(
            EthTransaction::from_raw(raw).unwrap().sender(),
            Ok(key().address())
        );
    }

    #[test]
    fn the_address_of_a_well_known_key_is_ethereums() {
        // The first development account of the standard test mnemonic (anvil, Hardhat).
        let secret =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let key = EthKey::from_secret(secret.try_into().unwrap()).unwrap();
        assert_eq!(
            key.address().to_string().to_lowercase(),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
    }
}
