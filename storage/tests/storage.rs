//! The store's contract through its public API, on a real RocksDB in a temporary
//! directory: atomic commits and recovery, ordering rules, pipelined views and the
//! cache, pruning, safety data and typed corruption errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ordo_storage::{BlockCommit, Storage, StorageConfig, StorageError, TxLocation, TxOutcome};
use ordo_types::{Hash32, StateAccumulator, StateView};

fn block_hash(height: u64) -> Hash32 {
    Hash32::digest(b"ordo/storage-test/block\0", &height.to_le_bytes())
}

fn tx_hash(height: u64, i: u32) -> Hash32 {
    Hash32::digest_parts(
        b"ordo/storage-test/tx\0",
        &[&height.to_le_bytes(), &i.to_le_bytes()],
    )
}

type Write = (Vec<u8>, Option<Vec<u8>>);

fn set(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Write {
    (key.as_ref().to_vec(), Some(value.as_ref().to_vec()))
}

fn del(key: impl AsRef<[u8]>) -> Write {
    (key.as_ref().to_vec(), None)
}

/// Keeps the accumulator and a model of the state in step with the commits it builds.
struct Chain {
    accumulator: StateAccumulator,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Chain {
    fn new() -> Self {
        Chain {
            accumulator: StateAccumulator::new(),
            state: BTreeMap::new(),
        }
    }

    fn block(&mut self, height: u64, writes: Vec<Write>, txs: u32) -> BlockCommit {
        for (key, value) in &writes {
            if let Some(old) = self.state.remove(key) {
                self.accumulator.remove(key, &old);
            }
            if let Some(value) = value {
                self.accumulator.insert(key, value);
                self.state.insert(key.clone(), value.clone());
            }
        }
        BlockCommit {
            height,
            block_hash: block_hash(height),
            state_writes: writes,
            transactions: (0..txs)
                .map(|i| TxOutcome {
                    hash: tx_hash(height, i),
                    status: (i % 2) as u8,
                    receipt: format!("receipt {height}/{i}").into_bytes(),
                })
                .collect(),
            accumulator: self.accumulator.clone(),
            skipped: Vec::new(),
        }
    }
}

fn open(dir: &tempfile::TempDir) -> (Storage, ordo_storage::Recovery) {
    Storage::open(dir.path(), StorageConfig::small()).unwrap()
}

fn record(storage: &Storage, height: u64) {
    storage
        .record_committed(height, &block_hash(height), Some(b"block"), Some(b"qc"))
        .unwrap();
}

#[test]
fn a_fresh_store_recovers_to_the_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, None);
    assert_eq!(recovery.last_committed, None);
    assert!(recovery.pending.is_empty());
    assert_eq!(recovery.state_root, StateAccumulator::new().root());
    assert_eq!(storage.state_view().read(b"k").unwrap(), None);
    assert_eq!(storage.safety_data().unwrap(), None);
}

#[test]
fn committed_blocks_are_readable_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let root2 = {
        let (storage, _) = open(&dir);
        record(&storage, 1);
        let b1 = chain.block(1, vec![set("a", "1"), set("b", "2")], 3);
        assert_eq!(storage.commit_executed(&b1).unwrap(), b1.state_root());
        record(&storage, 2);
        let b2 = chain.block(2, vec![del("a"), set("c", "3")], 2);
        let root2 = storage.commit_executed(&b2).unwrap();

        assert_eq!(storage.state_get(b"a").unwrap(), None);
        assert_eq!(storage.state_get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(storage.state_get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(
            storage.tx_location(&tx_hash(1, 2)).unwrap(),
            Some(TxLocation {
                height: 1,
                position: 2,
                status: 0
            })
        );
        assert_eq!(
            storage.receipt(&tx_hash(2, 1)).unwrap(),
            Some(b"receipt 2/1".to_vec())
        );
        assert_eq!(storage.tx_location(&tx_hash(2, 2)).unwrap(), None);
        assert_eq!(storage.state_root_at(1).unwrap(), Some(b1.state_root()));
        assert_eq!(
            storage.block_at(2).unwrap(),
            Some((block_hash(2), b"block".to_vec()))
        );
        assert_eq!(storage.qc(&block_hash(2)).unwrap(), Some(b"qc".to_vec()));
        root2
    };

    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, Some(2));
    assert_eq!(recovery.last_committed, Some(2));
    assert!(recovery.pending.is_empty());
    assert_eq!(recovery.state_root, root2);
    assert_eq!(recovery.accumulator, chain.accumulator);
    assert_eq!(storage.recompute_accumulator().unwrap(), chain.accumulator);
    assert_eq!(storage.state_get(b"b").unwrap(), Some(b"2".to_vec()));
}

