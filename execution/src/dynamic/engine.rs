//! The Block-STM engine for blocks whose read and write sets are found at run time.
//!
//! Multi-version memory. For each state key, the values that transactions' latest
//! incarnations wrote, by transaction index ([`Memory`], sharded by key). A read by `j`
//! takes the entry of the highest writer below `j`, or the value before the block (read
//! from the view once and cached in [`Base`]), and records which version it saw. Of the
//! writes below the commit frontier only each key's highest can still be read, so the
//! others are dropped as writes arrive ([`Versions::insert`]).
//!
//! Commit. As in the declared-key engine ([`crate::parallel`]): transactions commit strictly
//! in block order, by one committer at a time. Committing `j` re-reads the version of every
//! key `j` read; if one differs, `j` runs again on the spot, where everything below it is
//! committed, so that run is final. A re-run's writes replace the earlier ones: keys it no
//! longer writes leave the memory, so that readers above see the lower version, and their
//! own validation catches the change. Invariant: once `committed` passes `j`, `j`'s cell
//! holds the receipt that [`super::run_in_order`] computes for `j`, and the memory its
//! writes; its read set and its own copy of the writes are freed then ([`Engine::release`]).
//!
//! Keys no one wrote. Most of a contract call's reads are of keys no transaction of the
//! block writes (the contract's code and account, the sender's code). A filter of the keys
//! written so far ([`Written`], set before a write enters the memory, never cleared) lets
//! such a read skip the multi-version memory: the value before the block comes from the
//! shared cache of such values ([`Base`]), or from the worker's own copy, made the second
//! time the block reads the key (the first read of most keys is their only one). A read
//! racing with a first write of its key records `Base` and is caught at validation, like
//! any stale read; validation runs where every lower transaction's writes are visible, so
//! its use of the filter is exact.
//!
//! No estimates. Which keys a contract touches is unknown before it runs, so readers never
//! wait; a read of a key a lower transaction will write is caught at validation.
//!
//! Falling back. When validations keep failing (one hot slot, a chain of dependent
//! transactions), speculation only burns a core the committer could use. Once more than
//! half of the committed transactions had to run again, workers stop taking new
//! transactions and the committer runs the rest in order itself: never much slower than
//! the sequential loop.

use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use ordo_types::{Address, SignedTransaction, StateView};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use rayon::prelude::*;

use super::{run_tx, Outcome, TxEffects};
use crate::error::ExecutionError;
use crate::evm::{read_base, KeyReader, Runner, Stop};
use crate::output::Change;
use crate::receipt::Receipt;
use crate::state::{read_key, StateKey, StateValue};
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
/// Bits of the written-keys filter: 32 KiB, a few per cent false positives at the tens of
/// thousands of keys a 10,000-transaction block writes (a false positive costs only the
/// shared lookup the filter would have saved).
const WRITTEN_BITS: usize = 1 << 18;

/// A key's list of writes is pruned of unreachable ones once it is longer than this.
const PRUNE_AT: usize = 4;

/// Which write a read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Base,
    Tx { writer: u32, incarnation: u32 },
}

/// One transaction's write of a key. Writer and incarnation lead, in C layout, so that a
/// reader finds them and the start of the value on one cache line (Rust's layout put the
/// 64-byte value first and the incarnation a line away from the writer: a reader of a key
/// another core wrote missed the cache twice, a tenth of a read's time, perf).
#[repr(C)]
struct Write {
    writer: u32,
    incarnation: u32,
    value: StateValue,
}

/// A key's writes, sorted by writer: a few dozen at most in practice, where a sorted
/// vector beats a tree. Most keys of a block have one writer (a sender's account, a
/// holder's balance slot), kept in the map's own entry: a vector on the heap cost an
/// allocation of four writes per key, and a reader one more cache miss.
#[derive(Default)]
struct Versions(SmallVec<[Write; 1]>);

