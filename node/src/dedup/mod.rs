//! Which of a committed block's transactions execute: the duplicate rule.
//!
//! Rule: at height h, a transaction is skipped iff its hash was ordered at one of the
//! [`DUPLICATE_WINDOW`] heights below h, or earlier in the same block. Ordered means in a
//! committed block, executed or skipped: a transaction that failed on its nonce or its
//! fee leaves no trace in state, and without the rule the same transaction, ordered again
//! once its nonce is right, would succeed. Validators batch independently, so the same
//! transaction can be ordered twice, a few blocks apart. Beyond the window nonces alone
//! decide: a transaction that did anything to state bumped its sender's nonce and fails
//! on it if ordered again; one that did nothing may then execute.
//!
//! The window, and counting skipped copies as ordered too, make the rule a function of
//! the window's blocks alone (whether a copy executed would depend on the window before
//! it, and so on back to genesis). A validator restored from a snapshot of height H thus
//! decides like the others once it knows which hashes the window's blocks below H
//! ordered, which state sync records for it.
//!
//! The answer depends only on the committed chain, never on what a process remembers, so
//! a restarted validator executes what the others execute. [`DuplicateFilter`] reads it
//! from two places that together cover every height below the one asked about:
//!
//! - heights up to storage's last executed height: the transaction index in RocksDB (the
//!   latest height that executed each hash), and the heights that ordered a hash without
//!   executing it ([`ordo_storage::Storage::ordered_at`]: skipped copies, written in the
//!   same atomic batch as the block's state, and what state sync recorded below a
//!   snapshot);
//! - heights admitted here but not yet written (queued for execution, executing, staged):
//!   the hashes each one ordered, kept in memory.
//!
//! Invariant: the in-memory record holds exactly the admitted heights above the last
//! executed height that storage reported at the latest admission. Storage's height is read
//! first, the heights it covers are dropped next, and storage is looked up last: a block
//! written meanwhile is then found in memory, in storage or in both, never in neither.
//! After a restart, admission resumes at the executed height plus one with nothing in
//! memory, which the rule answers the same way.

use std::collections::{HashMap, VecDeque};

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
    /// The distinct hashes each admitted height ordered, oldest height first, for heights
    /// not yet written when last checked.
    in_flight: VecDeque<(u64, Vec<Hash32>)>,
    /// Every hash in `in_flight`, with the number of heights there that ordered it.
    in_flight_hashes: HashMap<Hash32, usize>,
}

impl DuplicateFilter {
    pub fn new() -> Self {
        DuplicateFilter::default()
    }

    /// Applies the rule to block `height`, whose transactions' hashes are `hashes` in
    /// block order: whether each executes. All of them count as ordered at `height` for
    /// the heights admitted after it. `height` follows the previous
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
                self.forget(hash);
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

        // First occurrences in the block, and whether a height in memory ordered them.
        let mut seen = std::collections::HashSet::with_capacity(hashes.len());
        let mut distinct = Vec::with_capacity(hashes.len());
        let mut candidates = Vec::with_capacity(hashes.len());
        let mut positions = Vec::with_capacity(hashes.len());
        for (position, hash) in hashes.iter().enumerate() {
            if seen.insert(*hash) {
                distinct.push(*hash);
                if !self.in_flight_hashes.contains_key(hash) {
                    candidates.push(*hash);
                    positions.push(position);
                }
            }
        }
        let ordered = ordered_at(storage, &candidates)?;
        let floor = height.saturating_sub(DUPLICATE_WINDOW);
        // A height at or above `height` is not history of this height: only a window
        // recorded for a snapshot above, then abandoned, could leave one (aborting a
        // restore deletes its records since 7 December; a store aborted before may still
        // hold some). Each source is judged on its own, so that such a record, which
        // keeps a hash's highest height, cannot hide an index entry inside the window.
        let within = |at: Option<u64>| at.is_some_and(|at| at >= floor && at < height);
        let mut keep = vec![false; hashes.len()];
        for (position, (indexed, recorded)) in positions.into_iter().zip(ordered) {
            keep[position] = !(within(indexed) || within(recorded));
        }
        for hash in &distinct {
            *self.in_flight_hashes.entry(*hash).or_insert(0) += 1;
        }
        self.in_flight.push_back((height, distinct));
        Ok(keep)
    }

    fn forget(&mut self, hash: &Hash32) {
        if let Some(count) = self.in_flight_hashes.get_mut(hash) {
            *count -= 1;
            if *count == 0 {
                self.in_flight_hashes.remove(hash);
            }
        }
    }

    /// Admitted heights not known to be written.
    #[cfg(test)]
    pub fn in_flight_heights(&self) -> usize {
        self.in_flight.len()
    }
}

/// Where storage says each hash was ordered: the latest height of the transaction index
/// (executed there), and the latest recorded height that ordered it without executing it
/// (or that state sync recorded).
type Ordered = (Option<u64>, Option<u64>);

fn ordered_at(storage: &Storage, hashes: &[Hash32]) -> ordo_storage::Result<Vec<Ordered>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let indexed = storage.tx_locations(hashes)?;
    let recorded = storage.ordered_at(hashes)?;
    Ok(indexed
        .into_iter()
        .map(|l| l.map(|l| l.height))
        .zip(recorded)
        .collect())
}

#[cfg(test)]
mod tests;
