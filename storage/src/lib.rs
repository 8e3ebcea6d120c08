//! RocksDB storage: atomic per-block commit, consensus safety data and recovery.
//!
//! Not built yet: see the storage issue.
