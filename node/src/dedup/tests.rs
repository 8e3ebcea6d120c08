//! The duplicate rule on a real store: unit cases on written and in-flight heights, and
//! the whole path a block takes through a validator (filter, parallel executor, staging,
//! atomic commit) without its sockets, where a restart at any point must leave every
//! state root and every receipt as an uninterrupted run has them.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use ordo_execution::{
    genesis, BlockContext, ChainConfig, Executor, Genesis, GenesisSpec, ParallelExecutor,
    ParallelOptions,
};
use ordo_storage::{BlockCommit, Storage, StorageConfig, StorageError, TxLocation, TxOutcome};
use ordo_types::{
    Amount, Hash32, KeyPair, Payload, SignedTransaction, StateAccumulator, Transaction,
};
use proptest::prelude::*;

use super::{DuplicateFilter, DUPLICATE_WINDOW};
use crate::pipeline::index_outcomes;

const CHAIN_ID: u64 = 7;
/// Enough for a few transfers each; account 2 starts with nothing, so its transactions
/// cannot pay their fee until another account pays it.
const BALANCES: [Amount; 3] = [1_000, 1_000, 0];
/// The most blocks fetched and not yet written at once; the pipeline's channels hold a
/// few blocks each.
const MAX_IN_FLIGHT: usize = 4;

fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i + 1; 32])
}

fn transfer(from: u8, nonce: u64, to: u8, amount: Amount) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID,
        sender: key(from).public(),
        nonce,
        expiry: u64::MAX,
        payload: Payload::Transfer {
            to: key(to).address(),
            amount,
        },
    }
    .sign(&key(from))
}

fn hash(i: u32) -> Hash32 {
    Hash32::digest(b"ordo/dedup-test/tx\0", &i.to_le_bytes())
}

fn block_hash(height: u64) -> Hash32 {
    Hash32::digest(b"ordo/dedup-test/block\0", &height.to_le_bytes())
}

fn open(dir: &Path) -> Storage {
    let config = StorageConfig {
        // A restart here closes the store cleanly: nothing is lost without fsync.
        sync_commits: false,
        ..StorageConfig::small()
    };
    Storage::open(dir, config).unwrap().0
}

/// Writes block `height` as executed, with `hashes` in its index (any status).
fn write(storage: &Storage, height: u64, hashes: &[Hash32]) {
    write_skipping(storage, height, hashes, &[]);
}

/// As [`write`], with `skipped` ordered by the block but skipped by the rule.
fn write_skipping(storage: &Storage, height: u64, hashes: &[Hash32], skipped: &[Hash32]) {
    storage
        .record_committed(height, &block_hash(height), None, None)
        .unwrap();
    storage
        .commit_executed(&BlockCommit {
            height,
            block_hash: block_hash(height),
            state_writes: Vec::new(),
            transactions: hashes
                .iter()
                .map(|&hash| TxOutcome {
                    hash,
                    status: 3,
                    receipt: Vec::new(),
                })
                .collect(),
            accumulator: StateAccumulator::new(),
            skipped: skipped.to_vec(),
        })
        .unwrap();
}

/// The manifest of a snapshot of an empty state at `height`, from a store that executed
/// every height up to it.
fn snapshot_manifest(height: u64) -> ordo_storage::SnapshotManifest {
    let source_dir = tempfile::tempdir().unwrap();
    let source = open(source_dir.path());
    for h in 0..=height {
        write(&source, h, &[]);
    }
    let info = source.start_snapshot().unwrap().unwrap().join().unwrap();
    assert_eq!(info.height, height);
    source.snapshot_manifest(height).unwrap().unwrap()
}

#[test]
fn a_block_skips_what_an_earlier_height_or_itself_included() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write(&storage, 0, &[hash(0)]);
    let mut filter = DuplicateFilter::new();
    // In the index (a failed transaction counts), earlier in the block, or new.
    assert_eq!(
        filter
            .admit(&storage, 1, &[hash(0), hash(1), hash(2), hash(1)])
            .unwrap(),
        [false, true, true, false]
    );
    // Height 1 is fetched, not written: its transactions are still duplicates.
    assert_eq!(
        filter.admit(&storage, 2, &[hash(2), hash(3)]).unwrap(),
        [false, true]
    );
    write(&storage, 1, &[hash(1), hash(2)]);
    write(&storage, 2, &[hash(3)]);
    // Written heights answer from the index alone.
    assert_eq!(
        filter
            .admit(&storage, 3, &[hash(1), hash(3), hash(4)])
            .unwrap(),
        [false, false, true]
    );
    assert_eq!(filter.in_flight_heights(), 1);
}

