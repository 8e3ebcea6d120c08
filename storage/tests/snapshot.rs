//! State snapshots through the public API, on real RocksDB stores in temporary
//! directories: state is built through the commit path, snapshotted, and restored into
//! fresh stores; then the same with snapshots taken during commits, corrupted or lying
//! chunks and manifests, restores cut short by a restart, and aborted restores.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ordo_storage::{
    BlockCommit, ChunkInfo, Restore, SnapshotManifest, Storage, StorageConfig, StorageError,
    MAX_CHUNKS, SNAPSHOT_FORMAT,
};
use ordo_types::{codec, Hash32, SeededRng, StateAccumulator, CODE_KEY_TAG, SLOT_KEY_TAG};

/// Small enough that a few hundred entries make a dozen chunks.
const CHUNK_BYTES: usize = 2048;

fn config() -> StorageConfig {
    StorageConfig {
        snapshot_chunk_bytes: CHUNK_BYTES,
        ..StorageConfig::small()
    }
}

fn open(dir: &tempfile::TempDir) -> (Storage, ordo_storage::Recovery) {
    Storage::open(dir.path(), config()).unwrap()
}

fn block_hash(height: u64) -> Hash32 {
    Hash32::digest(b"ordo/snapshot-test/block\0", &height.to_le_bytes())
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;
type Write = (Vec<u8>, Option<Vec<u8>>);

/// Keys of all three families: native accounts, contract code and contract slots.
fn key(i: u64) -> Vec<u8> {
    match i % 3 {
        0 => format!("account/{i:04}").into_bytes(),
        1 => [&[CODE_KEY_TAG][..], format!("code/{i:04}").as_bytes()].concat(),
        _ => [&[SLOT_KEY_TAG][..], format!("slot/{i:04}").as_bytes()].concat(),
    }
}

/// Commits blocks through the store's real path, keeping a model of the state and its
/// accumulator in step.
struct Chain {
    storage: Storage,
    accumulator: StateAccumulator,
    state: State,
    height: u64,
}

impl Chain {
    fn new(storage: Storage) -> Self {
        Chain {
            storage,
            accumulator: StateAccumulator::new(),
            state: State::new(),
            height: 0,
        }
    }

    fn commit(&mut self, writes: Vec<Write>) -> Hash32 {
        self.height += 1;
        for (key, value) in &writes {
            if let Some(old) = self.state.remove(key) {
                self.accumulator.remove(key, &old);
            }
            if let Some(value) = value {
                self.accumulator.insert(key, value);
                self.state.insert(key.clone(), value.clone());
            }
        }
        let height = self.height;
        self.storage
            .record_committed(height, &block_hash(height), None, None)
            .unwrap();
        self.storage
            .commit_executed(&BlockCommit {
                height,
                block_hash: block_hash(height),
                state_writes: writes,
                transactions: Vec::new(),
                accumulator: self.accumulator.clone(),
                skipped: Vec::new(),
            })
            .unwrap()
    }

    /// Five blocks writing, overwriting and deleting `keys` keys of every family, with
    /// values of varied sizes.
    fn build(&mut self, keys: u64) {
        for round in 0..5u64 {
            let writes = (0..keys)
                .filter(|i| (i + round) % 5 != 0)
                .map(|i| {
                    if round == 4 && i % 7 == 0 {
                        (key(i), None)
                    } else {
                        (
                            key(i),
                            Some(vec![(i + round) as u8; 10 + (i as usize * 13) % 90]),
                        )
                    }
                })
                .collect();
            self.commit(writes);
        }
    }
}

fn entries(storage: &Storage) -> State {
    let mut state = State::new();
    storage
        .for_each_state_entry(|k, v| {
            state.insert(k.to_vec(), v.to_vec());
        })
        .unwrap();
    state
}

fn snapshot(storage: &Storage) -> SnapshotManifest {
    let job = storage
        .start_snapshot()
        .unwrap()
        .expect("a snapshot to take");
    let info = job.join().unwrap();
    storage.snapshot_manifest(info.height).unwrap().unwrap()
}

fn chunks(storage: &Storage, manifest: &SnapshotManifest) -> Vec<Vec<u8>> {
    (0..manifest.chunks.len() as u32)
        .map(|i| storage.snapshot_chunk(manifest.height, i).unwrap().unwrap())
        .collect()
}

fn apply_all(restore: &Restore, chunks: &[Vec<u8>]) {
    for index in restore.missing() {
        restore.apply_chunk(index, &chunks[index as usize]).unwrap();
    }
}

/// A store built through five blocks, its snapshot at height 5, and the chunks.
fn source(dir: &tempfile::TempDir) -> (Chain, SnapshotManifest, Vec<Vec<u8>>) {
    let (storage, _) = open(dir);
    let mut chain = Chain::new(storage);
    chain.build(300);
    let manifest = snapshot(&chain.storage);
    let chunks = chunks(&chain.storage, &manifest);
    (chain, manifest, chunks)
}

#[test]
fn a_snapshot_restores_into_a_fresh_store_that_then_goes_on_executing() {
    let source_dir = tempfile::tempdir().unwrap();
    let (mut chain, manifest, chunks) = source(&source_dir);
    assert_eq!(manifest.height, 5);
    assert_eq!(manifest.state_root, chain.accumulator.root());
    assert_eq!(manifest.entries, chain.state.len() as u64);
    assert!(
        manifest.chunks.len() > 5,
        "{} chunks",
        manifest.chunks.len()
    );
    let infos = chain.storage.snapshots().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(
        (infos[0].height, infos[0].state_root),
        (5, manifest.state_root)
    );
    assert_eq!(
        infos[0].bytes,
        chunks.iter().map(|c| c.len() as u64).sum::<u64>()
    );
    assert_eq!(
        chain
            .storage
            .snapshot_chunk(5, manifest.chunks.len() as u32)
            .unwrap(),
        None
    );
    assert_eq!(chain.storage.snapshot_manifest(4).unwrap(), None);
    // The same height again: nothing to do.
    assert!(chain.storage.start_snapshot().unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    assert!(storage.state_is_empty().unwrap());
    let restore = storage.begin_restore(&manifest).unwrap();
    apply_all(&restore, &chunks);
    assert!(restore.missing().is_empty());
    let recovery = restore.finish(block_hash(5)).unwrap();
    assert_eq!(recovery.last_executed, Some(5));
    assert_eq!(recovery.last_committed, Some(5));
    assert_eq!(recovery.state_root, manifest.state_root);
    assert_eq!(recovery.accumulator, chain.accumulator);
    assert_eq!(recovery.pruned_below, 5);
    assert_eq!(entries(&storage), chain.state);
    assert_eq!(storage.last_executed(), Some(5));
    assert_eq!(storage.last_committed(), Some(5));
    assert_eq!(storage.state_root_at(5).unwrap(), Some(manifest.state_root));
    assert_eq!(storage.block_hash_at(5).unwrap(), Some(block_hash(5)));
    assert_eq!(
        storage.committed_height_of(&block_hash(5)).unwrap(),
        Some(5)
    );
    assert_eq!(storage.pruned_below().unwrap(), 5);
    assert_eq!(
        storage.state_get(&key(3)).unwrap(),
        chain.state.get(&key(3)).cloned()
    );
    drop(storage);

    let (storage, reopened) = open(&dir);
    assert_eq!(reopened, recovery);
    assert_eq!(entries(&storage), chain.state);
    // Both stores execute block 6 alike.
    let mut restored = Chain {
        storage,
        accumulator: reopened.accumulator,
        state: chain.state.clone(),
        height: 5,
    };
    let block6: Vec<Write> = vec![(key(1), Some(b"six".to_vec())), (key(2), None)];
    let root6 = chain.commit(block6.clone());
    assert_eq!(restored.commit(block6), root6);
    assert_eq!(
        restored.storage.recompute_accumulator().unwrap().root(),
        root6
    );
}

#[test]
fn stores_with_the_same_state_publish_byte_identical_manifests() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, manifest_a, chunks_a) = source(&dirs[0]);
    // The same state at height 5 by another road: other values first, in other blocks.
    let (storage, _) = open(&dirs[1]);
    let mut b = Chain::new(storage);
    b.commit(
        (0..300)
            .map(|i| (key(i), Some(b"first".to_vec())))
            .collect(),
    );
    b.commit(
        (300..400)
            .map(|i| (key(i), Some(b"gone soon".to_vec())))
            .collect(),
    );
    b.storage.flush().unwrap();
    b.commit((300..400).map(|i| (key(i), None)).collect());
    b.commit(Vec::new());
    let target: Vec<Write> = (0..300)
        .map(|i| (key(i), a.state.get(&key(i)).cloned()))
        .rev()
        .collect();
    b.commit(target);
    assert_eq!(b.state, a.state);

    let manifest_b = snapshot(&b.storage);
    assert_eq!(manifest_b.encode(), manifest_a.encode());
    assert_eq!(manifest_b.digest(), manifest_a.digest());
    assert_eq!(chunks(&b.storage, &manifest_b), chunks_a);
}

