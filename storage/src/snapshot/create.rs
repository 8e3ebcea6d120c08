//! Writing snapshots of the executed state, and reading them back to serve peers.
//!
//! Only the checkpoint is taken on the caller's thread, under the executed-block lock:
//! there, the database's state is exactly that of the last executed height (staged blocks
//! live only in memory), and the height and root read under the same lock describe it.
//! Everything else (reading the checkpoint, cutting, hashing, writing and syncing files)
//! runs on a thread of its own at bulk priority, while blocks go on being written.
//! One snapshot is written at a time; a finished one replaces the oldest beyond
//! `StorageConfig::snapshots_kept`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use ordo_types::{Hash32, StateFamily};
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{IteratorMode, Options, ReadOptions, DB};
use tracing::{info, warn};

use super::format::{Chunker, SnapshotManifest, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES};
use crate::error::{Result, StorageError};
use crate::schema::*;
use crate::store::Storage;

const MANIFEST_FILE: &str = "manifest";
const TMP_PREFIX: &str = ".tmp-";
const CHECKPOINT_PREFIX: &str = ".checkpoint-";

/// A complete snapshot on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub height: u64,
    pub state_root: Hash32,
    pub entries: u64,
    pub chunks: u32,
    /// Encoded bytes of all chunks together.
    pub bytes: u64,
}

impl SnapshotInfo {
    fn of(manifest: &SnapshotManifest) -> Self {
        SnapshotInfo {
            height: manifest.height,
            state_root: manifest.state_root,
            entries: manifest.entries,
            chunks: manifest.chunks.len() as u32,
            bytes: manifest.total_bytes(),
        }
    }
}

/// A snapshot being written on its own thread. Join it to learn how it ended, or detach
/// it: it then logs its end itself (a failure as a warning and a counter).
#[must_use = "join the snapshot job or detach it"]
pub struct SnapshotJob {
    height: u64,
    thread: JoinHandle<Result<SnapshotInfo>>,
}

impl SnapshotJob {
    /// The height the snapshot describes.
    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the snapshot to be complete on disk.
    pub fn join(self) -> Result<SnapshotInfo> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(failed(self.height, "the snapshot thread panicked")))
    }

    /// Lets the snapshot finish on its own.
    pub fn detach(self) {}
}

/// Clears the one-job-at-a-time flag however the job ends.
struct Running(Storage);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.inner.snapshot_running.store(false, Ordering::SeqCst);
    }
}

impl Storage {
    /// Starts a snapshot of the state after the last executed height. `None` when there
    /// is nothing to do: nothing executed yet (or a restore under way), a snapshot of
    /// that height already exists, or another snapshot is being written.
    ///
    /// Blocks commits only for as long as RocksDB takes to make a checkpoint (hard links,
    /// after flushing what the memtables gathered since the flush just before).
    pub fn start_snapshot(&self) -> Result<Option<SnapshotJob>> {
        self.snapshot_of(None)
    }

    /// Whether the configured interval asks for a snapshot of the state after `height`
    /// (never of genesis, height 0).
    pub fn snapshot_due(&self, height: u64) -> bool {
        self.inner
            .config
            .snapshot_interval
            .is_some_and(|interval| interval > 0 && height > 0 && height % interval == 0)
    }

    /// Starts a snapshot of the state after `height`, only if that is the last executed
    /// height when the executed-block lock is taken: validators snapshot the same heights
    /// (multiples of an interval), so that their manifests can be compared. The caller
    /// is the one that writes executed blocks, between two writes; `None` as for
    /// [`Storage::start_snapshot`], or when execution is elsewhere.
    pub fn start_snapshot_at(&self, height: u64) -> Result<Option<SnapshotJob>> {
        self.snapshot_of(Some(height))
    }

    fn snapshot_of(&self, wanted: Option<u64>) -> Result<Option<SnapshotJob>> {
        self.check_writable()?;
        if self.last_executed().is_none()
            || self.inner.snapshot_running.swap(true, Ordering::SeqCst)
        {
            return Ok(None);
        }
        let running = Running(self.clone());
        let dir = self.snapshot_dir();
        remove_leftovers(&dir)?;
        // What the checkpoint flushes under the lock is then only what arrives meanwhile.
        self.flush()?;

        let (height, state_root, checkpoint) = {
            let _exec = self.inner.exec_lock.lock();
            let Some(height) = self.last_executed() else {
                return Ok(None);
            };
            if wanted.is_some_and(|w| w != height) {
                return Ok(None);
            }
            if dir.join(height.to_string()).join(MANIFEST_FILE).exists() {
                return Ok(None);
            }
            let (state_root, _) = self.stored_accumulator()?;
            let checkpoint = dir.join(format!("{CHECKPOINT_PREFIX}{height}"));
            Checkpoint::new(&self.inner.db)
                .and_then(|c| c.create_checkpoint(&checkpoint))
                .map_err(|e| failed(height, format!("checkpoint: {e}")))?;
            (height, state_root, checkpoint)
        };

        let job = Job {
            dir,
            checkpoint,
            height,
            state_root,
            chunk_bytes: self.inner.config.snapshot_chunk_bytes,
            kept: self.inner.config.snapshots_kept.max(1),
        };
        let thread = std::thread::Builder::new()
            .name(format!("snapshot-{height}"))
            .spawn(move || {
                let _running = running;
                job.run()
            })
            .map_err(|e| failed(height, format!("cannot start its thread: {e}")))?;
        Ok(Some(SnapshotJob { height, thread }))
    }