#[test]
fn the_rule_looks_back_on_the_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write(&storage, 0, &[]);
    write(&storage, 1, &[hash(1)]);
    for height in 2..=DUPLICATE_WINDOW {
        write(&storage, height, &[]);
    }
    let mut filter = DuplicateFilter::new();
    // Height 1 is the last height of the window of height 1 + W.
    let last_in_window = DUPLICATE_WINDOW + 1;
    assert_eq!(
        filter.admit(&storage, last_in_window, &[hash(1)]).unwrap(),
        [false]
    );
    write(&storage, last_in_window, &[]);
    // One height later it is out of the window: nonces alone decide.
    assert_eq!(
        filter
            .admit(&storage, last_in_window + 1, &[hash(1)])
            .unwrap(),
        [true]
    );
}

/// A copy the rule skipped counts as ordered at its height, so that the rule depends on
/// the window alone: executed at 1, skipped at 100 (within the window of 1), ordered
/// again past the window of 1 but within that of 100, it is skipped. Were only executions
/// counted, a validator restored from a snapshot between 1 and 100 (which knows nothing
/// of height 1) would decide otherwise.
#[test]
fn a_skipped_copy_counts_as_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write(&storage, 0, &[]);
    write(&storage, 1, &[hash(1)]);
    let mut filter = DuplicateFilter::new();
    for height in 2..=DUPLICATE_WINDOW + 10 {
        let block: &[Hash32] = if height == 100 { &[hash(1)] } else { &[] };
        let keep = filter.admit(&storage, height, block).unwrap();
        if height == 100 {
            assert_eq!(keep, [false], "within the window of height 1");
            write_skipping(&storage, height, &[], &[hash(1)]);
        } else {
            write(&storage, height, &[]);
        }
    }
    let past_first = DUPLICATE_WINDOW + 11;
    assert_eq!(
        filter.admit(&storage, past_first, &[hash(1)]).unwrap(),
        [false],
        "ordered at 100, within the window"
    );
    // A new filter (a restart) answers the same from storage alone.
    assert_eq!(
        DuplicateFilter::new()
            .admit(&storage, past_first, &[hash(1)])
            .unwrap(),
        [false]
    );
}

/// A store in `dir` restoring the snapshot of an empty state at `snapshot`, with what the
/// window below it ordered recorded.
fn restoring(
    dir: &Path,
    snapshot: u64,
    ordered: &[(Hash32, u64)],
) -> (Storage, ordo_storage::Restore) {
    let storage = open(dir);
    let restore = storage.begin_restore(&snapshot_manifest(snapshot)).unwrap();
    storage.record_ordered(ordered).unwrap();
    (storage, restore)
}

/// A store restored from a snapshot of height H lacks the transaction index below H; the
/// hashes state sync recorded as ordered at the window's heights stand in for it, so that
/// it decides like a store that executed every height.
#[test]
fn a_restored_store_decides_from_the_recorded_inclusions() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = 300;
    // Hash 1 was included 10 heights below the snapshot, hash 2 far below the window.
    let (storage, restore) = restoring(
        dir.path(),
        snapshot,
        &[(hash(1), snapshot - 10), (hash(2), 10)],
    );
    restore.finish(block_hash(snapshot)).unwrap();
    let mut filter = DuplicateFilter::new();
    assert_eq!(
        filter
            .admit(&storage, snapshot + 1, &[hash(1), hash(2), hash(3)])
            .unwrap(),
        [false, true, true]
    );
}