#[test]
fn a_snapshot_taken_while_blocks_are_written_describes_exactly_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let storage = storage.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut chain = Chain::new(storage);
            let mut states = vec![State::new()];
            let mut rng = SeededRng::new(7);
            while !stop.load(Ordering::SeqCst) && chain.height < 2_000 {
                let writes = (0..40)
                    .map(|_| {
                        let i = rng.below(400);
                        let value =
                            (rng.below(10) > 0).then(|| rng.next_u64().to_le_bytes().repeat(3));
                        (key(i), value)
                    })
                    .collect();
                chain.commit(writes);
                states.push(chain.state.clone());
            }
            states
        })
    };
    while storage.last_executed().unwrap_or(0) < 30 {
        std::thread::yield_now();
    }
    let job = storage.start_snapshot().unwrap().unwrap();
    let height = job.height();
    let info = job.join().unwrap();
    while storage.last_executed().unwrap_or(0) < height + 5 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    let states = writer.join().unwrap();
    assert_eq!(info.height, height);
    assert_eq!(
        Some(info.state_root),
        storage.state_root_at(height).unwrap()
    );

    let manifest = storage.snapshot_manifest(height).unwrap().unwrap();
    let chunks = chunks(&storage, &manifest);
    let restored_dir = tempfile::tempdir().unwrap();
    let (restored, _) = open(&restored_dir);
    let restore = restored.begin_restore(&manifest).unwrap();
    apply_all(&restore, &chunks);
    restore.finish(block_hash(height)).unwrap();
    assert_eq!(entries(&restored), states[height as usize]);
}

