//! Contract code: the analysed form the EVM runs, its canonical bytes, and decoded code
//! remembered by its bytes.
//!
//! Decoding stored code hashes it (Keccak-256, which `EXTCODEHASH` reports) and finds its
//! jump destinations: for an example contract, more work than one token transfer. Every
//! block reads each contract it touches from storage as bytes again, so without a memo a
//! block of mints over 1,000 collections spent about a tenth of its time decoding code
//! (perf, in-order exec-bench).
//!
//! Invariant: a remembered entry is the decoding of exactly its bytes (a lookup compares
//! them), so the memo cannot change what executes; a colliding or hostile workload only
//! costs decoding again. Bounded: when full, it starts over.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use bincode::{Decode, Encode};
use parking_lot::Mutex;
use revm::bytecode::Bytecode;
use revm::primitives::{Bytes, B256};
use rustc_hash::{FxBuildHasher, FxHashMap};

/// The largest contract code (EIP-170); longer stored code is malformed.
pub const MAX_CODE_BYTES: usize = 24_576;

/// A contract's runtime code, analysed once (jump destinations) and shared by reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code {
    bytecode: Bytecode,
    hash: B256,
}

impl Code {
    pub fn new(bytes: &[u8]) -> Self {
        let bytecode = Bytecode::new_raw(Bytes::copy_from_slice(bytes));
        let hash = bytecode.hash_slow();
        Code { bytecode, hash }
    }

    pub fn bytecode(&self) -> &Bytecode {
        &self.bytecode
    }

    /// Keccak-256 of the raw bytes, as `EXTCODEHASH` reports it.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    pub fn bytes(&self) -> &[u8] {
        self.bytecode.original_byte_slice()
    }
}

impl Encode for Code {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.bytes().encode(encoder)
    }
}

impl<C> Decode<C> for Code {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let bytes = Vec::<u8>::decode(decoder)?;
        if bytes.len() > MAX_CODE_BYTES {
            return Err(bincode::error::DecodeError::Other(
                "code longer than EIP-170 allows",
            ));
        }
        Ok(decoded(&bytes))
    }
}

bincode::impl_borrow_decode!(Code);

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