impl Versions {
    /// The write of the highest transaction below `j`. Readers run near the top of what
    /// has been written, so the last write is tried first: one cache line, where a binary
    /// search would touch several.
    fn below(&self, j: u32) -> Option<&Write> {
        let last = self.0.last()?;
        if last.writer < j {
            return Some(last);
        }
        let at = self.0.partition_point(|w| w.writer < j);
        at.checked_sub(1).map(|i| &self.0[i])
    }

    /// Adds or replaces `j`'s write. Writes below `floor` (committed transactions) other
    /// than the highest of them can no longer be read: every reader and validator is at
    /// or above the commit frontier, and reads the highest write below itself. They are
    /// dropped, which keeps a hot key's list a few entries long instead of one entry per
    /// writer of the block (its searches missed the cache at every step: a third of the
    /// engine's write and validation time, perf, `erc20` at 1,000 accounts).
    fn insert(&mut self, write: Write, floor: u32) {
        let j = write.writer;
        match self.0.last() {
            // Transactions mostly run in block order: the new write is usually the top.
            Some(last) if last.writer >= j => match self.0.binary_search_by_key(&j, |w| w.writer) {
                Ok(i) => self.0[i] = write,
                Err(i) => self.0.insert(i, write),
            },
            _ => self.0.push(write),
        }
        if self.0.len() > PRUNE_AT {
            let below = self.0.partition_point(|w| w.writer < floor);
            if below > 1 {
                self.0.drain(..below - 1);
            }
        }
    }

    fn remove(&mut self, j: u32) {
        if let Ok(i) = self.0.binary_search_by_key(&j, |w| w.writer) {
            self.0.remove(i);
        }
    }

    fn last(self) -> Option<StateValue> {
        self.0.into_iter().next_back().map(|w| w.value)
    }
}

/// A key with its hash, computed once where the key enters the engine: the shard, the
/// written-keys filter and the shard's map all use it (each hashed the key itself before,
/// three hashes of a 56-byte key per access, on every read, write and validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hashed {
    hash: u64,
    key: StateKey,
}

impl Hashed {
    fn new(key: &StateKey) -> Self {
        Hashed {
            hash: FxBuildHasher.hash_one(key),
            key: *key,
        }
    }

    /// The key's shard: middle bits of its hash. A shard's map places keys by the hash's
    /// low bits and tags them with its top seven, so shard bits taken from either end
    /// would be the same for every key of a shard and, once a shard holds more than a
    /// hundred keys or so, pile them into a few buckets or one tag.
    fn shard(&self) -> usize {
        (self.hash >> 32) as usize % SHARDS
    }
}

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The hasher of maps keyed by [`Hashed`]: hands the key's hash on.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is called for a `Hashed`; anything else still gets a hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = std::collections::HashMap<Hashed, V, BuildHasherDefault<Prehashed>>;

/// Which keys some transaction of the block has written (or may have: a Bloom filter with
/// one hash). Bits are only ever set.
struct Written {
    words: Box<[AtomicU64]>,
}

