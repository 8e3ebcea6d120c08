//! Deliberate misbehaviour of the dissemination layer, compiled only with the `byzantine`
//! feature: fault tests run a validator that breaks the batch protocol on purpose, so that
//! the honest validators' defences are exercised by real traffic.
//!
//! Nothing here runs unless a [`ByzantineBatches`] switch is on; a default build does not
//! contain this module at all.

use ordo_types::{Signature, SignedTransaction};
use tracing::warn;

use crate::batch::{Batch, BatchBody};

/// Which batch-protocol misbehaviours are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByzantineBatches {
    /// After each batch, also push a copy with one transaction's signature corrupted:
    /// receivers must verify and refuse it.
    pub invalid_signatures: bool,
    /// Push own batches to a single validator, and answer every batch request with
    /// "not here": the proof still forms (that validator's ack and ours), so the others
    /// must fetch the batch from the one honest holder.
    pub withhold: bool,
}

impl ByzantineBatches {
    pub fn any(&self) -> bool {
        self.invalid_signatures || self.withhold
    }
}

/// A copy of `batch` whose first transaction's signature is flipped; `None` for a batch
/// without transactions. It keeps the batch's sequence number (its digest differs all the
/// same): a fresh one would leave a gap that holds back the proofs of this validator's
/// later batches, which are offered to consensus in sequence order.
pub(crate) fn corrupted(batch: &Batch) -> Option<Batch> {
    let BatchBody::Transactions(txs) = &batch.body else {
        return None;
    };
    let mut txs = txs.clone();
    let first = txs.iter_mut().find_map(SignedTransaction::as_ordo_mut)?;
    let mut bytes = first.signature.0;
    bytes[0] ^= 0xff;
    first.signature = Signature(bytes);
    warn!(
        seq = batch.seq,
        txs = txs.len(),
        "BYZANTINE: pushing a batch with a corrupted signature on purpose"
    );
    Some(Batch {
        author: batch.author,
        seq: batch.seq,
        body: BatchBody::Transactions(txs),
    })
}
