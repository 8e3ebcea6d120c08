//! State as execution and storage share it: opaque byte keys and values, the read-only
//! view the executor reads through, and the state commitment.
//!
//! The commitment is a lattice hash (LtHash, as in Bellare–Micciancio and Lewi et al.,
//! the construction Solana also adopted): every `(key, value)` entry is expanded by
//! BLAKE3's extendable output into 1,024 lanes of 16 bits, and the state's accumulator is
//! the lane-wise sum, wrapping, of all its entries. Sums commute, so the accumulator is
//! updated from a block's write set alone (remove each old entry, insert each new one),
//! in any order and in parallel, and equals the accumulator recomputed from scratch. The
//! state root is BLAKE3 of the accumulator. The accumulator proves nothing about single
//! entries; it exists so that validators detect diverging state cheaply.
//!
//! Families. A key's first byte says what kind of state it holds ([`StateFamily`]):
//! execution picks it, storage keeps each family in a column family of its own. Both
//! read the tags from here, so they cannot disagree on them.

use crate::{Error, Hash32, Result};

/// Lanes of the lattice hash; 1,024 lanes of 16 bits give well over 128 bits of security.
pub const LANES: usize = 1024;
const ELEMENT_DOMAIN: &[u8] = b"ordo/state-entry\0";
const ROOT_DOMAIN: &[u8] = b"ordo/state-root\0";

/// The first byte of every contract-code key.
pub const CODE_KEY_TAG: u8 = 0x20;
/// The first byte of every contract-storage key.
pub const SLOT_KEY_TAG: u8 = 0x21;

/// What kind of state a key holds, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateFamily {
    /// Accounts and the native payloads' records: small, rewritten all the time.
    Native,
    /// Contract code: written once when a contract is created, read by every call.
    Code,
    /// Contract storage slots: 32-byte words, the bulk of a contract chain's state.
    Slots,
}

impl StateFamily {
    /// Every family, in the byte order of their keys' tags.
    pub const ALL: [StateFamily; 3] = [StateFamily::Native, StateFamily::Code, StateFamily::Slots];

    pub fn of(key: &[u8]) -> Self {
        match key.first() {
            Some(&CODE_KEY_TAG) => StateFamily::Code,
            Some(&SLOT_KEY_TAG) => StateFamily::Slots,
            _ => StateFamily::Native,
        }
    }
}

/// Read access to state as of some height. Implemented over RocksDB by storage and over
/// maps in tests; the executor never sees which.
pub trait StateView: Send + Sync {
    /// The value stored under `key`, or `None` if there is none. An error means the
    /// value could not be read (I/O, corruption) and the block must not be executed.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
}

impl StateView for std::collections::HashMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(std::collections::HashMap::get(self, key).cloned())
    }
}

impl StateView for std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(std::collections::BTreeMap::get(self, key).cloned())
    }
}

/// The homomorphic accumulator behind the state root. See the module note.
#[derive(Clone, PartialEq, Eq)]
pub struct StateAccumulator {
    lanes: Box<[u16; LANES]>,
}

impl Default for StateAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StateAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateAccumulator(root {})", self.root())
    }
}

impl StateAccumulator {
    /// The accumulator of the empty state.
    pub fn new() -> Self {
        StateAccumulator {
            lanes: Box::new([0; LANES]),
        }
    }

    /// Adds the entry `key = value`.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let element = expand(key, value);
        for (lane, e) in self.lanes.iter_mut().zip(element.iter()) {
            *lane = lane.wrapping_add(*e);
        }
    }

    /// Takes out the entry `key = value`, which must have been inserted.
    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let element = expand(key, value);
        for (lane, e) in self.lanes.iter_mut().zip(element.iter()) {
            *lane = lane.wrapping_sub(*e);
        }
    }

    /// Adds every entry of `other`; partial accumulators built on several threads
    /// combine this way.
    pub fn combine(&mut self, other: &StateAccumulator) {
        for (lane, o) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *lane = lane.wrapping_add(*o);
        }
    }

    /// Takes out every entry of `other`.
    pub fn subtract(&mut self, other: &StateAccumulator) {
        for (lane, o) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *lane = lane.wrapping_sub(*o);
        }
    }

    /// The state root: a digest of the accumulator.
    pub fn root(&self) -> Hash32 {
        Hash32::digest(ROOT_DOMAIN, &self.to_bytes())
    }

    /// The accumulator's 2,048 bytes, lanes little-endian, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    /// Reads bytes written by [`StateAccumulator::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != LANES * 2 {
            return Err(Error::Malformed(format!(
                "state accumulator must be {} bytes, got {}",
                LANES * 2,
                bytes.len()
            )));
        }
        let mut lanes = Box::new([0u16; LANES]);
        for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
        }
        Ok(StateAccumulator { lanes })
    }
}

/// One entry's lanes: BLAKE3's extendable output over the length-prefixed key and value.
fn expand(key: &[u8], value: &[u8]) -> [u16; LANES] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(ELEMENT_DOMAIN);
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    let mut bytes = [0u8; LANES * 2];
    hasher.finalize_xof().fill(&mut bytes);
    let mut lanes = [0u16; LANES];
    for (lane, chunk) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([chunk[0], chunk[1]]);
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_and_updates_match_recomputation() {
        let mut a = StateAccumulator::new();
        a.insert(b"k1", b"v1");
        a.insert(b"k2", b"v2");
        let mut b = StateAccumulator::new();
        b.insert(b"k2", b"v2");
        b.insert(b"k1", b"v1");
        assert_eq!(a.root(), b.root());

        // Update k1 incrementally and compare with a fresh computation.
        a.remove(b"k1", b"v1");
        a.insert(b"k1", b"v9");
        let mut fresh = StateAccumulator::new();
        fresh.insert(b"k1", b"v9");
        fresh.insert(b"k2", b"v2");
        assert_eq!(a, fresh);
        assert_ne!(a.root(), b.root());
    }

    #[test]
    fn key_value_boundary_is_unambiguous() {
        let mut a = StateAccumulator::new();
        a.insert(b"ab", b"c");
        let mut b = StateAccumulator::new();
        b.insert(b"a", b"bc");
        assert_ne!(a.root(), b.root());
    }

    #[test]
    fn partial_accumulators_combine() {
        let mut whole = StateAccumulator::new();
        let mut left = StateAccumulator::new();
        let mut right = StateAccumulator::new();
        for i in 0u32..20 {
            whole.insert(&i.to_le_bytes(), b"x");
            if i % 2 == 0 { &mut left } else { &mut right }.insert(&i.to_le_bytes(), b"x");
        }
        left.combine(&right);
        assert_eq!(left, whole);
        left.subtract(&right);
        assert_ne!(left, whole);
    }

    #[test]
    fn bytes_round_trip() {
        let mut a = StateAccumulator::new();
        a.insert(b"k", b"v");
        assert_eq!(StateAccumulator::from_bytes(&a.to_bytes()).unwrap(), a);
        assert!(StateAccumulator::from_bytes(&[0; 7]).is_err());
    }
}