    /// The complete snapshots on disk, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let dir = self.snapshot_dir();
        let mut infos = Vec::new();
        for height in complete_heights(&dir)? {
            if let Some(manifest) = read_manifest(&dir, height)? {
                infos.push(SnapshotInfo::of(&manifest));
            }
        }
        Ok(infos)
    }

    /// The manifest of the snapshot of `height`, if there is one.
    pub fn snapshot_manifest(&self, height: u64) -> Result<Option<SnapshotManifest>> {
        read_manifest(&self.snapshot_dir(), height)
    }

    /// Chunk `index` of the snapshot of `height`, as encoded bytes to serve a peer; `None`
    /// if there is no such snapshot (any more) or chunk. Not checked against the
    /// manifest here: the peer checks it, and must anyway.
    pub fn snapshot_chunk(&self, height: u64, index: u32) -> Result<Option<Vec<u8>>> {
        let path = self
            .snapshot_dir()
            .join(height.to_string())
            .join(chunk_file(index));
        read_bounded(&path, MAX_CHUNK_BYTES)
    }

    pub(crate) fn snapshot_dir(&self) -> PathBuf {
        let config = &self.inner.config;
        config
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| self.inner.path.join("snapshots"))
    }
}

/// What the snapshot thread needs: no handle on the live store.
struct Job {
    dir: PathBuf,
    checkpoint: PathBuf,
    height: u64,
    state_root: Hash32,
    chunk_bytes: usize,
    kept: usize,
}

impl Job {
    fn run(self) -> Result<SnapshotInfo> {
        ordo_types::lower_thread_priority();
        let started = Instant::now();
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", self.height));
        let result = self.write(&tmp);
        // Best effort: a leftover is removed by the next job.
        let _ = fs::remove_dir_all(&self.checkpoint);
        match &result {
            Ok(info) => {
                let elapsed = started.elapsed().as_secs_f64();
                metrics::counter!("ordo_storage_snapshots_created_total").increment(1);
                metrics::histogram!("ordo_storage_snapshot_seconds").record(elapsed);
                metrics::gauge!("ordo_storage_snapshot_bytes").set(info.bytes as f64);
                metrics::gauge!("ordo_storage_snapshot_height").set(info.height as f64);
                info!(
                    height = info.height,
                    root = %info.state_root.short(),
                    entries = info.entries,
                    chunks = info.chunks,
                    bytes = info.bytes,
                    seconds = elapsed,
                    "snapshot written"
                );
                if let Err(e) = retain_newest(&self.dir, self.kept) {
                    warn!(error = %e, "cannot delete old snapshots");
                }
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                metrics::counter!("ordo_storage_snapshot_failures_total").increment(1);
                warn!(height = self.height, error = %e, "snapshot failed");
            }
        }
        result
    }

