//! This validator's own batches, offered to consensus in the order it made them.
//!
//! Proofs of availability complete in acknowledgement order, not creation order; offering
//! them as they come would let a later batch of a sender's transactions be ordered before
//! an earlier one, failing every transaction of the later batch on its nonce. A proof
//! therefore waits for the proofs of the batches made before it, at most [`PROOF_HOLD_MS`]:
//! the network pushes every own batch until it is proven, so the hold is a safety valve
//! for a batch it dropped, not a deadline (a batch that never gets a proof must not stall
//! the others; 500 ms was too short under load on 2 cores).
//!
//! A proof that comes after its successors waited out the hold goes out late rather than
//! never: its transactions may still execute (those of its successors that needed them
//! failed already), and dropping it would lose them all.
//!
//! Invariant: digests come out in increasing sequence order, each once, except a batch
//! passed over by the hold, which comes out when its proof does; a sequence number is
//! passed over only after its successor has waited [`PROOF_HOLD_MS`]. Pure: the time is
//! an input.

use std::collections::{BTreeMap, BTreeSet};

use ordo_types::Hash32;

/// How long a proof waits at most for the proofs of earlier batches.
pub const PROOF_HOLD_MS: u64 = 10_000;
/// Proofs waiting at most: the dissemination layer keeps far fewer batches in flight,
/// so more means a stuck predecessor, and the oldest goes out early.
const MAX_WAITING: usize = 16_384;

pub struct OwnBatches {
    /// The sequence number expected next.
    next: u64,
    /// Proven and waiting for their predecessors: seq -> (digest, proven at).
    waiting: BTreeMap<u64, (Hash32, u64)>,
    /// Sequence numbers the hold passed over, still without a proof.
    passed_over: BTreeSet<u64>,
}

impl OwnBatches {
    /// `first_seq` is the sequence number of this process's first batch.
    pub fn new(first_seq: u64) -> Self {
        OwnBatches {
            next: first_seq,
            waiting: BTreeMap::new(),
            passed_over: BTreeSet::new(),
        }
    }

    /// Batch `seq` got its proof at `now_ms`; returns what may be offered now, in order.
    pub fn proven(&mut self, seq: u64, digest: Hash32, now_ms: u64) -> Vec<Hash32> {
        if seq >= self.next {
            self.waiting.insert(seq, (digest, now_ms));
        } else if self.passed_over.remove(&seq) {
            metrics::counter!("ordo_node_own_batches_late_total").increment(1);
            let mut out = vec![digest];
            out.extend(self.release(now_ms));
            return out;
        }
        self.release(now_ms)
    }

    /// What may be offered at `now_ms` (a predecessor's wait ran out).
    pub fn release(&mut self, now_ms: u64) -> Vec<Hash32> {
        let mut out = Vec::new();
        while let Some((&seq, &(digest, since))) = self.waiting.first_key_value() {
            let in_order = seq <= self.next;
            let waited_out = now_ms >= since.saturating_add(PROOF_HOLD_MS);
            if !in_order && !waited_out && self.waiting.len() <= MAX_WAITING {
                break;
            }
            self.waiting.pop_first();
            self.passed_over.extend(self.next..seq);
            while self.passed_over.len() > MAX_WAITING {
                self.passed_over.pop_first();
            }
            self.next = seq + 1;
            out.push(digest);
        }
        out
    }

    /// When the first waiting proof's hold runs out, if one waits.
    pub fn deadline(&self) -> Option<u64> {
        self.waiting
            .first_key_value()
            .map(|(_, (_, since))| since.saturating_add(PROOF_HOLD_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seq: u64) -> Hash32 {
        Hash32::digest(b"own\0", &seq.to_le_bytes())
    }

    #[test]
    fn proofs_go_out_in_creation_order() {
        let mut own = OwnBatches::new(5);
        assert!(own.proven(6, d(6), 0).is_empty());
        assert!(own.proven(7, d(7), 1).is_empty());
        assert_eq!(own.proven(5, d(5), 2), vec![d(5), d(6), d(7)]);
        assert!(own.proven(5, d(5), 3).is_empty(), "a repeated proof");
        assert!(own.deadline().is_none());
    }

    #[test]
    fn a_batch_that_never_gets_its_proof_is_passed_over_after_the_hold() {
        let mut own = OwnBatches::new(0);
        assert!(own.proven(1, d(1), 100).is_empty());
        assert_eq!(own.deadline(), Some(100 + PROOF_HOLD_MS));
        assert!(own.release(100 + PROOF_HOLD_MS - 1).is_empty());
        assert_eq!(own.release(100 + PROOF_HOLD_MS), vec![d(1)]);
        // Batch 0's proof, late: its successor went out already; better late than never,
        // once.
        assert_eq!(own.proven(0, d(0), 100 + PROOF_HOLD_MS + 1), vec![d(0)]);
        assert!(own.proven(0, d(0), 100 + PROOF_HOLD_MS + 2).is_empty());
    }
}