#[test]
fn a_corrupted_chunk_is_refused_and_the_store_stays_restorable() {
    let source_dir = tempfile::tempdir().unwrap();
    let (chain, manifest, chunks) = source(&source_dir);
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let restore = storage.begin_restore(&manifest).unwrap();

    let mut flipped = chunks[2].clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 1;
    let refused = |result: Result<(), StorageError>, expected: u32| match result {
        Err(StorageError::InvalidChunk { index, .. }) => assert_eq!(index, expected),
        other => panic!("chunk {expected} accepted: {other:?}"),
    };
    refused(restore.apply_chunk(2, &flipped), 2);
    refused(restore.apply_chunk(2, &chunks[2][1..]), 2);
    refused(restore.apply_chunk(0, &chunks[1]), 0);
    let past = manifest.chunks.len() as u32;
    refused(restore.apply_chunk(past, &chunks[0]), past);
    assert!(storage.state_is_empty().unwrap());
    assert_eq!(restore.missing().len(), manifest.chunks.len());

    apply_all(&restore, &chunks);
    // Applying again changes nothing, but a bad copy is still refused.
    restore.apply_chunk(2, &chunks[2]).unwrap();
    refused(restore.apply_chunk(2, &flipped), 2);
    restore.finish(block_hash(5)).unwrap();
    assert_eq!(entries(&storage), chain.state);
}

