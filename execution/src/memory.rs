//! An in-memory state: a hash map of encoded keys to encoded values.
//!
//! For tests and benchmarks; the node reads state from storage through the same
//! [`StateView`] trait. Short keys and values (all of this crate's) are stored inline in
//! the table, so that a read costs one cache miss rather than three.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use ordo_types::{StateAccumulator, StateView};
use rustc_hash::FxHashMap;

const INLINE: usize = 40;

/// Bytes held inline when short, on the heap otherwise; hashes and compares as `[u8]`.
#[derive(Debug, Clone)]
enum Bytes {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Bytes {
    fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Bytes::Inline {
                len: bytes.len() as u8,
                buf,
            }
        } else {
            Bytes::Heap(bytes.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Inline { len, buf } => &buf[..*len as usize],
            Bytes::Heap(b) => b,
        }
    }
}

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

use crate::genesis::Genesis;
use crate::output::WriteSet;

/// A whole state held in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    map: FxHashMap<Bytes, Bytes>,
}

impl MemoryState {
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut state = MemoryState::default();
        for (k, v) in genesis.to_bytes() {
            state.insert(k, v);
        }
        state
    }

    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(Bytes::new(&key), Bytes::new(&value));
    }

    /// Writes a block's write set.
    pub fn apply(&mut self, write_set: &WriteSet) {
        for (k, v) in write_set.to_bytes() {
            self.insert(k, v);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The accumulator recomputed from every entry, to check incremental updates against.
    pub fn accumulator(&self) -> StateAccumulator {
        let mut acc = StateAccumulator::new();
        for (k, v) in &self.map {
            acc.insert(k.as_slice(), v.as_slice());
        }
        acc
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &[u8]) -> ordo_types::Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).map(|v| v.as_slice().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_entries_read_back() {
        let mut state = MemoryState::default();
        state.insert(b"k".to_vec(), vec![7; 3]);
        state.insert(vec![1; 100], vec![9; 200]);
        assert_eq!(state.get(b"k").unwrap(), Some(vec![7; 3]));
        assert_eq!(state.get(&[1; 100]).unwrap(), Some(vec![9; 200]));
        assert_eq!(state.get(b"missing").unwrap(), None);
        state.insert(b"k".to_vec(), vec![]);
        assert_eq!(state.get(b"k").unwrap(), Some(vec![]));
        assert_eq!(state.len(), 2);
    }
}
