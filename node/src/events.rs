//! What the commit stage tells the rest of the node: one event per executed block.
//!
//! The commit stage writes a block's results to RocksDB and then publishes
//! [`ExecutedBlock`]; everyone that keeps state derived from executed blocks subscribes
//! and owns that state (the RPC's index of pending and recent transactions, the state-root
//! tracker and its broadcast, the batch store's clean-up). The commit stage reaches into
//! none of them.
//!
//! Invariant: every subscriber receives every executed block, in height order, through a
//! channel of its own. A full channel makes the commit stage wait (back-pressure) rather
//! than lose an event; a closed one (its subscriber ended) is an error that stops the
//! stage, since the subscriber's end has already stopped the validator.

use std::sync::Arc;

use ordo_types::Hash32;
use tokio::sync::mpsc;

use crate::supervisor::TaskError;

/// One executed block, as written.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    pub height: u64,
    /// The block executed at `height`.
    pub block: Hash32,
    pub state_root: Hash32,
    pub timestamp_ms: u64,
    /// The hashes of the transactions executed, in block order.
    pub transactions: Arc<Vec<Hash32>>,
    /// The block's batch digests.
    pub digests: Arc<Vec<Hash32>>,
}

/// The subscribers' channels.
#[derive(Default)]
pub struct Publisher {
    subscribers: Vec<(&'static str, mpsc::Sender<ExecutedBlock>)>,
}

impl Publisher {
    /// A subscription named `name` (for errors) holding up to `capacity` blocks.
    pub fn subscribe(
        &mut self,
        name: &'static str,
        capacity: usize,
    ) -> mpsc::Receiver<ExecutedBlock> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.subscribers.push((name, tx));
        rx
    }

    /// Hands `block` to every subscriber, waiting for room; from a thread, not a task.
    pub fn publish(&self, block: &ExecutedBlock) -> Result<(), TaskError> {
        for (name, tx) in &self.subscribers {
            tx.blocking_send(block.clone()).map_err(|_| {
                TaskError::Closed(format!("the executed-block subscription of {name}"))
            })?;
        }
        Ok(())
    }
}
