//! Block preparation, shared by both executors: sender addresses, the block's declared keys
//! interned to dense indices, per-key chains of declaring transactions, and the keys'
//! values before the block.
//!
//! Invariant: for transaction `j` and slot `s`, `prev[s]` is the highest transaction below
//! `j` that declares the same key (with its slot), or [`NONE`]. Following `prev` from the
//! last declarer of a key therefore visits every transaction that may write it, in
//! descending order; that chain is the parallel executor's multi-version memory for the key.

use ordo_types::{Address, SignedTransaction, StateView};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{ExecutionError, Result};
use crate::state::{read_key, PackedKey, StateKey, StateValue};
use crate::stats::PhaseTimes;
use crate::vm::{declared_keys, SLOTS};

/// "No transaction" in index fields.
pub(crate) const NONE: u32 = u32::MAX;
/// The largest block the executors take (transaction indices are 32-bit).
pub const MAX_BLOCK_TRANSACTIONS: usize = 1 << 24;

/// A transaction's place in the block's key chains.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxKeys {
    pub sender: Address,
    /// Dense key index per slot, [`NONE`] for an unused slot.
    pub keys: [u32; SLOTS],
    /// The previous declarer of each slot's key, [`NONE`] if this is the first.
    pub prev: [u32; SLOTS],
    pub prev_slot: [u8; SLOTS],
}

/// Everything the executors need before running transactions.
pub(crate) struct Prepared {
    pub txs: Vec<TxKeys>,
    /// Dense index to key.
    pub keys: Vec<StateKey>,
    /// Each key's value before the block.
    pub base: Vec<Option<StateValue>>,
    /// Each key's last declarer and its slot.
    pub last: Vec<(u32, u8)>,
    /// Key to dense index.
    pub index: FxHashMap<PackedKey, u32>,
    /// Time spent in each step of preparation.
    pub phases: PhaseTimes,
}

/// Prepares `txs`; with a pool, the independent parts run on it.
pub(crate) fn prepare(
    view: &dyn StateView,
    txs: &[SignedTransaction],
    parallel: bool,
) -> Result<Prepared> {
    if txs.len() >= MAX_BLOCK_TRANSACTIONS {
        return Err(ExecutionError::BlockTooLarge {
            len: txs.len(),
            max: MAX_BLOCK_TRANSACTIONS,
        });
    }
    let mut phases = PhaseTimes::default();
    let started = std::time::Instant::now();
    let declare = |t: &SignedTransaction| {
        let sender = t.sender_address();
        (sender, declared_keys(t, sender))
    };
    let declared: Vec<(Address, [Option<StateKey>; SLOTS])> = if parallel {
        txs.par_iter().with_min_len(256).map(declare).collect()
    } else {
        txs.iter().map(declare).collect()
    };

    phases.declare = started.elapsed();
    let started = std::time::Instant::now();
    let mut index: FxHashMap<PackedKey, u32> =
        FxHashMap::with_capacity_and_hasher(txs.len() * 2, Default::default());
    let mut keys = Vec::with_capacity(txs.len() * 2);
    let mut last: Vec<(u32, u8)> = Vec::with_capacity(txs.len() * 2);
    let mut prepared_txs = Vec::with_capacity(txs.len());
    for (j, (sender, declared)) in declared.iter().enumerate() {
        let mut t = TxKeys {
            sender: *sender,
            keys: [NONE; SLOTS],
            prev: [NONE; SLOTS],
            prev_slot: [0; SLOTS],
        };
        for (s, key) in declared.iter().enumerate() {
            let Some(key) = key else { continue };
            let k = *index.entry(key.packed()).or_insert_with(|| {
                keys.push(*key);
                last.push((NONE, 0));
                (keys.len() - 1) as u32
            });
            t.keys[s] = k;
            (t.prev[s], t.prev_slot[s]) = last[k as usize];
            last[k as usize] = (j as u32, s as u8);
        }
        prepared_txs.push(t);
    }

    phases.intern = started.elapsed();
    let started = std::time::Instant::now();
    let base: Vec<Option<StateValue>> = if parallel {
        keys.par_iter()
            .with_min_len(256)
            .map(|k| read_key(view, k))
            .collect::<Result<_>>()?
    } else {
        keys.iter()
            .map(|k| read_key(view, k))
            .collect::<Result<_>>()?
    };
    phases.load = started.elapsed();
    Ok(Prepared {
        phases,
        txs: prepared_txs,
        keys,
        base,
        last,
        index,
    })
}