/// A restore abandoned after its window was recorded (no peer offers its snapshot at the
/// next start, so the chain is replayed from genesis) leaves nothing the duplicate rule
/// reads: a copy of a transaction ordered again two heights after it executed is skipped,
/// as on a validator that never began a restore.
#[test]
fn an_aborted_restore_leaves_no_record_the_replay_reads() {
    let dir = tempfile::tempdir().unwrap();
    // The window below the snapshot of height 300 ordered hash 1 at height 290.
    let (storage, restore) = restoring(dir.path(), 300, &[(hash(1), 290)]);
    drop(restore);
    storage.abort_restore().unwrap();
    assert_eq!(storage.ordered_at(&[hash(1)]).unwrap(), [None]);

    write(&storage, 0, &[]);
    let mut filter = DuplicateFilter::new();
    assert_eq!(filter.admit(&storage, 1, &[hash(1)]).unwrap(), [true]);
    write(&storage, 1, &[hash(1)]);
    assert_eq!(filter.admit(&storage, 2, &[]).unwrap(), Vec::<bool>::new());
    write(&storage, 2, &[]);
    assert_eq!(
        filter.admit(&storage, 3, &[hash(1), hash(2)]).unwrap(),
        [false, true],
        "the copy of hash 1 executed at height 1 must be skipped"
    );
}

/// A store aborted by a build before that deletion can still hold a record above the
/// height asked about; it does not hide an index entry inside the window.
#[test]
fn a_record_above_the_height_does_not_hide_an_earlier_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write(&storage, 0, &[]);
    write(&storage, 1, &[hash(1)]);
    storage.record_ordered(&[(hash(1), 300)]).unwrap();
    let mut filter = DuplicateFilter::new();
    assert_eq!(
        filter.admit(&storage, 2, &[hash(1), hash(2)]).unwrap(),
        [false, true]
    );
}

#[test]
fn a_restarted_filter_answers_as_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let blocks: [&[Hash32]; 4] = [
        &[hash(1), hash(2)],
        &[hash(2), hash(3)],
        &[hash(1), hash(4), hash(4)],
        &[hash(3), hash(5)],
    ];
    let mut running = Vec::new();
    {
        let storage = open(dir.path());
        write(&storage, 0, &[]);
        let mut filter = DuplicateFilter::new();
        for (i, block) in blocks.iter().enumerate() {
            let height = i as u64 + 1;
            let keep = filter.admit(&storage, height, block).unwrap();
            let kept: Vec<Hash32> = block
                .iter()
                .zip(&keep)
                .filter_map(|(h, k)| k.then_some(*h))
                .collect();
            running.push(keep);
            // Heights 1 and 2 are written; 3 and 4 were fetched when the node stopped.
            if height <= 2 {
                write(&storage, height, &kept);
            }
        }
    }
    let storage = open(dir.path());
    let mut filter = DuplicateFilter::new();
    for (i, block) in blocks.iter().enumerate().skip(2) {
        let keep = filter.admit(&storage, i as u64 + 1, block).unwrap();
        assert_eq!(keep, running[i], "height {}", i + 1);
    }
}

#[test]
fn heights_are_admitted_in_order_after_the_executed_one() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    write(&storage, 0, &[]);
    write(&storage, 1, &[]);
    let mut filter = DuplicateFilter::new();
    // Height 1 is written: its own transactions would all look like duplicates.
    assert!(matches!(
        filter.admit(&storage, 1, &[hash(1)]),
        Err(StorageError::OutOfOrder {
            expected: 2,
            got: 1,
            ..
        })
    ));
    filter.admit(&storage, 2, &[hash(1)]).unwrap();
    assert!(matches!(
        filter.admit(&storage, 4, &[hash(2)]),
        Err(StorageError::OutOfOrder {
            expected: 3,
            got: 4,
            ..
        })
    ));
}

/// The executor and the genesis state every simulated validator shares.
fn chain() -> &'static (ParallelExecutor, Genesis) {
    static CHAIN: OnceLock<(ParallelExecutor, Genesis)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let config = ChainConfig {
            chain_id: CHAIN_ID,
            gas_price: 1,
            fee_sink: key(9).address(),
            block_gas_limit: ordo_execution::DEFAULT_BLOCK_GAS_LIMIT,
        };
        let executor = ParallelExecutor::new(config, ParallelOptions::new(2)).unwrap();
        let spec = GenesisSpec {
            accounts: (0u8..)
                .zip(BALANCES)
                .map(|(i, balance)| (key(i).address(), balance))
                .collect(),
            ..GenesisSpec::default()
        };
        (executor, genesis(&spec).unwrap())
    })
}

