//! The Block-STM engine: optimistic execution over multi-version memory, validation of read
//! sets at an in-order commit, re-execution on failed validation, and dependency waits.
//!
//! Multi-version memory. Transaction `j`'s cell holds the values its latest incarnation
//! wrote to its declared slots. The versions of a key are the cells of the transactions
//! that declare it, linked by `prev` (see [`crate::prepare`]); a read by `j` walks that
//! chain downwards from `j` to the first transaction that executed and wrote the key, or to
//! the value before the block, and records the version it saw.
//!
//! Estimates. With `preseed`, every declarer of a key counts as an estimated writer until
//! its first execution: a read that reaches an unexecuted declarer suspends the reader,
//! which is re-run when that declarer finishes. Without it, unexecuted declarers are
//! skipped (plain optimism) and validation catches what they later write.
//!
//! Commit. Transactions commit strictly in block order, one committer at a time (whoever
//! finishes the next transaction to commit). Committing `j` re-walks each key `j` read; if
//! any version differs from the one `j` saw, `j` is re-executed on the spot. Every
//! transaction below `j` is committed then, so that execution reads final values and is
//! itself final. Hence the invariant: once `committed` passes `j`, `j`'s cell holds the
//! output the sequential executor computes for `j`.
//!
//! Scheduling. Workers take chunks of transactions from one atomic counter; a suspended
//! transaction is queued on the cell it waits for. When that cell is published, the woken
//! transactions go to a shared ready queue, which every worker drains (lowest index first)
//! before its own chunk and new chunks; so independent chains of dependent transactions
//! spread over the workers instead of piling up behind the one that woke them. No
//! worker blocks: a worker without work spins on the commit until the block is done, so
//! the engine never waits on other rayon tasks.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use ordo_types::{Address, SignedTransaction};
use parking_lot::Mutex;
use rayon::prelude::*;

use crate::output::InOrderRun;
use crate::prepare::{Prepared, NONE};
use crate::receipt::{Receipt, TxStatus};
use crate::state::StateValue;
use crate::vm::{self, BlockContext, Blocked, ChainConfig, Effects, SlotReader, SLOTS};
use crate::worker::{AbortOnUnwind, Idle};

/// Transactions a worker takes from the counter at once: enough to keep the shared counter
/// out of the hot path, few enough to keep workers close to block order.
const CHUNK: usize = 8;

/// Which write a read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Base,
    Tx { writer: u32, incarnation: u32 },
}

/// One transaction's entry in the multi-version memory, with its read set.
struct Cell {
    executed: bool,
    incarnation: u32,
    /// Bit `s` set: slot `s` was written; its value is `values[s]`.
    wrote: u8,
    values: [StateValue; SLOTS],
    token: Option<(u32, u64, Address)>,
    receipt: Receipt,
    /// Bit `s` set: slot `s` was read and saw `reads[s]`.
    read_mask: u8,
    reads: [Version; SLOTS],
    /// Transactions suspended on a read of this one's (estimated) writes.
    dependents: Vec<u32>,
}

impl Cell {
    fn new() -> Self {
        Cell {
            executed: false,
            incarnation: 0,
            wrote: 0,
            values: [const { StateValue::Holding(0) }; SLOTS],
            token: None,
            receipt: Receipt::uncharged(TxStatus::Success),
            read_mask: 0,
            reads: [Version::Base; SLOTS],
            dependents: Vec::new(),
        }
    }

    fn publish(&mut self, effects: &Effects, reads: &Reads) {
        self.wrote = 0;
        for (s, w) in effects.writes.iter().enumerate() {
            if let Some(v) = w {
                self.wrote |= 1 << s;
                self.values[s] = v.clone();
            }
        }
        self.token = effects.token;
        self.receipt = effects.receipt.clone();
        self.read_mask = reads.mask;
        self.reads = reads.versions;
    }
}

