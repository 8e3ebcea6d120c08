//! The gas of the batches the owner may report ready, for consensus to fill blocks up to
//! the block gas limit (see `ordo_consensus::ReadyPayload`).
//!
//! The ordering core deals in digests; a batch's gas comes with its summary (its proof of
//! availability, or a peer's stored batch) and is looked up here when the digest is
//! reported ready. Only batches with gas are kept (native and opaque ones take none), and
//! at most [`MAX_ENTRIES`]: a digest never reported ready (committed first, or dropped
//! while held) is forgotten in time. One forgotten and reported later counts as taking no
//! gas, which costs at worst a fuller block, whose excess execution refuses.

use std::collections::{HashMap, VecDeque};

use ordo_consensus::ReadyPayload;
use ordo_types::Hash32;

/// Batches' gas remembered: the ordering core's window of reported digests.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub(super) struct GasBook {
    gas: HashMap<Hash32, u64>,
    /// Digests in the order learned, for eviction; may name ones already taken.
    order: VecDeque<Hash32>,
}

impl GasBook {
    /// A batch's gas, from its summary.
    pub(super) fn learn(&mut self, digest: Hash32, gas: u64) {
        if gas == 0 || self.gas.insert(digest, gas).is_some() {
            return;
        }
        self.order.push_back(digest);
        while self.order.len() > MAX_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.gas.remove(&old);
            }
        }
    }

    /// `digest` as reported ready, with its gas; forgets it.
    pub(super) fn ready(&mut self, digest: Hash32) -> ReadyPayload {
        let gas = self.gas.remove(&digest).unwrap_or(0);
        ReadyPayload { digest, gas }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_reported_with_its_gas_once_and_the_book_stays_bounded() {
        let mut book = GasBook::default();
        book.learn(Hash32([1; 32]), 500);
        book.learn(Hash32([2; 32]), 0);
        assert_eq!(book.ready(Hash32([1; 32])).gas, 500);
        assert_eq!(
            book.ready(Hash32([1; 32])).gas,
            0,
            "forgotten once reported"
        );
        assert_eq!(book.ready(Hash32([2; 32])).gas, 0);
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&i.to_le_bytes());
            book.learn(Hash32(d), 1);
        }
        assert!(book.gas.len() <= MAX_ENTRIES && book.order.len() <= MAX_ENTRIES);
    }
}
