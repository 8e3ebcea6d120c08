//! Which of a committed block's transactions execute: the duplicate rule.
//!
//! Rule: at height h, a transaction is skipped iff its hash was included at one of the
//! [`DUPLICATE_WINDOW`] heights below h, or earlier in the same block. Included means
//! executed and indexed, whatever its status: a transaction that failed on its nonce or
//! its fee leaves no trace in state, and without the rule the same transaction, ordered
//! again once its nonce is right, would succeed. Validators batch independently, so the
//! same transaction can be ordered twice, a few blocks apart. Beyond the window nonces
//! alone decide: a transaction that did anything to state bumped its sender's nonce and
//! fails on it if ordered again; one that did nothing may then execute. The window is
//! what makes the rule a function of recent history only, so that a validator restored
//! from a snapshot of height H decides like the others once it knows the hashes included
//! at the window's heights below H, which state sync records for it
//! ([`ordo_storage::Storage::record_inclusions`]).
//!
//! The answer depends only on the committed chain, never on what a process remembers, so
//! a restarted validator executes what the others execute. [`DuplicateFilter`] reads it
//! from two places that together cover every height below the one asked about:
//!
//! - heights up to storage's last executed height: the transaction index in RocksDB,
//!   written in the same atomic batch as the block's state, and for the heights below a
//!   restored snapshot, the inclusions state sync recorded;
//! - heights admitted here but not yet written (queued for execution, executing, staged):
//!   the hashes each one included, kept in memory.
//!
//! Invariant: the in-memory record holds exactly the admitted heights above the last
//! executed height that storage reported at the latest admission. Storage's height is read
//! first, the heights it covers are dropped next, and the index is looked up last: a block
//! written meanwhile is then found in memory, in the index or in both, never in neither.
//! After a restart, admission resumes at the executed height plus one with nothing in
//! memory, which the rule answers the same way.

use std::collections::{HashSet, VecDeque};

use ordo_storage::{Storage, StorageError};
use ordo_types::Hash32;

/// Heights the duplicate rule looks back on: a copy of a transaction ordered by another
/// validator's batch lands within a few blocks of the first; 256 blocks are several
/// seconds of a loaded chain, and what a validator restored from a snapshot fetches
/// below it.
pub const DUPLICATE_WINDOW: u64 = 256;

/// The duplicate rule over one store; heights are admitted one after the other. Its memory
/// holds the blocks between fetching and writing, which the pipeline's bounded channels
/// keep to a few.
#[derive(Default)]
pub struct DuplicateFilter {
    /// The hashes each admitted height included, oldest height first, for heights not
    /// yet written when last checked.
    in_flight: VecDeque<(u64, Vec<Hash32>)>,
    /// Every hash in `in_flight`; a hash is included once, so it appears there once.
    in_flight_hashes: HashSet<Hash32>,
}

impl DuplicateFilter {
    pub fn new() -> Self {
        DuplicateFilter::default()
    }

    /// Applies the rule to block `height`, whose transactions' hashes are `hashes` in
    /// block order: whether each executes. The ones that do count as included at
    /// `height` for the heights admitted after it. `height` follows the previous
    /// admission, or storage's last executed height when every admitted height is written.
    pub fn admit(
        &mut self,
        storage: &Storage,
        height: u64,
        hashes: &[Hash32],
    ) -> ordo_storage::Result<Vec<bool>> {
        let executed = storage.last_executed();
        while let Some((admitted, included)) = self.in_flight.pop_front() {
            if Some(admitted) > executed {
                self.in_flight.push_front((admitted, included));
                break;
            }
            for hash in &included {
                self.in_flight_hashes.remove(hash);
            }
        }
        let expected = match self.in_flight.back() {
            Some((last, _)) => last + 1,
            None => executed.map_or(0, |h| h + 1),
        };
        if height != expected {
            // Also a block already written, whose own transactions the index would call
            // duplicates.
            return Err(StorageError::OutOfOrder {
                what: "admitted",
                expected,
                got: height,
            });
        }

        // First occurrences that no height in memory included, recorded at once so that
        // later copies in the block are left out; then the index has its say.
        let mut candidates = Vec::with_capacity(hashes.len());
        let mut positions = Vec::with_capacity(hashes.len());
        for (position, hash) in hashes.iter().enumerate() {
            if self.in_flight_hashes.insert(*hash) {
                candidates.push(*hash);
                positions.push(position);
            }
        }
        let looked_up = included_at(storage, height, &candidates);
        let indexed = match looked_up {
            Ok(indexed) => indexed,
            Err(e) => {
                for hash in &candidates {
                    self.in_flight_hashes.remove(hash);
                }
                return Err(e);
            }
        };
        let floor = height.saturating_sub(DUPLICATE_WINDOW);
        let mut keep = vec![false; hashes.len()];
        let mut included = Vec::with_capacity(candidates.len());
        for ((hash, position), at) in candidates.into_iter().zip(positions).zip(indexed) {
            if at.is_some_and(|at| at >= floor) {
                self.in_flight_hashes.remove(&hash);
            } else {
                keep[position] = true;
                included.push(hash);
            }
        }
        self.in_flight.push_back((height, included));
        Ok(keep)
    }

    /// Admitted heights not known to be written.
    #[cfg(test)]
    pub fn in_flight_heights(&self) -> usize {
        self.in_flight.len()
    }
}

/// The height at which storage says each hash was included: the transaction index, and,
/// while the window reaches below the snapshot a store was restored from, the inclusions
/// state sync recorded.
fn included_at(
    storage: &Storage,
    height: u64,
    hashes: &[Hash32],
) -> ordo_storage::Result<Vec<Option<u64>>> {
    let mut at: Vec<Option<u64>> = storage
        .tx_locations(hashes)?
        .into_iter()
        .map(|l| l.map(|l| l.height))
        .collect();
    let restored_at = storage.pruned_below()?;
    if restored_at > 0 && height <= restored_at.saturating_add(DUPLICATE_WINDOW) {
        for (slot, recorded) in at.iter_mut().zip(storage.inclusions(hashes)?) {
            if slot.is_none() {
                *slot = recorded;
            }
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests;
