//! An in-memory state: a hash map of encoded keys to encoded values.
//!
//! For tests and benchmarks; the node reads state from storage through the same
//! [`StateView`] trait.

use ordo_types::{StateAccumulator, StateView};
use rustc_hash::FxHashMap;

use crate::genesis::Genesis;
use crate::output::WriteSet;

/// A whole state held in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    map: FxHashMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    pub fn from_genesis(genesis: &Genesis) -> Self {
        MemoryState {
            map: genesis.to_bytes().into_iter().collect(),
        }
    }

    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(key, value);
    }

    /// Writes a block's write set.
    pub fn apply(&mut self, write_set: &WriteSet) {
        self.map.extend(write_set.to_bytes());
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
            acc.insert(k, v);
        }
        acc
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &[u8]) -> ordo_types::Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }
}
