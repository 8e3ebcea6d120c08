//! Blocks with contract transactions: read and write sets found at run time.
//!
//! A contract's keys are known only as the EVM runs, so a block holding any `Deploy` or
//! `Call` does not go through declared-key preparation. Every transaction of such a block,
//! native ones included, reads state keys one at a time through a [`KeyReader`] and
//! returns its writes as (key, value) pairs ([`run_tx`]); [`run_in_order`] is the
//! definition of the block's result, and [`engine`] runs the same transactions on the
//! Block-STM engine with a multi-version memory keyed by state key.
//!
//! Block gas. Contract transactions run while the sum of their gas limits, in block order,
//! stays within the chain's block gas limit; the rest fail uncharged with
//! `BlockGasExhausted`. The rule depends on the transactions alone, not on what they do,
//! so it is decided before anything runs ([`within_block_gas`]) and costs no ordering
//! between transactions.

pub(crate) mod engine;

use std::time::Instant;

use ordo_types::{Address, Amount, SignedTransaction, StateView};
use rustc_hash::FxHashMap;

use crate::error::{ExecutionError, Result};
use crate::evm::{read_base, KeyReader, Runner, Stop};
use crate::output::{credit_fees, sort_changes, Change, ExecutedBlock};
use crate::receipt::Receipt;
use crate::state::{read_key, StateKey, StateValue};
use crate::stats::ExecutionStats;
use crate::vm::{self, declared_keys, BlockContext, Blocked, ChainConfig, SlotReader, SLOTS};

/// Whether a block needs this path: it holds a contract transaction.
pub(crate) fn has_contracts(txs: &[SignedTransaction]) -> bool {
    txs.iter().any(|t| t.payload().is_evm())
}

/// For each transaction, whether the block gas limit covers it (see the module note).
pub(crate) fn within_block_gas(config: &ChainConfig, txs: &[SignedTransaction]) -> Vec<bool> {
    let mut used = 0u64;
    txs.iter()
        .map(|t| {
            let limit = t.payload().gas_limit();
            match used.checked_add(limit) {
                Some(total) if total <= config.block_gas_limit => {
                    used = total;
                    true
                }
                _ => false,
            }
        })
        .collect()
}

/// One transaction's result on this path.
#[derive(Debug, Clone)]
pub(crate) struct TxEffects {
    pub receipt: Receipt,
    /// Each written key once, with its new value.
    pub writes: Vec<(StateKey, StateValue)>,
}

/// Native payloads read their declared slots through the key reader.
struct Slots<'r, R: KeyReader> {
    keys: [Option<StateKey>; SLOTS],
    reader: &'r mut R,
    stop: Option<Stop>,
}

impl<R: KeyReader> SlotReader for Slots<'_, R> {
    fn read(&mut self, slot: usize) -> std::result::Result<Option<StateValue>, Blocked> {
        let Some(key) = &self.keys[slot] else {
            return Ok(None);
        };
        self.reader.read(key).map_err(|stop| {
            self.stop = Some(stop);
            Blocked
        })
    }
}

/// Runs transaction `t` through the VM its payload needs, reading through `runner`'s
/// reader.
pub(crate) fn run_tx<R: KeyReader>(
    runner: &mut Runner<R>,
    config: &ChainConfig,
    block: &BlockContext,
    t: &SignedTransaction,
    sender: Address,
    within_gas: bool,
) -> std::result::Result<TxEffects, Stop> {
    if t.payload().is_evm() {
        let effects = runner.execute(config, block, t, sender, within_gas)?;
        return Ok(TxEffects {
            receipt: effects.receipt,
            writes: effects.writes,
        });
    }
    let keys = declared_keys(t, sender);
    let mut slots = Slots {
        keys,
        reader: runner.reader(),
        stop: None,
    };
    let effects = match vm::execute(config, block, t, sender, &mut slots) {
        Ok(effects) => effects,
        Err(Blocked) => return Err(slots.stop.unwrap_or(Stop::Blocked)),
    };
    let mut writes: Vec<(StateKey, StateValue)> = effects
        .writes
        .into_iter()
        .zip(keys)
        .filter_map(|(value, key)| Some((key?, value?)))
        .collect();
    if let Some((collection, id, owner)) = effects.token {
        writes.push((StateKey::Token(collection, id), StateValue::Token(owner)));
    }
    Ok(TxEffects {
        receipt: effects.receipt,
        writes,
    })
}