/// The store's files opened by RocksDB itself, read-only: where each key really went.
fn raw_get(dir: &tempfile::TempDir, family: &str, key: &[u8]) -> Option<Vec<u8>> {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    let db =
        rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), dir.path(), &names, false)
            .unwrap();
    db.get_cf(db.cf_handle(family).unwrap(), key).unwrap()
}

fn raw_put(dir: &tempfile::TempDir, family: &str, key: &[u8], value: Option<&[u8]>) {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), &names).unwrap();
    let cf = db.cf_handle(family).unwrap();
    match value {
        Some(value) => db.put_cf(cf, key, value).unwrap(),
        None => db.delete_cf(cf, key).unwrap(),
    }
}

#[test]
fn contract_code_and_slots_have_families_of_their_own_under_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let account = [&[0x01][..], &[7; 20]].concat();
    let code = [&[ordo_types::CODE_KEY_TAG][..], &[7; 20]].concat();
    let slot = [&[ordo_types::SLOT_KEY_TAG][..], &[7; 20], &[9; 32]].concat();
    {
        let (storage, _) = open(&dir);
        record(&storage, 1);
        let b1 = chain.block(
            1,
            vec![
                set(&account, "balance"),
                set(&code, "code"),
                set(&slot, "word"),
            ],
            1,
        );
        storage.commit_executed(&b1).unwrap();
        record(&storage, 2);
        let b2 = chain.block(2, vec![set(&slot, "word 2")], 1);
        storage.commit_executed(&b2).unwrap();
        assert_eq!(storage.state_get(&code).unwrap(), Some(b"code".to_vec()));
        assert_eq!(storage.state_get(&slot).unwrap(), Some(b"word 2".to_vec()));
    }
    assert_eq!(raw_get(&dir, "state", &account), Some(b"balance".to_vec()));
    assert_eq!(raw_get(&dir, "code", &code), Some(b"code".to_vec()));
    assert_eq!(
        raw_get(&dir, "contract_storage", &slot),
        Some(b"word 2".to_vec())
    );
    assert_eq!(raw_get(&dir, "state", &code), None);
    assert_eq!(raw_get(&dir, "state", &slot), None);

    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.accumulator, chain.accumulator);
    // Every family is in the commitment: recomputed from all three, it is the stored one.
    assert_eq!(storage.recompute_accumulator().unwrap(), chain.accumulator);
    let mut keys = Vec::new();
    storage
        .for_each_state_entry(|k, _| keys.push(k.to_vec()))
        .unwrap();
    assert_eq!(keys, vec![account, code.clone(), slot]);
    assert_eq!(
        storage.state_view().get(&code).unwrap(),
        Some(b"code".to_vec())
    );
}

#[test]
fn a_store_of_another_layout_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (storage, _) = open(&dir);
        record(&storage, 1);
    }
    // As a store from before layouts were versioned: a chain, no layout mark.
    raw_put(&dir, "meta", b"layout_version", None);
    match Storage::open(dir.path(), StorageConfig::small()) {
        Err(e @ StorageError::Layout { found: None, .. }) => {
            assert!(e.to_string().contains("empty data directory"), "{e}");
            assert!(e.is_fatal());
        }
        other => panic!("expected a layout error, got {:?}", other.map(|_| ())),
    }
    // The layout before blocks carried state roots.
    raw_put(&dir, "meta", b"layout_version", Some(&6u32.to_be_bytes()));
    assert!(matches!(
        Storage::open(dir.path(), StorageConfig::small()),
        Err(StorageError::Layout { found: Some(6), .. })
    ));
    // A new store is marked, and opens again.
    let fresh = tempfile::tempdir().unwrap();
    drop(open(&fresh));
    assert!(raw_get(&fresh, "meta", b"layout_version").is_some());
    drop(open(&fresh));
}