#[derive(Clone, Copy)]
struct Reads {
    mask: u8,
    versions: [Version; SLOTS],
}

pub(crate) struct Engine<'a> {
    config: &'a ChainConfig,
    block: &'a BlockContext,
    txs: &'a [SignedTransaction],
    prep: &'a Prepared,
    preseed: bool,
    cells: Vec<CachePadded<Mutex<Cell>>>,
    /// The next transaction no worker has taken yet.
    next: CachePadded<AtomicUsize>,
    /// Every transaction below this one is committed.
    committed: CachePadded<AtomicUsize>,
    committing: CachePadded<AtomicBool>,
    /// Set when a worker panicked, so that the others stop instead of waiting forever.
    aborted: AtomicBool,
    /// Woken transactions no worker has taken yet, and their number.
    ready: CachePadded<Mutex<BinaryHeap<Reverse<u32>>>>,
    ready_len: CachePadded<AtomicUsize>,
    reexecutions: AtomicU64,
    suspensions: AtomicU64,
}

/// A transaction's reader over the multi-version memory.
struct MvReader<'e, 'a> {
    engine: &'e Engine<'a>,
    j: u32,
    /// Whether an unexecuted declarer suspends the read (estimates) or is skipped.
    wait: bool,
    reads: Reads,
}

impl SlotReader for MvReader<'_, '_> {
    fn read(&mut self, slot: usize) -> Result<Option<StateValue>, Blocked> {
        let (version, value) = self.engine.walk(self.j, slot, self.wait)?;
        self.reads.mask |= 1 << slot;
        self.reads.versions[slot] = version;
        Ok(value)
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        config: &'a ChainConfig,
        block: &'a BlockContext,
        txs: &'a [SignedTransaction],
        prep: &'a Prepared,
        preseed: bool,
    ) -> Self {
        Engine {
            config,
            block,
            txs,
            prep,
            preseed,
            cells: (0..txs.len())
                .map(|_| CachePadded::new(Mutex::new(Cell::new())))
                .collect(),
            next: CachePadded::new(AtomicUsize::new(0)),
            committed: CachePadded::new(AtomicUsize::new(0)),
            committing: CachePadded::new(AtomicBool::new(false)),
            aborted: AtomicBool::new(false),
            ready: CachePadded::new(Mutex::new(BinaryHeap::new())),
            ready_len: CachePadded::new(AtomicUsize::new(0)),
            reexecutions: AtomicU64::new(0),
            suspensions: AtomicU64::new(0),
        }
    }

    /// The version and value transaction `j` sees for `slot`'s key now. With `wait`, an
    /// unexecuted declarer on the way suspends `j` on it.
    fn walk(
        &self,
        j: u32,
        slot: usize,
        wait: bool,
    ) -> Result<(Version, Option<StateValue>), Blocked> {
        let t = &self.prep.txs[j as usize];
        let k = t.keys[slot];
        if k == NONE {
            return Ok((Version::Base, None));
        }
        let (mut p, mut ps) = (t.prev[slot], t.prev_slot[slot] as usize);
        loop {
            if p == NONE {
                return Ok((Version::Base, self.prep.base[k as usize].clone()));
            }
            {
                let mut cell = self.cells[p as usize].lock();
                if cell.executed {
                    if cell.wrote & (1 << ps) != 0 {
                        let version = Version::Tx {
                            writer: p,
                            incarnation: cell.incarnation,
                        };
                        return Ok((version, Some(cell.values[ps].clone())));
                    }
                } else if wait {
                    cell.dependents.push(j);
                    return Err(Blocked);
                }
            }
            let pt = &self.prep.txs[p as usize];
            (p, ps) = (pt.prev[ps], pt.prev_slot[ps] as usize);
        }
    }

