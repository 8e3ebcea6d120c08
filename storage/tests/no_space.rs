//! A full disk is a typed, fatal error, and the store refuses further writes after it.
//!
//! Needs root: it mounts a small tmpfs to fill. Run with
//! `sudo -E cargo test -p ordo-storage --test no_space -- --ignored`.

use std::process::Command;

use ordo_storage::{BlockCommit, Storage, StorageConfig, StorageError, TxOutcome};
use ordo_types::{Hash32, StateAccumulator};

/// Unmounts the tmpfs even when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs root to mount a small tmpfs"]
fn a_full_disk_is_a_fatal_no_space_error() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("run mount");
    assert!(status.success(), "mounting a tmpfs needs root");
    let _mount = Mount(dir.path().to_path_buf());

    let (storage, _) = Storage::open(dir.path(), StorageConfig::small()).unwrap();
    let mut error = None;
    for height in 0..200u64 {
        let hash = Hash32::digest(b"ordo/no-space/block\0", &height.to_le_bytes());
        if let Err(e) = storage.record_committed(height, &hash, None, None) {
            error = Some(e);
            break;
        }
        let commit = BlockCommit {
            height,
            block_hash: hash,
            state_writes: (0..1000u64)
                .map(|i| {
                    let key =
                        Hash32::digest(b"ordo/no-space/key\0", &(height * 1000 + i).to_le_bytes());
                    (key.0.to_vec(), Some(vec![0x5a; 1000]))
                })
                .collect(),
            transactions: vec![TxOutcome {
                hash,
                status: 0,
                receipt: vec![1; 100],
            }],
            accumulator: StateAccumulator::new(),
            skipped: Vec::new(),
        };
        if let Err(e) = storage.commit_executed(&commit) {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("24 MB fill up before 200 MB are written");
    assert!(matches!(error, StorageError::NoSpace(_)), "{error}");
    assert!(error.is_fatal());
    assert!(storage.health().is_some());
    assert!(matches!(
        storage.write_safety_data(b"after"),
        Err(StorageError::WriteFailed(_))
    ));
}