#[test]
fn recovery_lists_committed_blocks_not_yet_executed() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    {
        let (storage, _) = open(&dir);
        for h in 1..=4 {
            record(&storage, h);
        }
        storage
            .commit_executed(&chain.block(1, vec![set("x", "1")], 1))
            .unwrap();
    }
    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, Some(1));
    assert_eq!(recovery.last_committed, Some(4));
    let pending: Vec<_> = recovery
        .pending
        .iter()
        .map(|p| (p.height, p.hash))
        .collect();
    assert_eq!(
        pending,
        vec![(2, block_hash(2)), (3, block_hash(3)), (4, block_hash(4))]
    );
    // Recording an already committed block again changes nothing.
    record(&storage, 3);
}

#[test]
fn heights_must_follow_each_other_and_match_the_committed_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let mut chain = Chain::new();

    // Not committed yet.
    let b1 = chain.block(1, vec![set("k", "v")], 0);
    assert!(matches!(
        storage.commit_executed(&b1),
        Err(StorageError::NotCommitted { height: 1, .. })
    ));
    record(&storage, 1);
    // A gap in the committed chain.
    assert!(matches!(
        storage.record_committed(3, &block_hash(3), None, None),
        Err(StorageError::OutOfOrder {
            expected: 2,
            got: 3,
            ..
        })
    ));
    // Another block at a committed height.
    assert!(matches!(
        storage.record_committed(1, &block_hash(9), None, None),
        Err(StorageError::HeightConflict { height: 1, .. })
    ));
    // Executing a block other than the committed one.
    let mut wrong = b1.clone();
    wrong.block_hash = block_hash(9);
    assert!(matches!(
        storage.commit_executed(&wrong),
        Err(StorageError::HeightConflict { height: 1, .. })
    ));
    storage.commit_executed(&b1).unwrap();
    // The same height twice, and a gap.
    assert!(matches!(
        storage.commit_executed(&b1),
        Err(StorageError::OutOfOrder {
            expected: 2,
            got: 1,
            ..
        })
    ));
    record(&storage, 2);
    record(&storage, 3);
    let mut b3 = b1.clone();
    b3.height = 3;
    b3.block_hash = block_hash(3);
    assert!(matches!(
        storage.commit_executed(&b3),
        Err(StorageError::OutOfOrder {
            expected: 2,
            got: 3,
            ..
        })
    ));
    // None of the refusals left a trace.
    assert_eq!(storage.last_executed(), Some(1));
    assert!(storage.health().is_none());
}