/// The state as the block runs in order: what the block wrote so far over the view, with
/// every value read from the view kept as the key's value before the block.
struct InOrder<'v> {
    view: &'v dyn StateView,
    before: FxHashMap<StateKey, Option<StateValue>>,
    current: FxHashMap<StateKey, StateValue>,
}

impl KeyReader for InOrder<'_> {
    fn read(&mut self, key: &StateKey) -> std::result::Result<Option<StateValue>, Stop> {
        if let Some(value) = self.current.get(key) {
            return Ok(Some(value.clone()));
        }
        if let Some(value) = self.before.get(key) {
            return Ok(value.clone());
        }
        let value = read_base(self.view, key)?;
        self.before.insert(*key, value.clone());
        Ok(value)
    }
}

/// Runs every transaction of the block in order: the definition of its result.
pub(crate) fn run_in_order(
    view: &dyn StateView,
    config: &ChainConfig,
    block: &BlockContext,
    txs: &[SignedTransaction],
    stats: ExecutionStats,
) -> Result<ExecutedBlock> {
    let started = Instant::now();
    let gas = within_block_gas(config, txs);
    let state = InOrder {
        view,
        before: FxHashMap::default(),
        current: FxHashMap::default(),
    };
    let mut runner = Runner::new(config, block, state);
    let mut receipts = Vec::with_capacity(txs.len());
    for (t, within_gas) in txs.iter().zip(gas) {
        let sender = t.sender_address();
        let effects = run_tx(&mut runner, config, block, t, sender, within_gas)
            .map_err(ExecutionError::from)?;
        let state = runner.reader();
        for (key, value) in effects.writes {
            state.current.insert(key, value);
        }
        receipts.push(effects.receipt);
    }
    let mut stats = stats;
    stats.phases.execute = started.elapsed();
    let InOrder {
        before, current, ..
    } = runner.into_reader();
    let ending = Instant::now();
    let mut changes = Vec::with_capacity(current.len() + 1);
    for (key, new) in current {
        let old = match before.get(&key) {
            Some(value) => value.clone(),
            None => read_key(view, &key)?,
        };
        changes.push(Change { key, old, new });
    }
    let outcome = Outcome {
        receipts,
        changes,
        sink_before: before.get(&StateKey::Account(config.fee_sink)).cloned(),
    };
    close(view, config, outcome, stats, ending, false)
}

/// A block run to its end, on either path, before fees and sorting ([`close`]).
pub(crate) struct Outcome {
    pub receipts: Vec<Receipt>,
    /// One change per written key (its value before the block and its last write), in no
    /// particular order.
    pub changes: Vec<Change>,
    /// The fee sink's value before the block, if the block read it.
    pub sink_before: Option<Option<StateValue>>,
}

/// The end of a block on either path: credits the block's fees to the fee sink as one
/// change, on top of the sink's last write if the block wrote it (else of its value before
/// the block), and sorts the changes by key, in parallel on the current rayon pool if
/// `parallel`. `started`: when the block's end began, for its phase time.
pub(crate) fn close(
    view: &dyn StateView,
    config: &ChainConfig,
    outcome: Outcome,
    stats: ExecutionStats,
    started: Instant,
    parallel: bool,
) -> Result<ExecutedBlock> {
    let Outcome {
        receipts,
        mut changes,
        sink_before,
    } = outcome;
    let fees = receipts
        .iter()
        .fold(0, |sum: Amount, r| sum.saturating_add(r.fee));
    if fees > 0 {
        let sink = StateKey::Account(config.fee_sink);
        match changes.iter_mut().find(|c| c.key == sink) {
            Some(change) => change.new = credit_fees(Some(change.new.clone()), fees),
            None => {
                let old = match sink_before {
                    Some(value) => value,
                    None => read_key(view, &sink)?,
                };
                changes.push(Change {
                    new: credit_fees(old.clone(), fees),
                    old,
                    key: sink,
                });
            }
        }
    }
    sort_changes(&mut changes, parallel);
    let mut stats = stats;
    stats.phases.finalize = started.elapsed();
    Ok(ExecutedBlock {
        receipts,
        changes,
        fees,
        stats,
    })
}
