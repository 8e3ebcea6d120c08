//! The state model: typed keys and values, and their canonical bytes at the storage
//! boundary.
//!
//! A key's bytes are a one-byte tag followed by its fields, integers big-endian, so that
//! the byte order of encoded keys equals the derived order of [`StateKey`] (tested): the
//! executor sorts typed keys and storage sees them in byte order. A value's bytes are the
//! canonical encoding ([`ordo_types::codec`]) of the record its key's tag names; which
//! record a value is follows from its key alone.
//!
//! | key | value |
//! |---|---|
//! | `Account(addr)` | [`Account`]: native-coin balance and next nonce |
//! | `Holding(addr, pool)` | units of pool `pool`'s B asset held by `addr` |
//! | `Storage(addr)` | the 32-byte result of `addr`'s last `Compute` call |
//! | `Pool(id)` | [`Pool`]: reserves of a constant-product AMM (A = native coin) |
//! | `Collection(id)` | [`Collection`]: tokens minted so far by an NFT collection |
//! | `Token(collection, id)` | the token owner's address |
//! | `Code(addr)` | [`Code`]: a contract's runtime bytecode (raw bytes, no length prefix) |
//! | `Slot(addr, index)` | a contract's 32-byte storage word at a 32-byte index |
//!
//! An EVM account is its `Account` record (balance, nonce) plus its `Code`, if any: the
//! EVM and native transactions share one account space. A slot written to zero is stored
//! as zero, not deleted, so that every executor writes the same keys.

pub use crate::code::{Code, MAX_CODE_BYTES};
use crate::error::{ExecutionError, Result};
use bincode::{Decode, Encode};
use ordo_types::{codec, Address, Amount, StateView, ADDRESS_BYTES};

const TAG_ACCOUNT: u8 = 0x01;
const TAG_HOLDING: u8 = 0x02;
const TAG_STORAGE: u8 = 0x03;
const TAG_POOL: u8 = 0x10;
const TAG_COLLECTION: u8 = 0x11;
const TAG_TOKEN: u8 = 0x12;
// Storage keeps these two in families of their own: the tags are ordo-types'.
const TAG_CODE: u8 = ordo_types::CODE_KEY_TAG;
const TAG_SLOT: u8 = ordo_types::SLOT_KEY_TAG;

/// The longest encoded key: tag, address, slot index.
pub const MAX_KEY_BYTES: usize = 1 + ADDRESS_BYTES + 32;

/// Where a value lives. Variant order is tag order; see the module note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum StateKey {
    Account(Address),
    Holding(Address, u32),
    Storage(Address),
    Pool(u32),
    Collection(u32),
    Token(u32, u64),
    Code(Address),
    Slot(Address, [u8; 32]),
}

/// An account's native-coin balance, the nonce its next transaction must carry, and
/// whether it is a contract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Account {
    pub balance: Amount,
    pub nonce: u64,
    /// `Code(address)` holds code. The EVM reads an account's code only when this says
    /// so, which spares every externally owned account a read of a key that is absent.
    pub contract: bool,
}

/// A constant-product pool: asset A is the native coin, asset B is the pool's own token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Pool {
    pub reserve_a: u64,
    pub reserve_b: u64,
}

/// An NFT collection's counter; token ids are allocated from it and never reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Collection {
    pub minted: u64,
}

/// A decoded value. Which variant a key holds is fixed by the key's kind. Cloning is cheap:
/// code is shared by reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Encode, Decode)]
pub enum StateValue {
    Account(Account),
    Holding(u64),
    Storage([u8; 32]),
    Pool(Pool),
    Collection(Collection),
    Token(Address),
    Code(Code),
    Slot([u8; 32]),
}

/// An encoded key on the stack, so that hashing keys into the state root allocates nothing.
#[derive(Clone, Copy)]
pub struct KeyBytes {
    len: u8,
    bytes: [u8; MAX_KEY_BYTES],
}

impl std::ops::Deref for KeyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A key packed into seven words, for hashing and comparing keys without byte loops; only
/// the executor's per-block key index uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedKey([u64; 7]);