#[test]
fn a_view_sees_staged_blocks_while_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let mut chain = Chain::new();
    record(&storage, 1);
    record(&storage, 2);
    storage
        .commit_executed(&chain.block(1, vec![set("a", "1"), set("b", "1")], 0))
        .unwrap();

    // Block 2 is executed and staged, not yet written: the view for block 3 sees it.
    let b2 = Arc::new(chain.block(2, vec![set("a", "2"), del("b")], 0));
    storage.stage_executed(b2.clone()).unwrap();
    let view = storage.state_view();
    assert_eq!(view.height(), Some(2));
    assert_eq!(view.read(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(view.read(b"b").unwrap(), None);
    assert_eq!(storage.staged_heights(), vec![2]);

    // Out of order staging is refused.
    let mut b4 = (*b2).clone();
    b4.height = 4;
    assert!(matches!(
        storage.stage_executed(Arc::new(b4)),
        Err(StorageError::OutOfOrder {
            expected: 3,
            got: 4,
            ..
        })
    ));

    // Writing block 2 leaves the view valid: it already showed block 2.
    storage.commit_executed(&b2).unwrap();
    assert!(storage.staged_heights().is_empty());
    assert_eq!(view.read(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(StateView::get(&view, b"b").unwrap(), None);

    // Once block 3 is written, the view still answers from its own staged block 2, but
    // refuses to read the database, which may now hold block 3's values.
    record(&storage, 3);
    storage
        .commit_executed(&chain.block(3, vec![set("a", "3"), set("c", "3")], 0))
        .unwrap();
    assert_eq!(view.read(b"a").unwrap(), Some(b"2".to_vec()));
    assert!(matches!(
        view.read(b"c"),
        Err(StorageError::StaleView {
            view: Some(2),
            written: 3
        })
    ));
    assert!(StateView::get(&view, b"c").is_err());
    assert_eq!(
        storage.state_view().read(b"a").unwrap(),
        Some(b"3".to_vec())
    );
    assert_eq!(
        storage.state_view().read(b"c").unwrap(),
        Some(b"3".to_vec())
    );
}

#[test]
fn the_cache_never_serves_an_overwritten_value() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let mut chain = Chain::new();
    record(&storage, 1);
    storage
        .commit_executed(&chain.block(1, vec![set("k", "1")], 0))
        .unwrap();
    // Cached by the read, then overwritten and deleted by later blocks.
    assert_eq!(storage.state_get(b"k").unwrap(), Some(b"1".to_vec()));
    assert_eq!(storage.state_get(b"absent").unwrap(), None);
    record(&storage, 2);
    storage
        .commit_executed(&chain.block(2, vec![set("k", "2"), set("absent", "x")], 0))
        .unwrap();
    assert_eq!(storage.state_get(b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(storage.state_get(b"absent").unwrap(), Some(b"x".to_vec()));
    record(&storage, 3);
    storage
        .commit_executed(&chain.block(3, vec![del("k")], 0))
        .unwrap();
    assert_eq!(storage.state_get(b"k").unwrap(), None);
    assert!(storage.cache_stats().hits >= 2);
}

/// Readers race a writer; every block writes every key with its own height, so any
/// value a view returns must equal the view's height. A stale cache entry or a read
/// from the future would show up as a mismatch.
#[test]
fn concurrent_readers_see_exactly_their_views_height() {
    const KEYS: u64 = 64;
    const BLOCKS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        // Tiny, so that eviction and re-insertion happen all the time.
        cache_entries: 32,
        sync_commits: false,
        ..StorageConfig::small()
    };
    let (storage, _) = Storage::open(dir.path(), config).unwrap();
    let key = |i: u64| format!("key{i}").into_bytes();
    let done = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..3)
        .map(|r| {
            let storage = storage.clone();
            let done = done.clone();
            let checked = checked.clone();
            std::thread::spawn(move || {
                let mut i = r;
                while !done.load(Ordering::SeqCst) {
                    let view = storage.state_view();
                    for _ in 0..KEYS {
                        i = (i + 7) % KEYS;
                        match view.read(&key(i)) {
                            Ok(value) => {
                                let expected = view.height().map(|h| h.to_le_bytes().to_vec());
                                assert_eq!(value, expected, "key {i} in view {:?}", view.height());
                                checked.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(StorageError::StaleView { .. }) => break,
                            Err(e) => panic!("read failed: {e}"),
                        }
                    }
                }
            })
        })
        .collect();

    let mut chain = Chain::new();
    for height in 0..BLOCKS {
        let writes = (0..KEYS)
            .map(|i| set(key(i), height.to_le_bytes()))
            .collect();
        let commit = Arc::new(chain.block(height, writes, 0));
        storage
            .record_committed(height, &block_hash(height), None, None)
            .unwrap();
        // Alternate between pipelined and direct commits.
        if height % 2 == 0 {
            storage.stage_executed(commit.clone()).unwrap();
        }
        storage.commit_executed(&commit).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(checked.load(Ordering::Relaxed) > 0);
}

#[test]
fn batched_transaction_lookups_agree_with_single_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::new();
    let (storage, _) = open(&dir);
    for height in 1..=3 {
        record(&storage, height);
        storage
            .commit_executed(&chain.block(height, vec![set("k", [height as u8])], 4))
            .unwrap();
        if height == 2 {
            // Some entries in table files, some in the memtable.
            storage.flush().unwrap();
        }
    }
    // A block staged but not written is not in the index yet.
    record(&storage, 4);
    storage
        .stage_executed(Arc::new(chain.block(4, vec![], 2)))
        .unwrap();
    let asked: Vec<Hash32> = vec![
        tx_hash(3, 1),
        tx_hash(9, 0),
        tx_hash(1, 0),
        tx_hash(4, 0),
        tx_hash(2, 3),
        tx_hash(1, 0),
        tx_hash(2, 4),
    ];
    let batched = storage.tx_locations(&asked).unwrap();
    let single: Vec<Option<TxLocation>> = asked
        .iter()
        .map(|h| storage.tx_location(h).unwrap())
        .collect();
    assert_eq!(batched, single);
    assert_eq!(
        batched[4],
        Some(TxLocation {
            height: 2,
            position: 3,
            status: 1
        })
    );
    assert_eq!(
        batched.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false, true, false, true, true, false]
    );
    assert_eq!(storage.tx_locations(&[]).unwrap(), Vec::new());
}

#[test]
fn pruning_drops_the_history_below_the_window_but_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        retain_heights: Some(3),
        batch_grace_heights: 2,
        ..StorageConfig::small()
    };
    let (storage, _) = Storage::open(dir.path(), config).unwrap();
    let mut chain = Chain::new();
    let batch_digest = |h: u64| Hash32::digest(b"ordo/storage-test/batch\0", &h.to_le_bytes());
    // Ordered at height 2 and again, skipped, at 9: the later copy's record stays.
    let again = tx_hash(2, 0);
    // Block 9 is stored while the chain is at 6 and committed at 9: its bytes stay.
    let late = block_hash(9);
    for h in 1..=10 {
        storage.put_batches(&[(batch_digest(h), b"batch")]).unwrap();
        if h == 7 {
            storage.put_block(&late, b"block", None).unwrap();
        }
        record(&storage, h);
        let key = h.to_le_bytes();
        let mut commit = chain.block(h, vec![set(key, "v")], 1);
        if h == 9 {
            commit.skipped = vec![again];
        }
        storage.commit_executed(&commit).unwrap();
    }
    let stats = storage.prune().unwrap();
    // Kept: heights 8, 9, 10 (and height 0's name of the genesis, none here).
    assert_eq!(stats.blocks, 7);
    assert_eq!(stats.transactions, 7);
    assert_eq!(storage.pruned_below().unwrap(), 8);
    assert_eq!(storage.block_at(7).unwrap(), None);
    assert!(storage.block_at(8).unwrap().is_some());
    assert!(storage.block(&late).unwrap().is_some());
    assert_eq!(storage.qc(&block_hash(7)).unwrap(), None);
    assert_eq!(storage.block_hash_at(1).unwrap(), None);
    assert_eq!(storage.committed_height_of(&block_hash(1)).unwrap(), None);
    assert_eq!(storage.state_root_at(7).unwrap(), None);
    assert!(storage.state_root_at(8).unwrap().is_some());
    assert_eq!(
        storage.committed_height_of(&block_hash(10)).unwrap(),
        Some(10)
    );
    // Batches stored within the grace (2 heights) below 8 stay for now.
    assert_eq!(storage.batch(&batch_digest(5)).unwrap(), None);
    assert!(storage.batch(&batch_digest(7)).unwrap().is_some());
    assert!(storage.batch(&batch_digest(9)).unwrap().is_some());
    // Transaction entries and receipts below 8 go; the later copy's record stays.
    assert_eq!(storage.receipt(&tx_hash(1, 0)).unwrap(), None);
    assert!(storage.receipt(&tx_hash(8, 0)).unwrap().is_some());
    assert_eq!(storage.tx_location(&again).unwrap(), None);
    assert_eq!(storage.ordered_at(&[again]).unwrap(), vec![Some(9)]);
    // State stays whole.
    assert_eq!(
        storage.state_get(&1u64.to_le_bytes()).unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(storage.recompute_accumulator().unwrap(), chain.accumulator);
    // Pruning again at the same height does nothing; two heights on, the batches of the
    // grace go too.
    assert_eq!(storage.prune_below(8).unwrap(), Default::default());
    for h in 11..=12 {
        record(&storage, h);
        storage
            .commit_executed(&chain.block(h, vec![set(h.to_le_bytes(), "v")], 1))
            .unwrap();
    }
    storage.prune().unwrap();
    assert_eq!(storage.batch(&batch_digest(7)).unwrap(), None);
    assert!(storage.batch(&batch_digest(9)).unwrap().is_some());
    assert_eq!(storage.ordered_at(&[again]).unwrap(), vec![None]);
    drop(storage);
    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.pruned_below, 10);
    assert_eq!(recovery.last_executed, Some(12));
    // Never the executed height's own history.
    storage.prune_below(100).unwrap();
    assert_eq!(storage.pruned_below().unwrap(), 12);
    assert!(storage.block_at(12).unwrap().is_some());
}