    fn run_vm(&self, j: u32, wait: bool) -> Result<(Effects, Reads), Blocked> {
        let mut reader = MvReader {
            engine: self,
            j,
            wait,
            reads: Reads {
                mask: 0,
                versions: [Version::Base; SLOTS],
            },
        };
        let t = &self.txs[j as usize];
        let sender = self.prep.txs[j as usize].sender;
        let effects = vm::execute(self.config, self.block, t, sender, &mut reader)?;
        Ok((effects, reader.reads))
    }

    /// Runs every transaction and commits them all; call on each worker thread.
    pub(crate) fn work(&self) {
        let _guard = AbortOnUnwind(&self.aborted);
        let n = self.txs.len();
        let mut local: Vec<u32> = Vec::with_capacity(2 * CHUNK);
        let mut idle = Idle::default();
        loop {
            if let Some(j) = self.take_ready().or_else(|| local.pop()) {
                idle.reset();
                self.execute_first(j);
                continue;
            }
            // The load keeps idle workers from hammering the counter once it is spent.
            let start = if self.next.load(Ordering::Relaxed) < n {
                self.next.fetch_add(CHUNK, Ordering::Relaxed)
            } else {
                n
            };
            if start < n {
                local.extend((start..n.min(start + CHUNK)).rev().map(|j| j as u32));
                continue;
            }
            if self.committed.load(Ordering::SeqCst) >= n || self.aborted.load(Ordering::Relaxed) {
                return;
            }
            self.try_commit();
            idle.wait();
        }
    }

    fn execute_first(&self, j: u32) {
        match self.run_vm(j, self.preseed) {
            Err(Blocked) => {
                // `walk` queued `j` on the cell it waits for.
                self.suspensions.fetch_add(1, Ordering::Relaxed);
            }
            Ok((effects, reads)) => {
                let dependents = {
                    let mut cell = self.cells[j as usize].lock();
                    cell.publish(&effects, &reads);
                    cell.executed = true;
                    std::mem::take(&mut cell.dependents)
                };
                self.wake(dependents);
                // Whoever finishes the next transaction to commit runs the commit. The
                // SeqCst load pairs with the committer's store and re-check (see
                // `try_commit`) so that the finished transaction is never left behind.
                if self.committed.load(Ordering::SeqCst) == j as usize {
                    self.try_commit();
                }
            }
        }
    }

    /// Offers woken transactions to every worker.
    fn wake(&self, dependents: Vec<u32>) {
        if dependents.is_empty() {
            return;
        }
        let mut ready = self.ready.lock();
        ready.extend(dependents.into_iter().map(Reverse));
        self.ready_len.store(ready.len(), Ordering::Release);
    }

    fn take_ready(&self) -> Option<u32> {
        if self.ready_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut ready = self.ready.lock();
        let j = ready.pop().map(|Reverse(j)| j);
        self.ready_len.store(ready.len(), Ordering::Release);
        j
    }

    fn executed(&self, j: usize) -> bool {
        self.cells[j].lock().executed
    }

