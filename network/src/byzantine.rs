//! Deliberate misbehaviour of the dissemination layer, compiled only with the `byzantine`
//! feature: fault tests run a validator that breaks the batch protocol on purpose, so that
//! the honest validators' defences are exercised by real traffic.
//!
//! Nothing here runs unless a [`ByzantineBatches`] switch is on, or, for the supervision
//! test's fault hook, `ORDO_FAULT_PANIC_TASK` names a task; a default build does not
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

/// The supervision test's fault hook, as the node's: `ORDO_FAULT_PANIC_TASK=<name>` makes
/// the dissemination task of that name panic a second after it starts, so that a test can
/// watch the validator stop and name it.
pub(crate) fn panic_hook(
    name: &'static str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    if std::env::var("ORDO_FAULT_PANIC_TASK").ok().as_deref() != Some(name) {
        return Box::pin(task);
    }
    warn!(
        task = name,
        "FAULT INJECTION: this task will panic in a second"
    );
    Box::pin(async move {
        // Borrowed into the select: the task's channels stay alive until the panic, as
        // with a real bug.
        let mut task = std::pin::pin!(task);
        tokio::select! {
            () = &mut task => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                panic!("injected fault (ORDO_FAULT_PANIC_TASK={name})")
            }
        }
    })
}