#[test]
fn a_restore_cut_short_by_a_restart_resumes_with_the_missing_chunks() {
    let source_dir = tempfile::tempdir().unwrap();
    let (chain, manifest, chunks) = source(&source_dir);
    let dir = tempfile::tempdir().unwrap();
    let half: Vec<u32> = (0..manifest.chunks.len() as u32).step_by(2).collect();
    {
        let (storage, _) = open(&dir);
        let restore = storage.begin_restore(&manifest).unwrap();
        for &i in &half {
            restore.apply_chunk(i, &chunks[i as usize]).unwrap();
        }
        // Not before it is finished or aborted: executing, a second restore, a second
        // handle.
        storage
            .record_committed(1, &block_hash(1), None, None)
            .unwrap();
        let block = BlockCommit {
            height: 1,
            block_hash: block_hash(1),
            state_writes: vec![(key(0), Some(b"x".to_vec()))],
            transactions: Vec::new(),
            accumulator: StateAccumulator::new(),
            skipped: Vec::new(),
        };
        assert!(matches!(
            storage.commit_executed(&block),
            Err(StorageError::RestoreInProgress { height: 5 })
        ));
        assert!(matches!(
            storage.begin_restore(&manifest),
            Err(StorageError::RestoreInProgress { height: 5 })
        ));
        assert!(matches!(
            storage.resume_restore(),
            Err(StorageError::RestoreInProgress { height: 5 })
        ));
        assert!(matches!(
            storage.abort_restore(),
            Err(StorageError::RestoreInProgress { height: 5 })
        ));
    }

    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, None);
    assert_eq!(recovery.state_root, StateAccumulator::new().root());
    let progress = recovery.restoring.expect("the restore under way");
    assert_eq!(progress.manifest, manifest);
    assert_eq!(progress.applied, half);
    assert_eq!(
        storage.stored_accumulator().unwrap().0,
        StateAccumulator::new().root()
    );

    let restore = storage.resume_restore().unwrap();
    let missing = restore.missing();
    assert_eq!(missing.len(), manifest.chunks.len() - half.len());
    assert!(missing.iter().all(|i| i % 2 == 1));
    assert!(matches!(
        restore.finish(block_hash(5)),
        Err(StorageError::RestoreIncomplete { height: 5, .. })
    ));
    let restore = storage.resume_restore().unwrap();
    apply_all(&restore, &chunks);
    // Committed height 1 was recorded meanwhile: below the snapshot, so it is outside the
    // run that starts at 5.
    let recovery = restore.finish(block_hash(5)).unwrap();
    assert_eq!(recovery.last_committed, Some(5));
    assert_eq!(entries(&storage), chain.state);
    drop(storage);
    let (_, reopened) = open(&dir);
    assert_eq!(reopened, recovery);
}

#[test]
fn an_aborted_restore_leaves_an_empty_store_that_can_restore_again() {
    let source_dir = tempfile::tempdir().unwrap();
    let (chain, manifest, chunks) = source(&source_dir);
    let dir = tempfile::tempdir().unwrap();
    {
        let (storage, _) = open(&dir);
        assert!(matches!(
            storage.abort_restore(),
            Err(StorageError::NoRestore)
        ));
        assert!(matches!(
            storage.resume_restore(),
            Err(StorageError::NoRestore)
        ));
        let restore = storage.begin_restore(&manifest).unwrap();
        for i in 0..3 {
            restore.apply_chunk(i, &chunks[i as usize]).unwrap();
        }
    }
    // The first native key: in chunk 0, since natives come first in a snapshot.
    let first = chain.state.keys().find(|k| k[0] == b'a').unwrap();
    let (storage, recovery) = open(&dir);
    assert!(recovery.restoring.is_some());
    // A read now caches a value the abort deletes.
    assert_eq!(
        storage.state_get(first).unwrap().as_ref(),
        chain.state.get(first)
    );
    storage.abort_restore().unwrap();
    assert!(storage.state_is_empty().unwrap());
    assert_eq!(storage.state_get(first).unwrap(), None);
    drop(storage);

    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.restoring, None);
    assert_eq!(recovery.last_executed, None);
    assert!(storage.state_is_empty().unwrap());
    let restore = storage.begin_restore(&manifest).unwrap();
    apply_all(&restore, &chunks);
    restore.finish(block_hash(5)).unwrap();
    assert_eq!(entries(&storage), chain.state);
}