    /// Cuts the checkpoint's state into chunk files in `tmp`, then publishes the folder.
    fn write(&self, tmp: &Path) -> Result<SnapshotInfo> {
        let height = self.height;
        let db = open_checkpoint(&self.checkpoint).map_err(|e| failed(height, e))?;
        self.check_checkpoint(&db)?;
        fs::create_dir_all(tmp).map_err(io(tmp))?;

        let mut chunker = Chunker::new(self.chunk_bytes);
        let mut index = 0u32;
        let mut write_chunk = |chunk: Option<Vec<u8>>| -> Result<()> {
            if let Some(bytes) = chunk {
                write_synced(&tmp.join(chunk_file(index)), &bytes)?;
                index += 1;
            }
            Ok(())
        };
        for family in StateFamily::ALL {
            let cf = db
                .cf_handle(state_cf(family))
                .ok_or_else(|| failed(height, format!("no {} family", state_cf(family))))?;
            let mut options = ReadOptions::default();
            // A snapshot reads everything once: caching it would only evict the hot keys.
            options.fill_cache(false);
            for item in db.iterator_cf_opt(cf, options, IteratorMode::Start) {
                let (key, value) = item.map_err(|e| failed(height, e))?;
                if StateFamily::of(&key) != family {
                    return Err(failed(
                        height,
                        format!("key {key:?} is in the wrong family"),
                    ));
                }
                let chunk = chunker
                    .push(key.into_vec(), value.into_vec())
                    .map_err(|e| failed(height, e))?;
                write_chunk(chunk)?;
            }
        }
        let last = chunker.finish_chunk().map_err(|e| failed(height, e))?;
        write_chunk(last)?;
        let (manifest, accumulator) = chunker.manifest(height, self.state_root);
        if accumulator.root() != self.state_root {
            return Err(failed(
                height,
                format!(
                    "its entries make root {}, the store recorded {}",
                    accumulator.root(),
                    self.state_root
                ),
            ));
        }
        write_synced(&tmp.join(MANIFEST_FILE), &manifest.encode())?;
        sync_dir(tmp)?;
        drop(db);
        let done = self.dir.join(height.to_string());
        fs::rename(tmp, &done).map_err(io(&done))?;
        sync_dir(&self.dir)?;
        Ok(SnapshotInfo::of(&manifest))
    }

    /// The checkpoint must hold the height and root read under the lock it was made
    /// under; anything else is a bug in how it was taken.
    fn check_checkpoint(&self, db: &DB) -> Result<()> {
        let meta = db
            .cf_handle(CF_META)
            .ok_or_else(|| failed(self.height, "no meta family"))?;
        let read = |key: &[u8]| db.get_cf(meta, key).map_err(|e| failed(self.height, e));
        let executed = read(META_EXECUTED)?
            .map(|b| decode_height("executed height", &b))
            .transpose()?;
        let root = read(META_STATE_ROOT)?
            .map(|b| decode_hash("state root", &b))
            .transpose()?;
        if executed != Some(self.height) || root != Some(self.state_root) {
            return Err(failed(
                self.height,
                format!(
                    "the checkpoint holds height {executed:?} with root {root:?}, not {} with {}",
                    self.height, self.state_root
                ),
            ));
        }
        Ok(())
    }
}

fn open_checkpoint(path: &Path) -> std::result::Result<DB, rocksdb::Error> {
    let options = Options::default();
    DB::open_cf_for_read_only(
        &options,
        path,
        [CF_STATE, CF_CODE, CF_SLOTS, CF_META],
        false,
    )
}

fn chunk_file(index: u32) -> String {
    format!("chunk-{index:06}")
}

/// Heights of the complete snapshots in `dir`, ascending.
fn complete_heights(dir: &Path) -> Result<Vec<u64>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut heights = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        if let Some(height) = name.to_str().and_then(|n| n.parse::<u64>().ok()) {
            heights.push(height);
        }
    }
    heights.sort_unstable();
    Ok(heights)
}

fn read_manifest(dir: &Path, height: u64) -> Result<Option<SnapshotManifest>> {
    let path = dir.join(height.to_string()).join(MANIFEST_FILE);
    let Some(bytes) = read_bounded(&path, MAX_MANIFEST_BYTES)? else {
        return Ok(None);
    };
    let manifest = SnapshotManifest::decode(&bytes).map_err(|e| StorageError::SnapshotIo {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if manifest.height != height {
        return Err(StorageError::SnapshotIo {
            path,
            reason: format!("the manifest is of height {}", manifest.height),
        });
    }
    Ok(Some(manifest))
}

/// A file's bytes, `None` if it does not exist; an error if it is longer than `limit`.
fn read_bounded(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() > limit {
        return Err(StorageError::SnapshotIo {
            path: path.to_path_buf(),
            reason: format!("longer than the {limit}-byte limit"),
        });
    }
    Ok(Some(bytes))
}

/// Deletes what a job that did not finish left behind; only while no job runs.
fn remove_leftovers(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TMP_PREFIX) || name.starts_with(CHECKPOINT_PREFIX) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn retain_newest(dir: &Path, kept: usize) -> Result<()> {
    let heights = complete_heights(dir)?;
    let excess = heights.len().saturating_sub(kept);
    for height in &heights[..excess] {
        let path = dir.join(height.to_string());
        fs::remove_dir_all(&path).map_err(io(&path))?;
        info!(height, "old snapshot deleted");
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// Makes the folder's entries (new files, a rename) durable.
fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io(path))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::SnapshotIo {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn failed(height: u64, reason: impl std::fmt::Display) -> StorageError {
    StorageError::SnapshotFailed {
        height,
        reason: reason.to_string(),
    }
}
