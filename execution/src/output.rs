//! A block's results: receipts, the sorted write set with each key's previous value, the
//! fee sink's credit, and the state root updated from the write set alone; and
//! [`finalize`], which builds them from the per-key outcome of a run ([`InOrderRun`],
//! whichever executor produced it).
//!
//! Invariant: `changes` holds each written key once, sorted by key (equal to byte order of
//! the encoded keys), with the value before the block (`old`) and after it (`new`); both
//! executors build it with [`finalize`], so equal per-key results give equal bytes.

use bincode::{Decode, Encode};
use ordo_types::{Address, Amount, Hash32, StateAccumulator, StateView};
use rayon::prelude::*;

use crate::error::Result;
use crate::prepare::Prepared;
use crate::receipt::Receipt;
use crate::state::{read_key, Account, StateKey, StateValue};
use crate::stats::ExecutionStats;
use crate::vm::ChainConfig;

/// One written key with its value before and after the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: StateKey,
    pub old: Option<StateValue>,
    pub new: StateValue,
}

/// Receipts and state changes of an executed block, before the state root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutedBlock {
    /// One per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Sorted by key; see the module note.
    pub changes: Vec<Change>,
    /// Total fees credited to the fee sink at block end.
    pub fees: Amount,
    pub stats: ExecutionStats,
}

/// The keys a block wrote with their new values, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct WriteSet {
    pub entries: Vec<(StateKey, StateValue)>,
}

impl WriteSet {
    /// The entries as storage writes them: (key bytes, value bytes), in key order.
    pub fn to_bytes(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.to_bytes().to_vec(), v.to_bytes()))
            .collect()
    }
}

/// Everything a block's execution hands to storage and consensus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutput {
    pub receipts: Vec<Receipt>,
    pub write_set: WriteSet,
    /// The state accumulator after the block; the next block's parent.
    pub accumulator: StateAccumulator,
    /// `accumulator.root()`.
    pub state_root: Hash32,
    pub stats: ExecutionStats,
}

impl ExecutedBlock {
    pub fn write_set(&self) -> WriteSet {
        WriteSet {
            entries: self
                .changes
                .iter()
                .map(|c| (c.key, c.new.clone()))
                .collect(),
        }
    }

    /// The accumulator after this block, given the one before it.
    pub fn accumulator(&self, parent: &StateAccumulator, parallel: bool) -> StateAccumulator {
        apply_changes(parent, &self.changes, parallel)
    }

    /// Adds the state root to the results.
    pub fn into_output(self, parent: &StateAccumulator, parallel: bool) -> BlockOutput {
        let accumulator = self.accumulator(parent, parallel);
        BlockOutput {
            write_set: self.write_set(),
            state_root: accumulator.root(),
            accumulator,
            receipts: self.receipts,
            stats: self.stats,
        }
    }
}

/// Updates `parent` with `changes`: each old entry taken out, each new one added.
pub fn apply_changes(
    parent: &StateAccumulator,
    changes: &[Change],
    parallel: bool,
) -> StateAccumulator {
    let fold = |chunk: &[Change]| {
        let mut delta = StateAccumulator::new();
        for c in chunk {
            let key = c.key.to_bytes();
            if let Some(old) = &c.old {
                delta.remove(&key, &old.to_bytes());
            }
            delta.insert(&key, &c.new.to_bytes());
        }
        delta
    };
    let delta = if parallel {
        changes
            .par_chunks(128)
            .map(fold)
            .reduce(StateAccumulator::new, |mut a, b| {
                a.combine(&b);
                a
            })
    } else {
        fold(changes)
    };
    let mut next = parent.clone();
    next.combine(&delta);
    next
}

/// The per-key outcome of running a prepared block, in either executor.
pub(crate) struct InOrderRun {
    /// Final value of each key the block wrote, by dense index.
    pub written: Vec<Option<StateValue>>,
    pub tokens: Vec<(u32, u64, Address)>,
    pub receipts: Vec<Receipt>,
}