/// A step of a validator's pipeline; the schedule of steps is the test's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The fetch stage admits the next committed block through the filter.
    Fetch,
    /// The execute stage runs the oldest fetched block and stages its results.
    Execute,
    /// The commit stage writes the oldest staged block.
    Commit,
    /// The process stops: whatever is only in memory is lost, the store is reopened.
    Restart,
}

/// One validator's path for blocks, without sockets: the fetch stage's filter, the
/// execute stage, the commit stage, over one store.
struct Validator {
    storage: Storage,
    filter: DuplicateFilter,
    accumulator: StateAccumulator,
    next: u64,
    fetched: VecDeque<(u64, Vec<SignedTransaction>, Vec<Hash32>)>,
    staged: VecDeque<Arc<BlockCommit>>,
}

impl Validator {
    /// Opens the store as `node.rs` does: the genesis state at height 0 on a fresh one,
    /// then execution resumes after the last executed height.
    fn start(dir: &Path) -> Self {
        let storage = open(dir);
        let (_, genesis) = chain();
        if storage.last_executed().is_none() {
            storage
                .record_committed(0, &block_hash(0), None, None)
                .unwrap();
            storage
                .commit_executed(&BlockCommit {
                    height: 0,
                    block_hash: block_hash(0),
                    state_writes: genesis
                        .to_bytes()
                        .into_iter()
                        .map(|(k, v)| (k, Some(v)))
                        .collect(),
                    transactions: Vec::new(),
                    accumulator: genesis.accumulator.clone(),
                    skipped: Vec::new(),
                })
                .unwrap();
        }
        let (_, accumulator) = storage.stored_accumulator().unwrap();
        let next = storage.last_executed().unwrap() + 1;
        Validator {
            storage,
            filter: DuplicateFilter::new(),
            accumulator,
            next,
            fetched: VecDeque::new(),
            staged: VecDeque::new(),
        }
    }

    /// Carries out `step` if it can; returns whether it did.
    fn step(&mut self, step: Step, blocks: &[Vec<SignedTransaction>]) -> bool {
        match step {
            Step::Fetch => {
                let in_flight = self.fetched.len() + self.staged.len();
                let Some(block) = blocks.get(self.next as usize - 1) else {
                    return false;
                };
                if in_flight >= MAX_IN_FLIGHT {
                    return false;
                }
                let height = self.next;
                self.storage
                    .record_committed(height, &block_hash(height), None, None)
                    .unwrap();
                let hashes: Vec<Hash32> = block.iter().map(SignedTransaction::hash).collect();
                let keep = self.filter.admit(&self.storage, height, &hashes).unwrap();
                let (txs, hashes) = block
                    .iter()
                    .cloned()
                    .zip(hashes)
                    .zip(keep)
                    .filter_map(|(pair, keep)| keep.then_some(pair))
                    .unzip();
                self.fetched.push_back((height, txs, hashes));
                self.next += 1;
            }
            Step::Execute => {
                let Some((height, txs, hashes)) = self.fetched.pop_front() else {
                    return false;
                };
                let (executor, _) = chain();
                let ctx = BlockContext {
                    height,
                    timestamp_ms: height * 1000,
                };
                let output = executor
                    .execute_block(&self.storage.state_view(), &ctx, &txs, &self.accumulator)
                    .unwrap();
                let transactions = index_outcomes(&hashes, &output.receipts);
                let commit = Arc::new(BlockCommit {
                    height,
                    block_hash: block_hash(height),
                    state_writes: output
                        .write_set
                        .to_bytes()
                        .into_iter()
                        .map(|(k, v)| (k, Some(v)))
                        .collect(),
                    transactions,
                    accumulator: output.accumulator.clone(),
                    skipped: Vec::new(),
                });
                self.storage.stage_executed(commit.clone()).unwrap();
                self.staged.push_back(commit);
                self.accumulator = output.accumulator;
            }
            Step::Commit => {
                let Some(commit) = self.staged.pop_front() else {
                    return false;
                };
                self.storage.commit_executed(&commit).unwrap();
            }
            // The caller restarts: the store must be closed before it opens again.
            Step::Restart => return false,
        }
        true
    }
}

