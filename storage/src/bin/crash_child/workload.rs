#![allow(dead_code)]

//! The crash test's deterministic workload, shared by the child process that writes it
//! and the test that checks what survived: block `h`'s contents are a pure function of
//! `h`, so the test can replay heights 1..=h and know the exact expected state.

use std::collections::BTreeMap;

use ordo_types::{Hash32, SeededRng};

/// Distinct state keys; small so that blocks overwrite and delete each other's entries.
pub const KEY_SPACE: u64 = 400;
pub const WRITES_PER_BLOCK: usize = 40;
pub const TXS_PER_BLOCK: u32 = 20;
/// Blocks, certificates and batches of this many recent heights survive pruning.
pub const RETAIN_HEIGHTS: u64 = 32;

pub fn block_hash(height: u64) -> Hash32 {
    Hash32::digest(b"ordo/crash-test/block\0", &height.to_le_bytes())
}

pub fn tx_hash(height: u64, index: u32) -> Hash32 {
    Hash32::digest_parts(
        b"ordo/crash-test/tx\0",
        &[&height.to_le_bytes(), &index.to_le_bytes()],
    )
}

pub fn receipt(height: u64, index: u32) -> Vec<u8> {
    format!("receipt {height}/{index}").into_bytes()
}

pub fn status(height: u64, index: u32) -> u8 {
    ((height + u64::from(index)) % 3) as u8
}

/// Block `height`'s write set: `None` deletes the key.
pub fn block_writes(height: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut rng = SeededRng::new(height.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut writes = BTreeMap::new();
    for _ in 0..WRITES_PER_BLOCK {
        let key = format!("key/{:05}", rng.next_u64() % KEY_SPACE).into_bytes();
        let value = if rng.next_u64() % 8 == 0 {
            None
        } else {
            let len = 8 + (rng.next_u64() % 56) as usize;
            let fill = rng.next_u64().to_le_bytes();
            Some((0..len).map(|i| fill[i % 8] ^ i as u8).collect())
        };
        writes.insert(key, value);
    }
    writes
}

/// The state after applying heights `from..=to` to `state`.
#[allow(dead_code)]
pub fn apply(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, from: u64, to: u64) {
    for height in from..=to {
        for (key, value) in block_writes(height) {
            match value {
                Some(value) => state.insert(key, value),
                None => state.remove(&key),
            };
        }
    }
}