/// Builds the block's results from a run's final values, minted tokens and receipts, and
/// credits the fee sink.
pub(crate) fn finalize(
    view: &dyn StateView,
    config: &ChainConfig,
    prep: &Prepared,
    run: InOrderRun,
    stats: ExecutionStats,
    parallel: bool,
) -> Result<ExecutedBlock> {
    let started = std::time::Instant::now();
    let mut stats = stats;
    let InOrderRun {
        mut written,
        tokens,
        receipts,
    } = run;
    let fees = receipts
        .iter()
        .fold(0, |sum: Amount, r| sum.saturating_add(r.fee));
    let mut sink_change = None;
    if fees > 0 {
        let sink = StateKey::Account(config.fee_sink);
        let credit = |value: Option<StateValue>| credit_fees(value, fees);
        match prep.index.get(&sink.packed()) {
            Some(&k) => {
                let k = k as usize;
                written[k] = Some(credit(written[k].take().or_else(|| prep.base[k].clone())));
            }
            None => {
                let old = read_key(view, &sink)?;
                sink_change = Some(Change {
                    key: sink,
                    new: credit(old.clone()),
                    old,
                });
            }
        }
    }
    let change = |(k, new): (usize, &Option<StateValue>)| {
        new.as_ref().map(|new| Change {
            key: prep.keys[k],
            old: prep.base[k].clone(),
            new: new.clone(),
        })
    };
    let mut changes: Vec<Change> = if parallel {
        written
            .par_iter()
            .with_min_len(1_024)
            .enumerate()
            .filter_map(change)
            .collect()
    } else {
        written.iter().enumerate().filter_map(change).collect()
    };
    // A token key is fresh: ids come from the collection's counter, which only grows.
    changes.extend(tokens.into_iter().map(|(c, id, owner)| Change {
        key: StateKey::Token(c, id),
        old: None,
        new: StateValue::Token(owner),
    }));
    changes.extend(sink_change);
    sort_changes(&mut changes, parallel);
    stats.phases.finalize = started.elapsed();
    Ok(ExecutedBlock {
        receipts,
        changes,
        fees,
        stats,
    })
}

/// The fee sink's account `value` with `fees` credited.
pub(crate) fn credit_fees(value: Option<StateValue>, fees: Amount) -> StateValue {
    let mut account = match value {
        Some(StateValue::Account(a)) => a,
        _ => Account::default(),
    };
    // Saturating: the sink's balance is bounded by the total supply (genesis checks it),
    // and a saturated credit is still the same on every validator.
    account.balance = account.balance.saturating_add(fees);
    StateValue::Account(account)
}