impl std::hash::Hash for PackedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The first two words tell keys apart except addresses sharing their first eight
        // bytes, which are digests; equality still compares every word.
        state.write_u64(self.0[0]);
        state.write_u64(self.0[1]);
    }
}

impl StateKey {
    pub(crate) fn packed(&self) -> PackedKey {
        // Words in little-endian order of up to eight bytes each; only equality and hashing
        // use them, so any fixed split works.
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let address = |a: &Address| [word(&a.0[..8]), word(&a.0[8..16]), word(&a.0[16..])];
        let with = |head: u64, a: &Address| {
            let [a0, a1, a2] = address(a);
            PackedKey([head, a0, a1, a2, 0, 0, 0])
        };
        match self {
            StateKey::Account(a) => with(u64::from(TAG_ACCOUNT), a),
            StateKey::Holding(a, pool) => with(u64::from(TAG_HOLDING) | u64::from(*pool) << 8, a),
            StateKey::Storage(a) => with(u64::from(TAG_STORAGE), a),
            StateKey::Pool(id) => {
                PackedKey([u64::from(TAG_POOL) | u64::from(*id) << 8, 0, 0, 0, 0, 0, 0])
            }
            StateKey::Collection(id) => PackedKey([
                u64::from(TAG_COLLECTION) | u64::from(*id) << 8,
                0,
                0,
                0,
                0,
                0,
                0,
            ]),
            StateKey::Token(c, id) => PackedKey([
                u64::from(TAG_TOKEN) | u64::from(*c) << 8,
                *id,
                0,
                0,
                0,
                0,
                0,
            ]),
            StateKey::Code(a) => with(u64::from(TAG_CODE), a),
            StateKey::Slot(a, index) => {
                // The tag keeps the low byte of the first word, as for every kind. The
                // index's tail differs most among slots (small indices; mapping slots are
                // digests), so it goes into the first word, which is hashed.
                let [a0, a1, a2] = address(a);
                PackedKey([
                    u64::from(TAG_SLOT) | word(&index[24..31]) << 8,
                    a0,
                    a1,
                    a2 | u64::from(index[31]) << 32,
                    word(&index[..8]),
                    word(&index[8..16]),
                    word(&index[16..24]),
                ])
            }
        }
    }

    /// The first 16 bytes of the encoded key, zero-padded, as a big-endian number: keys
    /// with different prefixes compare as their prefixes do, so sorting compares numbers
    /// and falls back to whole keys only on a tie.
    pub(crate) fn sort_prefix(&self) -> u128 {
        let bytes = self.to_bytes();
        let mut prefix = [0u8; 16];
        let n = bytes.len().min(16);
        prefix[..n].copy_from_slice(&bytes[..n]);
        u128::from_be_bytes(prefix)
    }

    /// The canonical bytes, as storage keeps them.
    pub fn to_bytes(&self) -> KeyBytes {
        let mut out = KeyBytes {
            len: 0,
            bytes: [0; MAX_KEY_BYTES],
        };
        let mut put = |part: &[u8]| {
            let at = out.len as usize;
            out.bytes[at..at + part.len()].copy_from_slice(part);
            out.len += part.len() as u8;
        };
        match self {
            StateKey::Account(a) => {
                put(&[TAG_ACCOUNT]);
                put(&a.0);
            }
            StateKey::Holding(a, pool) => {
                put(&[TAG_HOLDING]);
                put(&a.0);
                put(&pool.to_be_bytes());
            }
            StateKey::Storage(a) => {
                put(&[TAG_STORAGE]);
                put(&a.0);
            }
            StateKey::Pool(id) => {
                put(&[TAG_POOL]);
                put(&id.to_be_bytes());
            }
            StateKey::Collection(id) => {
                put(&[TAG_COLLECTION]);
                put(&id.to_be_bytes());
            }
            StateKey::Token(collection, id) => {
                put(&[TAG_TOKEN]);
                put(&collection.to_be_bytes());
                put(&id.to_be_bytes());
            }
            StateKey::Code(a) => {
                put(&[TAG_CODE]);
                put(&a.0);
            }
            StateKey::Slot(a, index) => {
                put(&[TAG_SLOT]);
                put(&a.0);
                put(index);
            }
        }
        out
    }

