//! Decoded contract code, remembered by its bytes.
//!
//! Decoding stored code hashes it (Keccak-256, which `EXTCODEHASH` reports) and finds its
//! jump destinations: for an example contract, more work than one token transfer. Every
//! block reads each contract it touches from storage as bytes again, so without a memo a
//! block of mints over 1,000 collections spent a seventh of its time decoding code.
//!
//! Invariant: an entry is the decoding of exactly its bytes (a lookup compares them), so
//! the memo cannot change what executes; a colliding or hostile workload only costs
//! decoding again. Bounded: when full, it starts over.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::state::Code;

/// Contracts remembered: a block rarely touches more, and at the EIP-170 size limit they
/// hold at most 24 MiB (a few MiB for contracts like the examples).
const MEMO_ENTRIES: usize = 1_024;

static MEMO: LazyLock<Mutex<FxHashMap<u64, Code>>> =
    LazyLock::new(|| Mutex::new(FxHashMap::default()));

/// The decoding of `bytes`, from the memo when it holds them.
pub(crate) fn decoded(bytes: &[u8]) -> Code {
    let hash = FxBuildHasher.hash_one(bytes);
    if let Some(code) = MEMO.lock().get(&hash).filter(|c| c.bytes() == bytes) {
        return code.clone();
    }
    let code = Code::new(bytes);
    let mut memo = MEMO.lock();
    if memo.len() >= MEMO_ENTRIES {
        memo.clear();
    }
    memo.insert(hash, code.clone());
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_decoding_is_the_decoding_of_the_same_bytes() {
        let a = [0x60, 0x01, 0x60, 0x02, 0x01, 0x5b, 0x00];
        let b = [0x60, 0x01, 0x56, 0x5b];
        assert_eq!(decoded(&a), Code::new(&a));
        assert_eq!(decoded(&a), Code::new(&a));
        assert_eq!(decoded(&b), Code::new(&b));
        assert_ne!(decoded(&a), decoded(&b));
    }
}