#[test]
fn safety_data_is_replaced_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (storage, _) = open(&dir);
        storage.write_safety_data(b"round 1").unwrap();
        storage.write_safety_data(b"round 2").unwrap();
        assert_eq!(storage.safety_data().unwrap(), Some(b"round 2".to_vec()));
    }
    let (storage, _) = open(&dir);
    assert_eq!(storage.safety_data().unwrap(), Some(b"round 2".to_vec()));
}

#[test]
fn damaged_table_files_surface_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (storage, _) = open(&dir);
        let mut chain = Chain::new();
        record(&storage, 1);
        let writes = (0..2000u32)
            .map(|i| set(i.to_be_bytes(), [i as u8; 100]))
            .collect();
        storage.commit_executed(&chain.block(1, writes, 0)).unwrap();
        storage.flush().unwrap();
    }
    // Overwrite the middle of every table file with garbage.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sst") {
            let mut bytes = std::fs::read(&path).unwrap();
            let mid = bytes.len() / 3;
            let end = (mid + 64).min(bytes.len());
            for b in &mut bytes[mid..end] {
                *b ^= 0xa5;
            }
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let error = match Storage::open(dir.path(), StorageConfig::small()) {
        Err(e) => e,
        Ok((storage, _)) => (0..2000u32)
            .find_map(|i| storage.state_get(&i.to_be_bytes()).err())
            .or_else(|| storage.recompute_accumulator().err())
            .expect("a read of the damaged tables fails"),
    };
    assert!(
        matches!(
            error,
            StorageError::Corruption(_) | StorageError::Open { .. }
        ),
        "{error}"
    );
    assert!(error.is_fatal());
}

