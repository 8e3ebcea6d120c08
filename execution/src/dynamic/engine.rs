//! The Block-STM engine for blocks whose read and write sets are found at run time.
//!
//! Multi-version memory. For each state key, the values that transactions' latest
//! incarnations wrote, by transaction index ([`Memory`], sharded by key). A read by `j`
//! takes the entry of the highest writer below `j`, or the value before the block (read
//! from the view once and cached in [`Base`]), and records which version it saw.
//!
//! Commit. As in the declared-key engine ([`crate::parallel`]): transactions commit strictly
//! in block order, by one committer at a time. Committing `j` re-reads the version of every
//! key `j` read; if one differs, `j` runs again on the spot, where everything below it is
//! committed, so that run is final. A re-run's writes replace the earlier ones: keys it no
//! longer writes leave the memory, so that readers above see the lower version, and their
//! own validation catches the change. Invariant: once `committed` passes `j`, `j`'s cell
//! holds the output that [`super::run_in_order`] computes for `j`.
//!
//! No estimates. Which keys a contract touches is unknown before it runs, so readers never
//! wait; a read of a key a lower transaction will write is caught at validation.
//!
//! Falling back. When validations keep failing (one hot slot, a chain of dependent
//! transactions), speculation only burns a core the committer could use. Once more than
//! half of the committed transactions had to run again, workers stop taking new
//! transactions and the committer runs the rest in order itself: never much slower than
//! the sequential loop.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use ordo_types::{Address, SignedTransaction, StateView};
use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::{run_tx, TxEffects};
use crate::evm::{read_base, KeyReader, Runner, Stop};
use crate::receipt::Receipt;
use crate::state::{StateKey, StateValue};
use crate::vm::{BlockContext, ChainConfig};
use crate::worker::{AbortOnUnwind, Idle};

/// Shards of the memory and of the base cache: enough that writers rarely meet on a lock.
/// Readers share a shard's lock, so that keys every transaction reads (a token's code and
/// account) cost no waiting.
const SHARDS: usize = 256;
/// Transactions a worker takes at once (as in the declared-key engine).
const CHUNK: usize = 4;
/// Committed transactions before the fallback judges the re-execution rate.
const FALLBACK_AFTER: usize = 32;

/// Which write a read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Base,
    Tx { writer: u32, incarnation: u32 },
}

struct Entry {
    incarnation: u32,
    value: StateValue,
}

/// A key's writes, sorted by transaction: a handful at most in practice, where a sorted
/// vector beats a tree.
#[derive(Default)]
struct Versions(Vec<(u32, Entry)>);

impl Versions {
    /// The write of the highest transaction below `j`.
    fn below(&self, j: u32) -> Option<&(u32, Entry)> {
        let at = self.0.partition_point(|(t, _)| *t < j);
        at.checked_sub(1).map(|i| &self.0[i])
    }

    fn insert(&mut self, j: u32, entry: Entry) {
        match self.0.binary_search_by_key(&j, |(t, _)| *t) {
            Ok(i) => self.0[i].1 = entry,
            Err(i) => self.0.insert(i, (j, entry)),
        }
    }

    fn remove(&mut self, j: u32) {
        if let Ok(i) = self.0.binary_search_by_key(&j, |(t, _)| *t) {
            self.0.remove(i);
        }
    }

    fn last(self) -> Option<Entry> {
        self.0.into_iter().next_back().map(|(_, e)| e)
    }
}

fn shard_of(key: &StateKey) -> usize {
    (FxBuildHasher.hash_one(key) as usize >> 7) % SHARDS
}

/// The multi-version memory.
struct Memory {
    shards: Vec<CachePadded<RwLock<FxHashMap<StateKey, Versions>>>>,
}