    /// Reads bytes written by [`StateKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let malformed = || ExecutionError::MalformedKey { key: hex_of(bytes) };
        let (&tag, rest) = bytes.split_first().ok_or_else(malformed)?;
        let address = |b: &[u8]| -> Option<Address> { Some(Address(b.try_into().ok()?)) };
        let u32_at = |b: &[u8]| -> Option<u32> { Some(u32::from_be_bytes(b.try_into().ok()?)) };
        const A: usize = ADDRESS_BYTES;
        let key = match (tag, rest.len()) {
            (TAG_ACCOUNT, A) => address(rest).map(StateKey::Account),
            (TAG_HOLDING, 24) => {
                address(&rest[..A]).and_then(|a| Some(StateKey::Holding(a, u32_at(&rest[A..])?)))
            }
            (TAG_STORAGE, A) => address(rest).map(StateKey::Storage),
            (TAG_POOL, 4) => u32_at(rest).map(StateKey::Pool),
            (TAG_COLLECTION, 4) => u32_at(rest).map(StateKey::Collection),
            (TAG_TOKEN, 12) => u32_at(&rest[..4]).and_then(|c| {
                Some(StateKey::Token(
                    c,
                    u64::from_be_bytes(rest[4..].try_into().ok()?),
                ))
            }),
            (TAG_CODE, A) => address(rest).map(StateKey::Code),
            (TAG_SLOT, 52) => address(&rest[..A])
                .and_then(|a| Some(StateKey::Slot(a, rest[A..].try_into().ok()?))),
            _ => None,
        };
        key.ok_or_else(malformed)
    }

    /// Decodes the value stored under this key.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<StateValue> {
        let value = match self {
            StateKey::Account(_) => codec::decode::<Account, 25>(bytes).map(StateValue::Account),
            StateKey::Holding(..) => codec::decode::<u64, 8>(bytes).map(StateValue::Holding),
            StateKey::Storage(_) => codec::decode::<[u8; 32], 32>(bytes).map(StateValue::Storage),
            StateKey::Pool(_) => codec::decode::<Pool, 16>(bytes).map(StateValue::Pool),
            StateKey::Collection(_) => {
                codec::decode::<Collection, 8>(bytes).map(StateValue::Collection)
            }
            StateKey::Token(..) => {
                codec::decode::<Address, ADDRESS_BYTES>(bytes).map(StateValue::Token)
            }
            StateKey::Code(_) if bytes.len() <= MAX_CODE_BYTES => {
                Ok(StateValue::Code(crate::code::decoded(bytes)))
            }
            StateKey::Code(_) => Err(ordo_types::Error::Malformed(format!(
                "{} bytes of code, more than {MAX_CODE_BYTES}",
                bytes.len()
            ))),
            StateKey::Slot(..) => codec::decode::<[u8; 32], 32>(bytes).map(StateValue::Slot),
        };
        value.map_err(|source| ExecutionError::MalformedValue {
            key: hex_of(&self.to_bytes()),
            source,
        })
    }
}

impl StateValue {
    /// The canonical bytes, as storage keeps them under this value's key.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StateValue::Account(a) => codec::encode(a),
            StateValue::Holding(h) => codec::encode(h),
            StateValue::Storage(s) => codec::encode(s),
            StateValue::Pool(p) => codec::encode(p),
            StateValue::Collection(c) => codec::encode(c),
            StateValue::Token(owner) => codec::encode(owner),
            StateValue::Code(code) => code.bytes().to_vec(),
            StateValue::Slot(word) => codec::encode(word),
        }
    }

    /// Whether this value may be stored under `key`.
    pub fn fits(&self, key: &StateKey) -> bool {
        matches!(
            (key, self),
            (StateKey::Account(_), StateValue::Account(_))
                | (StateKey::Holding(..), StateValue::Holding(_))
                | (StateKey::Storage(_), StateValue::Storage(_))
                | (StateKey::Pool(_), StateValue::Pool(_))
                | (StateKey::Collection(_), StateValue::Collection(_))
                | (StateKey::Token(..), StateValue::Token(_))
                | (StateKey::Code(_), StateValue::Code(_))
                | (StateKey::Slot(..), StateValue::Slot(_))
        )
    }
}