/// Runs `blocks` (heights 1, 2, ...) through a validator on a fresh store, following
/// `schedule`: a step that cannot happen yet gives way to the first that can in the order
/// commit, execute, fetch, which alone drives the run once the schedule is spent. Returns
/// the state root at each height, and where each of `blocks`' transactions was indexed.
fn run(
    blocks: &[Vec<SignedTransaction>],
    schedule: &[Step],
) -> (Vec<Hash32>, Vec<Option<TxLocation>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut validator = Validator::start(dir.path());
    let mut schedule = schedule.iter().copied();
    let last = blocks.len() as u64;
    while validator.storage.last_executed() < Some(last) {
        match schedule.next() {
            Some(Step::Restart) => {
                drop(validator);
                validator = Validator::start(dir.path());
                continue;
            }
            Some(step) if validator.step(step, blocks) => continue,
            _ => {}
        }
        let stepped = [Step::Commit, Step::Execute, Step::Fetch]
            .into_iter()
            .any(|step| validator.step(step, blocks));
        assert!(stepped, "the pipeline is stuck");
    }
    let roots = (1..=last)
        .map(|height| validator.storage.state_root_at(height).unwrap().unwrap())
        .collect();
    let hashes: Vec<Hash32> = blocks
        .iter()
        .flatten()
        .map(SignedTransaction::hash)
        .collect();
    (roots, validator.storage.tx_locations(&hashes).unwrap())
}

/// After each commit, in a schedule that otherwise runs one block at a time.
fn restart_after(heights: &[u64], last: u64) -> Vec<Step> {
    let mut schedule = Vec::new();
    for height in 1..=last {
        schedule.extend([Step::Fetch, Step::Execute, Step::Commit]);
        if heights.contains(&height) {
            schedule.push(Step::Restart);
        }
    }
    schedule
}

#[test]
fn a_restart_between_two_inclusions_changes_nothing() {
    // Account 0's nonce-1 transfer comes before its nonce 0: it fails and leaves no trace
    // in state. When it is ordered again, its nonce is right.
    let early = transfer(0, 1, 1, 100);
    // Account 2 cannot pay the fee until account 0 pays it.
    let unfunded = transfer(2, 0, 1, 10);
    let blocks = vec![
        vec![early.clone(), unfunded.clone()],
        vec![transfer(0, 0, 2, 200)],
        vec![early, unfunded],
    ];
    let straight = run(&blocks, &[]);
    for restarts in [&[1][..], &[2], &[1, 2]] {
        let restarted = run(&blocks, &restart_after(restarts, 3));
        assert_eq!(
            restarted.0, straight.0,
            "state roots, restarts after {restarts:?}"
        );
        assert_eq!(
            restarted.1, straight.1,
            "receipts, restarts after {restarts:?}"
        );
    }
    // The replays were skipped: each transaction is indexed at its first inclusion.
    assert!(straight.1[..2]
        .iter()
        .all(|l| l.is_some_and(|l| l.height == 1)));
}

/// Transfers among three accounts with nonces 0..4: a random block draws from these, so
/// blocks repeat transactions, within a block and across heights, that fail at one
/// inclusion (nonce too high, fee unpaid) and could succeed at a later one.
fn pool() -> Vec<SignedTransaction> {
    let mut pool = Vec::new();
    for from in 0..3 {
        for nonce in 0..4 {
            for to in 0..3 {
                for amount in [30, 400] {
                    pool.push(transfer(from, nonce, to, amount));
                }
            }
        }
    }
    pool
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Fetch),
        3 => Just(Step::Execute),
        3 => Just(Step::Commit),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn restarts_anywhere_reach_the_uninterrupted_roots(
        picks in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 0..6), 1..10),
        schedule in prop::collection::vec(step(), 0..60),
    ) {
        let pool = pool();
        let blocks: Vec<Vec<SignedTransaction>> = picks
            .iter()
            .map(|block| block.iter().map(|i| i.get(&pool).clone()).collect())
            .collect();
        let straight = run(&blocks, &[]);
        let scheduled = run(&blocks, &schedule);
        prop_assert_eq!(&scheduled.0, &straight.0, "state roots");
        prop_assert_eq!(&scheduled.1, &straight.1, "receipts");
    }
}
