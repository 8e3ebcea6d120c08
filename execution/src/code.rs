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
///
/// Invariant: `bytecode` is legacy code as revm's analysis makes it (padded bytes and
/// their jump table), made by [`Code::new`] or copied from such by [`Code::unshared`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code {
    bytecode: Bytecode,
    hash: B256,
}

impl Code {
    /// Analyses `bytes` as legacy code, whatever they hold. Contracts run under Cancun
    /// rules, where no code is a delegation (EIP-7702 came later) and none starting with
    /// 0xEF can be created (EIP-3541); revm's `new_raw` would read bytes starting 0xEF01
    /// as a delegation and panic on a malformed one, and stored or synced bytes (a peer's
    /// snapshot chunk) must never panic a validator.
    pub fn new(bytes: &[u8]) -> Self {
        let bytecode = Bytecode::new_legacy(Bytes::copy_from_slice(bytes));
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

    /// The same code in memory of its own, reference count included. Every clone of a
    /// `Code` (each contract call clones it several times) changes one shared count; when
    /// the parallel engine's workers run calls of one contract on two cores, that count's
    /// cache line moves between them at each clone and drop, which made the EVM itself
    /// run a sixth slower than in order (perf, `erc20`, 2 threads). A worker runs on its
    /// own copy instead.
    pub(crate) fn unshared(&self) -> Code {
        let original = &self.bytecode;
        let bytecode = match original.legacy_jump_table() {
            Some(jumps) if !original.is_empty() => {
                // SAFETY: the bytes, with their padding, and the jump table are copied
                // unchanged from code revm's legacy analysis produced (the type's
                // invariant), which is what `new_analyzed` requires.
                unsafe {
                    Bytecode::new_analyzed(
                        Bytes::copy_from_slice(original.bytecode()),
                        original.len(),
                        jumps.clone(),
                    )
                }
            }
            _ => original.clone(),
        };
        Code {
            bytecode,
            hash: self.hash,
        }
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

    #[test]
    fn any_bytes_decode_as_legacy_code_without_a_panic() {
        // A malformed delegation prefix (revm's `new_raw` panics on it), a well-formed
        // one, and a lone 0xEF.
        let mut delegation = vec![0xef, 0x01, 0x00];
        delegation.extend([7; 20]);
        for bytes in [vec![0xef, 0x01, 0x00], delegation, vec![0xef]] {
            // As a stored or synced value is read.
            let key = crate::state::StateKey::Code(ordo_types::Address([1; 20]));
            let crate::state::StateValue::Code(code) = key.decode_value(&bytes).unwrap() else {
                panic!("code decodes as code");
            };
            assert_eq!(code.bytes(), &bytes[..]);
            assert!(code.bytecode().is_legacy());
            assert_eq!(code.hash(), revm::primitives::keccak256(&bytes));
        }
    }

    #[test]
    fn an_unshared_copy_is_the_same_code_in_memory_of_its_own() {
        // PUSH1 4, JUMP, INVALID, JUMPDEST, PUSH32 (cut short: analysis pads it), STOP.
        let bytes = [0x60, 0x04, 0x56, 0xfe, 0x5b, 0x7f, 0x01];
        let code = decoded(&bytes);
        let copy = code.unshared();
        assert_eq!(copy, code);
        assert_eq!(copy.hash(), code.hash());
        assert_eq!(copy.bytes(), &bytes);
        assert_eq!(
            copy.bytecode().bytecode(),
            code.bytecode().bytecode(),
            "padding"
        );
        assert_eq!(
            copy.bytecode().legacy_jump_table(),
            code.bytecode().legacy_jump_table()
        );
        assert!(copy.bytecode().legacy_jump_table().unwrap().is_valid(4));
        assert_ne!(
            copy.bytecode().bytecode_ptr(),
            code.bytecode().bytecode_ptr()
        );
    }
}