    /// Commits as far as transactions are executed, if no one else is committing.
    fn try_commit(&self) {
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
            while c < n && self.executed(c) {
                if !self.validate(c as u32) {
                    self.reexecute(c as u32);
                }
                c += 1;
                self.committed.store(c, Ordering::SeqCst);
            }
            self.committing.store(false, Ordering::SeqCst);
            // A worker may have finished `c` after we looked and before we let go; it then
            // saw the commit taken, so the re-check is ours to make.
            if c >= n || !self.executed(c) {
                return;
            }
        }
    }

    /// Whether every read of `j` still sees the version it saw. Only called on the
    /// commit frontier, where everything below `j` has executed.
    fn validate(&self, j: u32) -> bool {
        let (mask, reads) = {
            let cell = self.cells[j as usize].lock();
            (cell.read_mask, cell.reads)
        };
        (0..SLOTS)
            .filter(|s| mask & (1 << s) != 0)
            .all(|s| matches!(self.walk(j, s, false), Ok((version, _)) if version == reads[s]))
    }

    /// Runs `j` again on the commit frontier; its reads are final, so this result is too.
    fn reexecute(&self, j: u32) {
        self.reexecutions.fetch_add(1, Ordering::Relaxed);
        // Without waiting a read never suspends.
        if let Ok((effects, reads)) = self.run_vm(j, false) {
            let mut cell = self.cells[j as usize].lock();
            cell.incarnation += 1;
            cell.publish(&effects, &reads);
        }
    }

    pub(crate) fn reexecutions(&self) -> u64 {
        self.reexecutions.load(Ordering::Relaxed)
    }

    pub(crate) fn suspensions(&self) -> u64 {
        self.suspensions.load(Ordering::Relaxed)
    }

    /// The committed results, once [`Engine::work`] has returned on every worker. Runs on
    /// the current rayon pool.
    pub(crate) fn into_run(self) -> InOrderRun {
        let cells: Vec<Cell> = self
            .cells
            .into_iter()
            .map(|c| c.into_inner().into_inner())
            .collect();
        let prep = self.prep;
        // A key's final value is the latest write on its chain of declarers.
        let written = prep
            .last
            .par_iter()
            .with_min_len(512)
            .map(|&(mut p, mut ps)| {
                while p != NONE {
                    let cell = &cells[p as usize];
                    if cell.wrote & (1 << ps) != 0 {
                        return Some(cell.values[ps as usize].clone());
                    }
                    let pt = &prep.txs[p as usize];
                    (p, ps) = (pt.prev[ps as usize], pt.prev_slot[ps as usize]);
                }
                None
            })
            .collect();
        let tokens = cells.iter().filter_map(|c| c.token).collect();
        let receipts = cells.iter().map(|c| c.receipt.clone()).collect();
        InOrderRun {
            written,
            tokens,
            receipts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::prepare;
    use crate::sequential::run_in_order;
    use crate::workload::{Fixture, Workload};

    /// Runs a block's transactions in the given order on one thread, as a worst-case
    /// interleaving would, and commits.
    fn run_in(order: &[u32], preseed: bool) -> (InOrderRun, InOrderRun, u64, u64) {
        let mut fixture = Fixture::new(Workload::Transfer, 2, 1).unwrap();
        let txs = fixture.block(order.len());
        let block = fixture.context(1);
        let prep = prepare(&fixture.state, &txs, false).unwrap();
        let expected = run_in_order(&fixture.config, &block, &txs, &prep);
        let engine = Engine::new(&fixture.config, &block, &txs, &prep, preseed);
        for &j in order {
            engine.execute_first(j);
            while let Some(d) = engine.take_ready() {
                engine.execute_first(d);
            }
        }
        engine.try_commit();
        assert_eq!(engine.committed.load(Ordering::SeqCst), txs.len());
        let (re, su) = (engine.reexecutions(), engine.suspensions());
        (engine.into_run(), expected, re, su)
    }

    fn assert_same(a: &InOrderRun, b: &InOrderRun) {
        assert_eq!(a.receipts, b.receipts);
        assert_eq!(a.written, b.written);
        assert_eq!(a.tokens, b.tokens);
    }

    #[test]
    fn stale_reads_fail_validation_and_re_execute() {
        // Without estimates, 3 and 2 read the state before 0 and 1 wrote it.
        let (run, expected, reexecutions, suspensions) = run_in(&[3, 2, 1, 0], false);
        assert_same(&run, &expected);
        assert_eq!(suspensions, 0);
        assert!(reexecutions >= 3, "got {reexecutions}");
    }

    #[test]
    fn estimates_suspend_readers_until_the_writer_runs() {
        // With estimates, 3, 2 and 1 wait for 0 and re-run when it is published.
        let (run, expected, reexecutions, suspensions) = run_in(&[3, 2, 1, 0], true);
        assert_same(&run, &expected);
        assert_eq!(reexecutions, 0);
        assert_eq!(suspensions, 3);
    }
}