impl Written {
    fn new() -> Self {
        Written {
            words: (0..WRITTEN_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The word and bit of `key`: the hash's top bits, which the shard index does not use.
    fn bit(key: &Hashed) -> (usize, u64) {
        let bit = (key.hash >> (64 - WRITTEN_BITS.trailing_zeros())) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    fn mark(&self, key: &Hashed) {
        let (word, mask) = Self::bit(key);
        // Reading first keeps the word's cache line shared once its bits are set.
        if self.words[word].load(Ordering::Relaxed) & mask == 0 {
            self.words[word].fetch_or(mask, Ordering::Release);
        }
    }

    /// False only if no write of `key` has entered the memory (as far as this thread can
    /// see).
    fn maybe(&self, key: &Hashed) -> bool {
        let (word, mask) = Self::bit(key);
        self.words[word].load(Ordering::Acquire) & mask != 0
    }
}

/// The multi-version memory.
struct Memory {
    shards: Vec<CachePadded<RwLock<KeyMap<Versions>>>>,
    written: Written,
}

impl Memory {
    fn new(txs: usize) -> Self {
        Memory {
            shards: new_shards(txs),
            written: Written::new(),
        }
    }

    /// The highest write below `j`.
    fn read(&self, key: &Hashed, j: u32) -> Option<(Version, StateValue)> {
        let shard = self.shards[key.shard()].read();
        let write = shard.get(key)?.below(j)?;
        let version = Version::Tx {
            writer: write.writer,
            incarnation: write.incarnation,
        };
        Some((version, write.value.clone()))
    }

    fn version(&self, key: &Hashed, j: u32) -> Version {
        if !self.written.maybe(key) {
            return Version::Base;
        }
        let shard = self.shards[key.shard()].read();
        match shard.get(key).and_then(|v| v.below(j)) {
            Some(write) => Version::Tx {
                writer: write.writer,
                incarnation: write.incarnation,
            },
            None => Version::Base,
        }
    }

    /// Enters `j`'s writes; `floor`: transactions below it are committed.
    fn write(&self, j: u32, incarnation: u32, writes: &[(StateKey, StateValue)], floor: u32) {
        for (key, value) in writes {
            let key = Hashed::new(key);
            self.written.mark(&key);
            self.shards[key.shard()]
                .write()
                .entry(key)
                .or_default()
                .insert(
                    Write {
                        writer: j,
                        incarnation,
                        value: value.clone(),
                    },
                    floor,
                );
        }
    }

    fn remove(&self, j: u32, key: &StateKey) {
        let key = Hashed::new(key);
        if let Some(versions) = self.shards[key.shard()].write().get_mut(&key) {
            versions.remove(j);
        }
    }
}

/// Keys per transaction that each shard map is sized for up front: a transaction reads and
/// writes two to a few keys of its own (its sender's account, a slot or two), and a map
/// grown from nothing rehashed its keys several times, on the way under its write lock.
const KEYS_PER_TX: usize = 2;

/// Empty shard maps, sized for a block of `txs` transactions (left to grow for a block
/// too small to give each shard a key: 512 maps allocated for nothing otherwise).
fn new_shards<V>(txs: usize) -> Vec<CachePadded<RwLock<KeyMap<V>>>> {
    let keys = txs * KEYS_PER_TX / SHARDS;
    (0..SHARDS)
        .map(|_| {
            CachePadded::new(RwLock::new(KeyMap::with_capacity_and_hasher(
                keys,
                Default::default(),
            )))
        })
        .collect()
}

fn unwrap_shards<V>(shards: Vec<CachePadded<RwLock<KeyMap<V>>>>) -> Vec<KeyMap<V>> {
    shards
        .into_iter()
        .map(|s| s.into_inner().into_inner())
        .collect()
}

type BaseShard = CachePadded<RwLock<KeyMap<Option<StateValue>>>>;

/// Values before the block, read from the view once per key.
struct Base<'v> {
    view: &'v dyn StateView,
    shards: Vec<BaseShard>,
}

impl Base<'_> {
    /// The value, and whether some worker had read it before in this block.
    fn read(&self, key: &Hashed) -> Result<(Option<StateValue>, bool), Stop> {
        let shard = &self.shards[key.shard()];
        if let Some(value) = shard.read().get(key) {
            return Ok((value.clone(), true));
        }
        // Read outside the lock: two workers may both read a key, and get the same value.
        let value = read_base(self.view, &key.key)?;
        shard.write().insert(*key, value.clone());
        Ok((value, false))
    }
}

#[derive(Default)]
struct Cell {
    /// A worker or the committer has started the first execution.
    claimed: bool,
    executed: bool,
    incarnation: u32,
    /// The latest run's; its writes are emptied once `j` is committed.
    effects: Option<TxEffects>,
    reads: Vec<(Hashed, Version)>,
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
    reads: Vec<(Hashed, Version)>,
    /// This worker's copies of values before the block, for keys no one has written and
    /// that were read before in the block (the hot ones: a token's code and account), and
    /// whether a copy is this worker's own (see [`Reader::own_code`]).
    unwritten: KeyMap<(Option<StateValue>, bool)>,
}

impl Reader<'_, '_> {
    /// Contract code read again by this worker from its copies becomes a copy of its own
    /// ([`crate::code::Code::unshared`]): a contract called again and again (a token) then
    /// costs no shared reference count per call, and one called once or twice (one of
    /// 10,000 collections) costs no copy.
    fn own_code(entry: &mut (Option<StateValue>, bool)) {
        if let (Some(StateValue::Code(code)), owned @ false) = entry {
            *code = code.unshared();
            *owned = true;
        }
    }
}

type EngineRunner<'e, 'a> = Runner<Reader<'e, 'a>>;

impl KeyReader for Reader<'_, '_> {
    fn read(&mut self, key: &StateKey) -> Result<Option<StateValue>, Stop> {
        let key = Hashed::new(key);
        if !self.engine.memory.written.maybe(&key) {
            let value = match self.unwritten.get_mut(&key) {
                Some(entry) => {
                    Self::own_code(entry);
                    entry.0.clone()
                }
                None => {
                    // Only a key read before in the block is copied: most keys are read
                    // once (an account, a balance), and a copy of each of them filled a
                    // map of the block's size per worker, megabytes of fresh pages.
                    let (value, seen) = self.engine.base.read(&key)?;
                    if seen {
                        self.unwritten.insert(key, (value.clone(), false));
                    }
                    value
                }
            };
            self.reads.push((key, Version::Base));
            return Ok(value);
        }
        if let Some((version, value)) = self.engine.memory.read(&key, self.j) {
            self.reads.push((key, version));
            return Ok(Some(value));
        }
        let (value, _) = self.engine.base.read(&key)?;
        self.reads.push((key, Version::Base));
        Ok(value)
    }
}

/// What the engine hands back once every transaction is committed.
pub(crate) struct DynamicRun {
    pub outcome: Outcome,
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
            memory: Memory::new(txs.len()),
            base: Base {
                view,
                shards: new_shards(txs.len()),
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
                // Grown from nothing, this map rehashed its way to thousands of keys (a
                // worker's first read of every key lands here), on fresh pages each time:
                // a twentieth of the workers' time (perf, `erc20` at 10,000 accounts).
                unwritten: KeyMap::default(),
            },
        )
    }