/// Reads and decodes one key from `view`.
pub(crate) fn read_key(view: &dyn StateView, key: &StateKey) -> Result<Option<StateValue>> {
    let bytes = key.to_bytes();
    match view.get(&bytes) {
        Ok(None) => Ok(None),
        Ok(Some(value)) => key.decode_value(&value).map(Some),
        Err(source) => Err(ExecutionError::StateRead {
            key: hex_of(&bytes),
            source,
        }),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_key() -> impl Strategy<Value = StateKey> {
        let addr = any::<[u8; 20]>().prop_map(Address);
        prop_oneof![
            addr.clone().prop_map(StateKey::Account),
            (addr.clone(), any::<u32>()).prop_map(|(a, p)| StateKey::Holding(a, p)),
            addr.clone().prop_map(StateKey::Storage),
            any::<u32>().prop_map(StateKey::Pool),
            any::<u32>().prop_map(StateKey::Collection),
            (any::<u32>(), any::<u64>()).prop_map(|(c, t)| StateKey::Token(c, t)),
            addr.clone().prop_map(StateKey::Code),
            (addr.clone(), any::<[u8; 32]>()).prop_map(|(a, i)| StateKey::Slot(a, i)),
            // Slots of one contract that differ in one byte: the packing must tell them apart.
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| {
                let mut index = [0; 32];
                index[at % 32] = b;
                StateKey::Slot(Address([1; 20]), index)
            }),
        ]
    }

    proptest! {
        #[test]
        fn key_bytes_round_trip_and_order_matches(a in any_key(), b in any_key()) {
            prop_assert_eq!(StateKey::from_bytes(&a.to_bytes()).unwrap(), a);
            prop_assert_eq!(a.cmp(&b), (*a.to_bytes()).cmp(&*b.to_bytes()));
            prop_assert_eq!(a == b, a.packed() == b.packed());
            if a.sort_prefix() != b.sort_prefix() {
                prop_assert_eq!(a.sort_prefix().cmp(&b.sort_prefix()), a.cmp(&b));
            }
        }

        #[test]
        fn malformed_keys_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            // Never panics; accepted keys re-encode to the same bytes.
            if let Ok(key) = StateKey::from_bytes(&bytes) {
                prop_assert_eq!(&*key.to_bytes(), &bytes[..]);
            }
        }
    }

    #[test]
    fn values_round_trip_under_their_keys() {
        let a = Address([7; 20]);
        let cases = [
            (
                StateKey::Account(a),
                StateValue::Account(Account {
                    balance: 5,
                    nonce: 9,
                    contract: true,
                }),
            ),
            (StateKey::Holding(a, 3), StateValue::Holding(11)),
            (StateKey::Storage(a), StateValue::Storage([3; 32])),
            (
                StateKey::Pool(1),
                StateValue::Pool(Pool {
                    reserve_a: 1,
                    reserve_b: 2,
                }),
            ),
            (
                StateKey::Collection(2),
                StateValue::Collection(Collection { minted: 4 }),
            ),
            (StateKey::Token(2, 4), StateValue::Token(a)),
            (
                StateKey::Code(a),
                StateValue::Code(Code::new(&[0x60, 0x00])),
            ),
            (StateKey::Slot(a, [9; 32]), StateValue::Slot([4; 32])),
        ];
        for (key, value) in cases {
            assert!(value.fits(&key));
            assert_eq!(key.decode_value(&value.to_bytes()).unwrap(), value);
            if !matches!(key, StateKey::Code(_)) {
                assert!(key.decode_value(&[1, 2, 3]).is_err());
            }
        }
        let huge = vec![0; MAX_CODE_BYTES + 1];
        assert!(StateKey::Code(a).decode_value(&huge).is_err());
    }
}