/// Sorts changes by key: by each key's numeric prefix, then whole keys on a tie, over a
/// small index array rather than the changes themselves.
pub(crate) fn sort_changes(changes: &mut [Change], parallel: bool) {
    let prefix = |(i, c): (usize, &Change)| (c.key.sort_prefix(), i as u32);
    let mut order: Vec<(u128, u32)> = if parallel {
        changes.par_iter().enumerate().map(prefix).collect()
    } else {
        changes.iter().enumerate().map(prefix).collect()
    };
    let compare = |a: &(u128, u32), b: &(u128, u32)| {
        a.0.cmp(&b.0)
            .then_with(|| changes[a.1 as usize].key.cmp(&changes[b.1 as usize].key))
    };
    if parallel {
        order.par_sort_unstable_by(compare);
    } else {
        order.sort_unstable_by(compare);
    }
    // Moved into place cycle by cycle: cloning every change into a new vector, then
    // dropping the old one, took most of this function's time.
    let mut from: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..from.len() {
        let mut at = start;
        loop {
            let source = from[at] as usize;
            from[at] = at as u32;
            if source == start || source == at {
                break;
            }
            changes.swap(at, source);
            at = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::TxStatus;
    use ordo_types::{codec, Address};

    /// Sorting moves every change to its place by key, in any starting order (fixed
    /// points, long cycles, many short ones), alike on one thread and on several.
    #[test]
    fn changes_are_sorted_by_key_and_none_is_lost() {
        use rand::{seq::SliceRandom, Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in [0usize, 1, 2, 3, 10, 257, 3_000] {
            let sorted: Vec<Change> = {
                let mut keys: Vec<StateKey> = (0..n)
                    .map(|i| match i % 3 {
                        0 => StateKey::Account(Address(rng.gen())),
                        1 => StateKey::Slot(Address(rng.gen()), rng.gen()),
                        _ => StateKey::Pool(rng.gen()),
                    })
                    .collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .enumerate()
                    .map(|(i, key)| Change {
                        key,
                        old: None,
                        new: StateValue::Holding(i as u64),
                    })
                    .collect()
            };
            for parallel in [false, true] {
                for shuffle in 0..3 {
                    let mut changes = sorted.clone();
                    match shuffle {
                        0 => changes.reverse(),
                        1 => changes.shuffle(&mut rng),
                        _ => {
                            // Mostly in place: a few swapped pairs.
                            let len = changes.len();
                            for _ in 0..len / 10 {
                                let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
                                changes.swap(a, b);
                            }
                        }
                    }
                    sort_changes(&mut changes, parallel);
                    assert_eq!(
                        changes, sorted,
                        "{n} changes, parallel {parallel}, order {shuffle}"
                    );
                }
            }
        }
    }

    #[test]
    fn receipts_and_write_sets_round_trip_through_the_codec() {
        let receipts = vec![
            Receipt {
                status: TxStatus::Success,
                fee: 21,
                gas_used: 21,
                evm: None,
            },
            Receipt::uncharged(TxStatus::BadNonce { expected: 4 }),
            Receipt {
                status: TxStatus::Reverted,
                fee: 3,
                gas_used: 3,
                evm: Some(Box::new(crate::receipt::EvmOutcome {
                    output: vec![1, 2, 3],
                    logs: vec![crate::receipt::Log {
                        address: Address([5; 20]),
                        topics: vec![[6; 32]],
                        data: vec![7],
                    }],
                    created: Some(Address([8; 20])),
                })),
            },
        ];
        let bytes = codec::encode(&receipts);
        assert_eq!(
            codec::decode::<Vec<Receipt>, 1024>(&bytes).unwrap(),
            receipts
        );
        let write_set = WriteSet {
            entries: vec![
                (
                    StateKey::Account(Address([1; 20])),
                    StateValue::Account(Account {
                        balance: 1,
                        nonce: 2,
                        contract: true,
                    }),
                ),
                (StateKey::Token(1, 2), StateValue::Token(Address([3; 20]))),
            ],
        };
        let bytes = codec::encode(&write_set);
        assert_eq!(codec::decode::<WriteSet, 1024>(&bytes).unwrap(), write_set);
    }

    #[test]
    fn incremental_update_equals_recomputation() {
        let a = StateKey::Account(Address([1; 20]));
        let b = StateKey::Pool(3);
        let v = |balance| {
            StateValue::Account(Account {
                balance,
                ..Account::default()
            })
        };
        let mut parent = StateAccumulator::new();
        parent.insert(&a.to_bytes(), &v(5).to_bytes());
        let changes = [
            Change {
                key: a,
                old: Some(v(5)),
                new: v(7),
            },
            Change {
                key: b,
                old: None,
                new: StateValue::Pool(Default::default()),
            },
        ];
        let mut fresh = StateAccumulator::new();
        fresh.insert(&a.to_bytes(), &v(7).to_bytes());
        fresh.insert(
            &b.to_bytes(),
            &StateValue::Pool(Default::default()).to_bytes(),
        );
        assert_eq!(apply_changes(&parent, &changes, false), fresh);
        assert_eq!(apply_changes(&parent, &changes, true), fresh);
    }
}