impl Memory {
    fn new() -> Self {
        Memory {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(RwLock::new(FxHashMap::default())))
                .collect(),
        }
    }

    /// The highest write below `j`.
    fn read(&self, key: &StateKey, j: u32) -> Option<(Version, StateValue)> {
        let shard = self.shards[shard_of(key)].read();
        let (writer, entry) = shard.get(key)?.below(j)?;
        let version = Version::Tx {
            writer: *writer,
            incarnation: entry.incarnation,
        };
        Some((version, entry.value.clone()))
    }

    fn version(&self, key: &StateKey, j: u32) -> Version {
        let shard = self.shards[shard_of(key)].read();
        match shard.get(key).and_then(|v| v.below(j)) {
            Some((writer, entry)) => Version::Tx {
                writer: *writer,
                incarnation: entry.incarnation,
            },
            None => Version::Base,
        }
    }

    fn write(&self, j: u32, incarnation: u32, writes: &[(StateKey, StateValue)]) {
        for (key, value) in writes {
            self.shards[shard_of(key)]
                .write()
                .entry(*key)
                .or_default()
                .insert(
                    j,
                    Entry {
                        incarnation,
                        value: value.clone(),
                    },
                );
        }
    }

    fn remove(&self, j: u32, key: &StateKey) {
        if let Some(versions) = self.shards[shard_of(key)].write().get_mut(key) {
            versions.remove(j);
        }
    }

    /// Each key's last write, once every transaction is committed.
    fn into_final(self) -> FxHashMap<StateKey, StateValue> {
        merge_shards(self.shards, |versions| versions.last().map(|e| e.value))
    }
}

/// One map of every shard's entries, sized up front (the block's end runs on one thread),
/// each value mapped by `keep`; `None` drops the key.
fn merge_shards<V, W>(
    shards: Vec<CachePadded<RwLock<FxHashMap<StateKey, V>>>>,
    keep: impl Fn(V) -> Option<W>,
) -> FxHashMap<StateKey, W> {
    let shards: Vec<FxHashMap<StateKey, V>> = shards
        .into_iter()
        .map(|s| s.into_inner().into_inner())
        .collect();
    let keys = shards.iter().map(|s| s.len()).sum();
    let mut out = FxHashMap::with_capacity_and_hasher(keys, Default::default());
    for (key, value) in shards.into_iter().flatten() {
        if let Some(value) = keep(value) {
            out.insert(key, value);
        }
    }
    out
}

type BaseShard = CachePadded<RwLock<FxHashMap<StateKey, Option<StateValue>>>>;

/// Values before the block, read from the view once per key.
struct Base<'v> {
    view: &'v dyn StateView,
    shards: Vec<BaseShard>,
}

impl Base<'_> {
    fn read(&self, key: &StateKey) -> Result<Option<StateValue>, Stop> {
        let shard = &self.shards[shard_of(key)];
        if let Some(value) = shard.read().get(key) {
            return Ok(value.clone());
        }
        // Read outside the lock: two workers may both read a key, and get the same value.
        let value = read_base(self.view, key)?;
        shard.write().insert(*key, value.clone());
        Ok(value)
    }

    fn into_map(self) -> FxHashMap<StateKey, Option<StateValue>> {
        merge_shards(self.shards, Some)
    }
}

#[derive(Default)]
struct Cell {
    /// A worker or the committer has started the first execution.
    claimed: bool,
    executed: bool,
    incarnation: u32,
    effects: Option<TxEffects>,
    reads: Vec<(StateKey, Version)>,
}

pub(crate) struct Engine<'a> {
    config: &'a ChainConfig,
    block: &'a BlockContext,
    txs: &'a [SignedTransaction],
    senders: Vec<Address>,
    within_gas: Vec<bool>,
    memory: Memory,
    base: Base<'a>,
    cells: Vec<CachePadded<Mutex<Cell>>>,
    next: CachePadded<AtomicUsize>,
    committed: CachePadded<AtomicUsize>,
    committing: CachePadded<AtomicBool>,
    /// Workers stop speculating; the committer runs the rest in order.
    serial: AtomicBool,
    /// Set when a read failed or a worker panicked: every worker stops.
    aborted: AtomicBool,
    failure: Mutex<Option<Stop>>,
    reexecutions: AtomicU64,
}

struct Reader<'e, 'a> {
    engine: &'e Engine<'a>,
    j: u32,
    reads: Vec<(StateKey, Version)>,
}

type EngineRunner<'e, 'a> = Runner<Reader<'e, 'a>>;

