//! Bounded disk: the history below a retention window is pruned as the chain executes.
//!
//! Owns nothing but the decision of how far down history goes ([`prune_height`], pure);
//! storage removes it ([`ordo_storage::Storage::prune_below`]). Runs off the commit path,
//! as a subscriber of executed blocks, every [`PRUNE_EVERY`] heights.
//!
//! Invariants: nothing a peer restoring one of this validator's snapshots needs is
//! pruned (the [`DUPLICATE_WINDOW`] blocks below the oldest snapshot kept, their batches,
//! and every block after it), and nothing the duplicate rule reads (the
//! [`DUPLICATE_WINDOW`] heights below the next block), so that which transactions
//! execute never depends on what was pruned. With snapshots configured but none written
//! yet, nothing is pruned: a wiped peer could only replay from genesis. Nor is any height
//! whose root the committed chain has not carried yet (consensus may ask for its block
//! and root again: `ordo_consensus::Action::LoadRoots`), whose snapshot could not be
//! proved either.

use std::sync::Arc;

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_storage::Storage;
use ordo_types::codec;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::dedup::DUPLICATE_WINDOW;
use crate::events::ExecutedBlock;
use crate::supervisor::TaskError;

/// Heights between two prunes: each one deletes about this many blocks' history in a
/// few write batches, a few seconds of a loaded chain.
pub const PRUNE_EVERY: u64 = 256;
/// Batches are kept this many heights past the height they were stored at (see
/// `StorageConfig::batch_grace_heights`): about half a minute of a loaded chain.
pub const BATCH_GRACE_HEIGHTS: u64 = 1_024;
/// The smallest retention window: twice the duplicate rule's window, so that what the
/// rule reads (the transaction index of the 256 heights below the next block) is never
/// near the pruning height.
pub const MIN_RETAIN_BLOCKS: u64 = 2 * DUPLICATE_WINDOW;

/// The height below which history can go after executing `executed`, keeping `retain`
/// blocks, given the heights of the snapshots kept (`None`: snapshots are not taken) and
/// the first height whose root the chain has not carried (`uncarried`).
pub fn prune_height(executed: u64, retain: u64, snapshots: Option<&[u64]>, uncarried: u64) -> u64 {
    let by_window = (executed + 1)
        .saturating_sub(retain.max(MIN_RETAIN_BLOCKS))
        .min(uncarried);
    match snapshots {
        None => by_window,
        Some(heights) => match heights.iter().min() {
            // A peer restoring it fetches the window below it and every block after.
            Some(&oldest) => by_window.min(oldest.saturating_sub(DUPLICATE_WINDOW)),
            None => 0,
        },
    }
}

/// Prunes every [`PRUNE_EVERY`] executed heights, on a blocking thread; a storage
/// failure ends the task (the store refuses writes after one anyway). `snapshotting`:
/// whether this validator takes snapshots (`storage.snapshot_interval_blocks`).
pub async fn run(
    storage: Storage,
    retain: u64,
    snapshotting: bool,
    mut executed: mpsc::Receiver<ExecutedBlock>,
) -> Result<(), TaskError> {
    if !snapshotting {
        warn!(
            retain,
            "history is pruned but no snapshots are taken: a validator offline for more \
             than the retained blocks cannot rejoin (keep everything with \
             storage.retain_blocks = 0)"
        );
    }
    let storage = Arc::new(storage);
    // One prune at a time, never waited on here: this subscription must keep up with the
    // commit stage, which waits when its queue is full.
    let mut running: Option<tokio::task::JoinHandle<Result<(), ordo_storage::StorageError>>> = None;
    while let Some(block) = executed.recv().await {
        if block.height % PRUNE_EVERY != 0 {
            continue;
        }
        if let Some(prune) = running.take() {
            if !prune.is_finished() {
                debug!(height = block.height, "the previous prune is still running");
                running = Some(prune);
                continue;
            }
            prune
                .await
                .map_err(|e| TaskError::Panicked(format!("the prune thread: {e}")))??;
        }
        let storage = storage.clone();
        let height = block.height;
        running = Some(tokio::task::spawn_blocking(move || {
            let snapshots = if snapshotting {
                Some(
                    storage
                        .snapshots()?
                        .iter()
                        .map(|s| s.height)
                        .collect::<Vec<u64>>(),
                )
            } else {
                None
            };
            // The executed block's chain carried the roots below its `next`; the committed
            // tip's chain carried as many or more.
            let uncarried = match storage.block_at(height)? {
                Some((_, bytes)) => match codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes) {
                    Ok(block) => block.state.next(),
                    Err(e) => {
                        warn!(height, error = %e, "the executed block does not decode; nothing pruned");
                        0
                    }
                },
                // No block indexed at this height: nothing pruned this time.
                None => 0,
            };
            let below = prune_height(height, retain, snapshots.as_deref(), uncarried);
            if below > 0 {
                let stats = storage.prune_below(below)?;
                debug!(height, below, ?stats, "pruned");
            }
            Ok(())
        }));
    }
    Err(TaskError::closed("the executed-block events"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_window_and_what_the_oldest_snapshot_needs() {
        // No snapshots taken: the window alone.
        let carried = 49_990;
        assert_eq!(prune_height(50_000, 20_000, None, carried), 30_001);
        assert_eq!(prune_height(10_000, 20_000, None, carried), 0);
        // Snapshots configured, none written yet: nothing goes.
        assert_eq!(prune_height(50_000, 20_000, Some(&[]), carried), 0);
        // The oldest kept snapshot's window below it stays.
        assert_eq!(
            prune_height(50_000, 20_000, Some(&[40_000, 30_000]), carried),
            29_744
        );
        assert_eq!(
            prune_height(50_000, 20_000, Some(&[40_000, 50_000]), carried),
            30_001
        );
        // A window below the minimum is raised to it.
        assert_eq!(
            prune_height(10_000, 10, None, carried),
            10_001 - MIN_RETAIN_BLOCKS
        );
        // Heights whose roots the chain has not carried yet stay, however old.
        assert_eq!(prune_height(50_000, 20_000, None, 25_000), 25_000);
        assert_eq!(
            prune_height(50_000, 20_000, Some(&[40_000, 50_000]), 25_000),
            25_000
        );
    }
}