#[test]
fn a_manifest_whose_chunks_do_not_make_its_root_is_refused_at_finish() {
    let source_dir = tempfile::tempdir().unwrap();
    let (chain, manifest, chunks) = source(&source_dir);
    // Chunks of this state under the root of another: each chunk matches, the sum does not.
    let other_dir = tempfile::tempdir().unwrap();
    let (other, _) = open(&other_dir);
    let mut other = Chain::new(other);
    other.commit(vec![(key(1), Some(b"other".to_vec()))]);
    let lying = SnapshotManifest {
        state_root: other.accumulator.root(),
        ..manifest.clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    let restore = storage.begin_restore(&lying).unwrap();
    apply_all(&restore, &chunks);
    assert!(matches!(
        restore.finish(block_hash(5)),
        Err(StorageError::RestoreRootMismatch { height: 5, .. })
    ));
    assert_eq!(storage.last_executed(), None);
    assert_eq!(storage.last_committed(), None);
    assert_eq!(
        storage.stored_accumulator().unwrap().0,
        StateAccumulator::new().root()
    );
    drop(storage);
    let (storage, recovery) = open(&dir);
    assert_eq!(recovery.last_executed, None);
    assert_eq!(recovery.restoring.map(|r| r.manifest), Some(lying));
    storage.abort_restore().unwrap();
    assert!(storage.state_is_empty().unwrap());

    // A chunk listed twice writes the same entries twice: the state is still exactly the
    // snapshot's, and the restore finishes on it.
    let mut doubled = manifest.clone();
    doubled.chunks.push(manifest.chunks[0]);
    doubled.entries += u64::from(manifest.chunks[0].entries);
    let mut doubled_chunks = chunks.clone();
    doubled_chunks.push(chunks[0].clone());
    let restore = storage.begin_restore(&doubled).unwrap();
    apply_all(&restore, &doubled_chunks);
    restore.finish(block_hash(5)).unwrap();
    assert_eq!(entries(&storage), chain.state);
}

#[test]
fn hostile_manifests_and_chunks_are_errors_not_panics() {
    let source_dir = tempfile::tempdir().unwrap();
    let (_chain, manifest, chunks) = source(&source_dir);
    let encoded = manifest.encode();
    let mut rng = SeededRng::new(11);

    // Manifests: random bytes, every truncation, flipped bytes, forged counts.
    for len in [0, 1, 7, 60, 100, 4096] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        assert!(SnapshotManifest::decode(&bytes).is_err());
    }
    for len in 0..encoded.len() {
        assert!(
            SnapshotManifest::decode(&encoded[..len]).is_err(),
            "truncated to {len}"
        );
    }
    for _ in 0..200 {
        let mut bytes = encoded.clone();
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
        // Either an error or a manifest that still passes its own checks.
        if let Ok(decoded) = SnapshotManifest::decode(&bytes) {
            decoded.validate().unwrap();
        }
    }
    let mut forged = encoded[..52].to_vec();
    forged.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(SnapshotManifest::decode(&forged).is_err());
    let info = manifest.chunks[0];
    let huge = [
        SnapshotManifest {
            entries: u64::MAX,
            ..manifest.clone()
        },
        SnapshotManifest {
            format: SNAPSHOT_FORMAT + 1,
            ..manifest.clone()
        },
        SnapshotManifest {
            chunks: vec![ChunkInfo {
                entries: u32::MAX,
                ..info
            }],
            entries: u64::from(u32::MAX),
            ..manifest.clone()
        },
        SnapshotManifest {
            chunks: vec![ChunkInfo {
                bytes: u32::MAX,
                ..info
            }],
            entries: u64::from(info.entries),
            ..manifest.clone()
        },
        SnapshotManifest {
            chunks: vec![ChunkInfo { entries: 0, ..info }],
            entries: 0,
            ..manifest.clone()
        },
        SnapshotManifest {
            chunks: vec![info; MAX_CHUNKS + 1],
            entries: u64::from(info.entries) * (MAX_CHUNKS as u64 + 1),
            ..manifest.clone()
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    for bad in &huge {
        assert!(matches!(
            SnapshotManifest::decode(&bad.encode()),
            Err(StorageError::InvalidManifest(_))
        ));
        assert!(matches!(
            storage.begin_restore(bad),
            Err(StorageError::InvalidManifest(_))
        ));
    }
    assert!(storage.state_is_empty().unwrap());

    // Chunks: hostile bytes under a manifest that lists exactly their hash, so that they
    // reach the decoder.
    let entry = |k: &[u8], v: &[u8]| (k.to_vec(), v.to_vec());
    let mut forged_count = Vec::new();
    forged_count.extend_from_slice(&(1u64 << 60).to_le_bytes());
    forged_count.extend_from_slice(&[0; 64]);
    let mut forged_len = 1u64.to_le_bytes().to_vec();
    forged_len.extend_from_slice(&(1u64 << 60).to_le_bytes());
    forged_len.extend_from_slice(&[0; 64]);
    let mut trailing = codec::encode(&vec![entry(b"a", b"1")]);
    trailing.extend_from_slice(&[0; 16]);
    let hostile: Vec<Vec<u8>> = vec![
        (0..100).map(|_| rng.next_u64() as u8).collect(),
        forged_count,
        forged_len,
        trailing,
        codec::encode(&vec![entry(b"b", b"1"), entry(b"a", b"1")]),
        codec::encode(&vec![entry(b"a", b"1"), entry(b"a", b"2")]),
        codec::encode(&vec![entry(&[CODE_KEY_TAG], b"1"), entry(b"zz", b"1")]),
        chunks[0][..chunks[0].len() - 1].to_vec(),
    ];
    let entries_claimed = 2;
    for (n, bytes) in hostile.iter().enumerate() {
        let manifest = SnapshotManifest {
            format: SNAPSHOT_FORMAT,
            height: 9,
            state_root: Hash32::ZERO,
            entries: entries_claimed,
            chunks: vec![ChunkInfo {
                hash: SnapshotManifest::chunk_hash(bytes),
                entries: entries_claimed as u32,
                bytes: bytes.len() as u32,
            }],
        };
        let restore = storage.begin_restore(&manifest).unwrap();
        assert!(
            matches!(
                restore.apply_chunk(0, bytes),
                Err(StorageError::InvalidChunk { index: 0, .. })
            ),
            "hostile chunk {n} accepted"
        );
        drop(restore);
        storage.abort_restore().unwrap();
        assert!(storage.state_is_empty().unwrap());
    }
}

#[test]
fn restores_are_refused_into_stores_with_state_and_below_the_committed_chain() {
    let source_dir = tempfile::tempdir().unwrap();
    let (chain, manifest, _) = source(&source_dir);
    assert!(!chain.storage.state_is_empty().unwrap());
    assert!(matches!(
        chain.storage.begin_restore(&manifest),
        Err(StorageError::StateNotEmpty {
            last_executed: Some(5)
        })
    ));

    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    for height in 1..=6 {
        storage
            .record_committed(height, &block_hash(height), None, None)
            .unwrap();
    }
    assert!(matches!(
        storage.begin_restore(&manifest),
        Err(StorageError::RestoreBelowCommitted {
            height: 5,
            last_committed: 6
        })
    ));
}

#[test]
fn only_the_newest_snapshots_are_kept_and_an_empty_state_has_none_to_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = open(&dir);
    assert!(
        storage.start_snapshot().unwrap().is_none(),
        "nothing executed yet"
    );
    let mut chain = Chain::new(storage);
    chain.commit(Vec::new());
    let empty = snapshot(&chain.storage);
    assert_eq!((empty.entries, empty.chunks.len()), (0, 0));
    // What a crashed job left behind goes with the next one.
    let leftover = dir.path().join("snapshots").join(".tmp-77");
    std::fs::create_dir_all(&leftover).unwrap();
    for i in 0..3 {
        chain.commit(vec![(key(i), Some(b"v".to_vec()))]);
        snapshot(&chain.storage);
    }
    assert!(!leftover.exists());
    let heights: Vec<u64> = chain
        .storage
        .snapshots()
        .unwrap()
        .iter()
        .map(|s| s.height)
        .collect();
    assert_eq!(heights, vec![3, 4]);
    assert!(!dir.path().join("snapshots").join("2").exists());

    let restored_dir = tempfile::tempdir().unwrap();
    let (restored, _) = open(&restored_dir);
    let restore = restored.begin_restore(&empty).unwrap();
    let recovery = restore.finish(block_hash(1)).unwrap();
    assert_eq!(recovery.state_root, StateAccumulator::new().root());
    assert_eq!(recovery.last_executed, Some(1));
}