    fn run(
        &self,
        runner: &mut EngineRunner<'_, 'a>,
        j: u32,
    ) -> Result<(TxEffects, Vec<(Hashed, Version)>), Stop> {
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

    /// Transactions below this are committed (a stale value is lower: still true).
    fn floor(&self) -> u32 {
        self.committed.load(Ordering::Relaxed) as u32
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
                self.memory.write(j, 0, &effects.writes, self.floor());
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
                self.release(c);
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

    /// `j` is committed: its read set and its writes (the memory has them) are no longer
    /// needed. Freed now rather than at the block's end, so that the transactions after it
    /// reuse the memory instead of touching fresh pages.
    fn release(&self, j: usize) {
        let (reads, writes) = {
            let mut cell = self.cells[j].lock();
            let writes = cell.effects.as_mut().map(|e| std::mem::take(&mut e.writes));
            (std::mem::take(&mut cell.reads), writes)
        };
        drop((reads, writes));
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
                self.memory
                    .write(j, incarnation, &effects.writes, self.floor());
                cell.incarnation = incarnation;
                cell.effects = Some(effects);
                cell.reads = reads;
            }
        }
    }

    /// The committed results, once [`Engine::work`] has returned on every worker; the
    /// first failed read if a read failed. Runs on the current rayon pool, cell by cell and
    /// shard by shard: on one thread, this end of the block (collecting receipts, pairing
    /// each written key's last write with its value before the block, freeing what the
    /// workers allocated, read sets and writes included until they were freed at commit)
    /// took a fifth of the engine's time with two workers (perf, `erc20` at 10,000
    /// accounts), while the other worker idled.
    pub(crate) fn into_run(self, fee_sink: &StateKey) -> Result<DynamicRun, ExecutionError> {
        if let Some(stop) = self.failure.into_inner() {
            return Err(stop.into());
        }
        let receipts: Vec<Option<Receipt>> = self
            .cells
            .into_par_iter()
            .map(|cell| cell.into_inner().into_inner().effects.map(|e| e.receipt))
            .collect();
        if receipts.iter().any(Option::is_none) {
            return Err(Stop::Failed("a transaction of the block did not run".into()).into());
        }
        let view = self.base.view;
        let written = unwrap_shards(self.memory.shards);
        let before = unwrap_shards(self.base.shards);
        let sink = Hashed::new(fee_sink);
        let sink_before = before[sink.shard()].get(&sink).cloned();
        // A key has the same shard in the memory and in the base.
        let changes: Vec<Vec<Change>> = written
            .into_par_iter()
            .zip(before.into_par_iter())
            .map(|(written, before)| {
                let mut changes = Vec::with_capacity(written.len());
                for (key, versions) in written {
                    let Some(new) = versions.last() else {
                        continue;
                    };
                    let old = match before.get(&key) {
                        Some(old) => old.clone(),
                        None => read_key(view, &key.key)?,
                    };
                    changes.push(Change {
                        key: key.key,
                        old,
                        new,
                    });
                }
                Ok(changes)
            })
            .collect::<Result<_, ExecutionError>>()?;
        // One slot more than the changes: the block's end adds the fee sink's credit, and
        // a vector collected to the exact size grew (copied, on fresh pages) for it.
        let mut all = Vec::with_capacity(changes.iter().map(Vec::len).sum::<usize>() + 1);
        all.par_extend(changes.into_par_iter().flatten());
        Ok(DynamicRun {
            outcome: Outcome {
                receipts: receipts.into_iter().flatten().collect(),
                changes: all,
                sink_before,
            },
            reexecutions: self.reexecutions.into_inner(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(j: u32, incarnation: u32) -> Write {
        Write {
            writer: j,
            incarnation,
            value: StateValue::Holding(u64::from(j)),
        }
    }

    /// Writes arrive out of order, re-runs replace or withdraw writes, and the floor rises
    /// only to the lowest transaction still pending, as the committer moves it; whatever a
    /// reader at or above the floor asks of the pruned list, it answers as the full list
    /// would, incarnation included.
    #[test]
    fn a_pruned_list_answers_every_reader_at_or_above_the_floor_as_the_full_one() {
        let seen = |versions: &Versions, j: u32| {
            versions
                .below(j)
                .map(|write| (write.writer, write.incarnation))
        };
        let n = 64u32;
        let mut pruned = Versions::default();
        let mut full = Versions::default();
        let mut incarnation = vec![0u32; n as usize];
        let mut floor = 0;
        for step in 0..4 * n {
            // Some transaction at or above the floor writes (a first run or a re-run),
            // withdraws its write (a re-run that no longer writes the key), or commits.
            let j = floor + (step * 37 + step / 3) % (n - floor).max(1);
            match step % 5 {
                0..=2 => {
                    incarnation[j as usize] += 1;
                    pruned.insert(write(j, incarnation[j as usize]), floor);
                    full.insert(write(j, incarnation[j as usize]), 0);
                }
                3 => {
                    pruned.remove(j);
                    full.remove(j);
                }
                _ => floor = (floor + 1).min(n - 1),
            }
            for reader in floor..=n {
                assert_eq!(
                    seen(&pruned, reader),
                    seen(&full, reader),
                    "reader {reader}"
                );
            }
        }
        assert!(pruned.0.len() < full.0.len());

        // In block order the list stays a few entries long.
        let mut in_order = Versions::default();
        for j in 0..1_000 {
            in_order.insert(write(j, 0), j);
            assert!(in_order.0.len() <= PRUNE_AT + 1);
        }
        assert_eq!(in_order.below(1_000).map(|write| write.writer), Some(999));
    }
}