impl KeyReader for Reader<'_, '_> {
    fn read(&mut self, key: &StateKey) -> Result<Option<StateValue>, Stop> {
        if let Some((version, value)) = self.engine.memory.read(key, self.j) {
            self.reads.push((*key, version));
            return Ok(Some(value));
        }
        let value = self.engine.base.read(key)?;
        self.reads.push((*key, Version::Base));
        Ok(value)
    }
}

/// What the engine hands back once every transaction is committed.
pub(crate) struct DynamicRun {
    pub receipts: Vec<Receipt>,
    pub written: FxHashMap<StateKey, StateValue>,
    pub before: FxHashMap<StateKey, Option<StateValue>>,
    pub reexecutions: u64,
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        view: &'a dyn StateView,
        config: &'a ChainConfig,
        block: &'a BlockContext,
        txs: &'a [SignedTransaction],
        senders: Vec<Address>,
        within_gas: Vec<bool>,
    ) -> Self {
        Engine {
            config,
            block,
            txs,
            senders,
            within_gas,
            memory: Memory::new(),
            base: Base {
                view,
                shards: (0..SHARDS)
                    .map(|_| CachePadded::new(RwLock::new(FxHashMap::default())))
                    .collect(),
            },
            cells: (0..txs.len())
                .map(|_| CachePadded::new(Mutex::new(Cell::default())))
                .collect(),
            next: CachePadded::new(AtomicUsize::new(0)),
            committed: CachePadded::new(AtomicUsize::new(0)),
            committing: CachePadded::new(AtomicBool::new(false)),
            serial: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            failure: Mutex::new(None),
            reexecutions: AtomicU64::new(0),
        }
    }

    /// A worker's EVM, reading the multi-version memory as whichever transaction it runs.
    fn runner<'e>(&'e self) -> EngineRunner<'e, 'a> {
        Runner::new(
            self.config,
            self.block,
            Reader {
                engine: self,
                j: 0,
                reads: Vec::with_capacity(16),
            },
        )
    }

    fn run(
        &self,
        runner: &mut EngineRunner<'_, 'a>,
        j: u32,
    ) -> Result<(TxEffects, Vec<(StateKey, Version)>), Stop> {
        let reader = runner.reader();
        reader.j = j;
        reader.reads.clear();
        let i = j as usize;
        let effects = run_tx(
            runner,
            self.config,
            self.block,
            &self.txs[i],
            self.senders[i],
            self.within_gas[i],
        )?;
        // One allocation of the read set's size; the reader keeps its grown buffer for the
        // next transaction (taking the buffer instead made every run regrow it from
        // nothing, a fifth of the engine's time).
        let reads = runner.reader().reads.split_off(0);
        Ok((effects, reads))
    }

    fn fail(&self, stop: Stop) {
        self.failure.lock().get_or_insert(stop);
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Runs every transaction and commits them all; call on each worker thread.
    pub(crate) fn work(&self) {
        let _guard = AbortOnUnwind(&self.aborted);
        let mut runner = self.runner();
        let n = self.txs.len();
        let mut local: Vec<u32> = Vec::with_capacity(CHUNK);
        let mut idle = Idle::default();
        loop {
            if self.aborted.load(Ordering::Relaxed) || self.committed.load(Ordering::SeqCst) >= n {
                return;
            }
            if self.serial.load(Ordering::Relaxed) {
                local.clear();
            }
            if let Some(j) = local.pop() {
                idle.reset();
                self.execute_first(&mut runner, j);
                continue;
            }
            let start =
                if !self.serial.load(Ordering::Relaxed) && self.next.load(Ordering::Relaxed) < n {
                    self.next.fetch_add(CHUNK, Ordering::Relaxed)
                } else {
                    n
                };
            if start < n {
                local.extend((start..n.min(start + CHUNK)).rev().map(|j| j as u32));
                continue;
            }
            self.try_commit(&mut runner);
            idle.wait();
        }
    }

    /// Claims `j` for its first execution; false if someone else has.
    fn claim(&self, j: u32) -> bool {
        let mut cell = self.cells[j as usize].lock();
        !std::mem::replace(&mut cell.claimed, true)
    }

    fn execute_first(&self, runner: &mut EngineRunner<'_, 'a>, j: u32) {
        if !self.claim(j) {
            return;
        }
        match self.run(runner, j) {
            Err(stop) => self.fail(stop),
            Ok((effects, reads)) => {
                self.memory.write(j, 0, &effects.writes);
                {
                    let mut cell = self.cells[j as usize].lock();
                    cell.effects = Some(effects);
                    cell.reads = reads;
                    cell.executed = true;
                }
                if self.committed.load(Ordering::SeqCst) == j as usize {
                    self.try_commit(runner);
                }
            }
        }
    }

    /// Claimed and executed: 0 unclaimed, 1 claimed and running, 2 executed.
    fn progress(&self, j: usize) -> u8 {
        let cell = self.cells[j].lock();
        u8::from(cell.claimed) + u8::from(cell.executed)
    }

    /// Commits as far as transactions are executed, if no one else is committing.
    fn try_commit(&self, runner: &mut EngineRunner<'_, 'a>) {
        let n = self.txs.len();
        loop {
            if self
                .committing
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            let mut c = self.committed.load(Ordering::SeqCst);
            while c < n && !self.aborted.load(Ordering::Relaxed) {
                match self.progress(c) {
                    2 => {
                        if !self.validate(c as u32) {
                            self.reexecute(runner, c as u32);
                        }
                    }
                    0 if self.serial.load(Ordering::Relaxed) => {
                        // On the frontier a first run reads final values: it is final.
                        self.execute_first(runner, c as u32);
                        if self.progress(c) != 2 {
                            break;
                        }
                    }
                    _ => break,
                }
                c += 1;
                self.committed.store(c, Ordering::SeqCst);
                if c >= FALLBACK_AFTER
                    && self.reexecutions.load(Ordering::Relaxed) * 2 > c as u64
                    && !self.serial.swap(true, Ordering::Relaxed)
                {
                    tracing::debug!(committed = c, "contract block falls back to in-order");
                }
            }
            self.committing.store(false, Ordering::SeqCst);
            if c >= n || self.aborted.load(Ordering::Relaxed) || self.progress(c) != 2 {
                return;
            }
        }
    }

    /// Whether every read of `j` still sees the version it saw; only on the frontier.
    fn validate(&self, j: u32) -> bool {
        let cell = self.cells[j as usize].lock();
        cell.reads
            .iter()
            .all(|(key, seen)| self.memory.version(key, j) == *seen)
    }

    /// Runs `j` again on the frontier; its reads are final, so this result is too.
    fn reexecute(&self, runner: &mut EngineRunner<'_, 'a>, j: u32) {
        self.reexecutions.fetch_add(1, Ordering::Relaxed);
        match self.run(runner, j) {
            Err(stop) => self.fail(stop),
            Ok((effects, reads)) => {
                let mut cell = self.cells[j as usize].lock();
                let incarnation = cell.incarnation + 1;
                if let Some(old) = &cell.effects {
                    for (key, _) in &old.writes {
                        if !effects.writes.iter().any(|(k, _)| k == key) {
                            self.memory.remove(j, key);
                        }
                    }
                }
                self.memory.write(j, incarnation, &effects.writes);
                cell.incarnation = incarnation;
                cell.effects = Some(effects);
                cell.reads = reads;
            }
        }
    }

    /// The committed results, once [`Engine::work`] has returned on every worker; the
    /// first failed read if a read failed.
    pub(crate) fn into_run(self) -> Result<DynamicRun, Stop> {
        if let Some(stop) = self.failure.into_inner() {
            return Err(stop);
        }
        // Sized up front: collecting through `Option` would grow the vector step by step,
        // on the one thread that finishes the block.
        let mut receipts = Vec::with_capacity(self.cells.len());
        for cell in self.cells {
            let effects = cell.into_inner().into_inner().effects;
            let effects = effects
                .ok_or_else(|| Stop::Failed("a transaction of the block did not run".into()))?;
            receipts.push(effects.receipt);
        }
        Ok(DynamicRun {
            receipts,
            written: self.memory.into_final(),
            before: self.base.into_map(),
            reexecutions: self.reexecutions.into_inner(),
        })
    }
}