#[test]
fn views_are_send_sync_and_cheap_to_clone() {
    fn assert_view<T: StateView + Clone + Send + Sync + 'static>() {}
    assert_view::<ordo_storage::StateSnapshot>();
    fn assert_handle<T: Clone + Send + Sync + 'static>() {}
    assert_handle::<Storage>();
}

#[test]
fn a_store_marked_for_resync_opens_empty_but_for_its_safety_data() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Hash32([7; 32]);
    {
        let (storage, _) = open(&dir);
        assert_eq!(storage.genesis_identity().unwrap(), None);
        storage.record_genesis_identity(&identity).unwrap();
        let mut chain = Chain::new();
        for h in 1..=3 {
            record(&storage, h);
            storage
                .commit_executed(&chain.block(h, vec![set(h.to_le_bytes(), "v")], 2))
                .unwrap();
        }
        storage.write_safety_data(b"round 9").unwrap();
        storage.mark_for_resync().unwrap();
        // Nothing changes until the store is opened again.
        assert_eq!(storage.last_executed(), Some(3));
    }
    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, None);
    assert_eq!(recovery.last_committed, None);
    assert_eq!(recovery.state_root, StateAccumulator::new().root());
    assert!(storage.state_is_empty().unwrap());
    assert_eq!(storage.block_at(1).unwrap(), None);
    assert_eq!(storage.receipt(&tx_hash(2, 0)).unwrap(), None);
    assert_eq!(storage.safety_data().unwrap(), Some(b"round 9".to_vec()));
    // The chain it belongs to, too: the validator checks its genesis file against it
    // before it restores a snapshot into the emptied store.
    assert_eq!(storage.genesis_identity().unwrap(), Some(identity));
    drop(storage);
    // Emptied once: the mark is gone.
    let (storage, _) = open(&dir);
    record(&storage, 1);
    drop(storage);
    let (_, recovery) = open(&dir);
    assert_eq!(recovery.last_committed, Some(1));
}
