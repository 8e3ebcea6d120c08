//! The size of the batches the owner may report ready (transactions, EVM gas), for
//! consensus to fill blocks up to their limits (see `ordo_consensus::ReadyPayload`).
//!
//! The ordering core deals in digests; a batch's size comes with its summary (its proof
//! of availability, or a peer's stored batch) and is looked up here when the digest is
//! reported ready. At most [`MAX_ENTRIES`] are kept: a digest never reported ready
//! (committed first, or dropped while held) is forgotten in time. One forgotten and
//! reported later counts as taking nothing, which costs at worst a fuller block.

use std::collections::{HashMap, VecDeque};

use ordo_consensus::ReadyPayload;
use ordo_types::Hash32;

/// Batches' sizes remembered: the ordering core's window of reported digests.
const MAX_ENTRIES: usize = 200_000;

#[derive(Default)]
pub(super) struct SizeBook {
    /// (transactions, gas) by digest.
    sizes: HashMap<Hash32, (u64, u64)>,
    /// Digests in the order learned, for eviction; may name ones already taken.
    order: VecDeque<Hash32>,
}

impl SizeBook {
    /// A batch's size, from its summary.
    pub(super) fn learn(&mut self, digest: Hash32, txs: u64, gas: u64) {
        if self.sizes.insert(digest, (txs, gas)).is_some() {
            return;
        }
        self.order.push_back(digest);
        while self.order.len() > MAX_ENTRIES {
            if let Some(old) = self.order.pop_front() {
                self.sizes.remove(&old);
            }
        }
    }

    /// `digest` as reported ready, with its size; forgets it.
    pub(super) fn ready(&mut self, digest: Hash32) -> ReadyPayload {
        let (txs, gas) = self.sizes.remove(&digest).unwrap_or((0, 0));
        ReadyPayload { digest, txs, gas }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_reported_with_its_size_once_and_the_book_stays_bounded() {
        let mut book = SizeBook::default();
        book.learn(Hash32([1; 32]), 7, 500);
        let ready = book.ready(Hash32([1; 32]));
        assert_eq!((ready.txs, ready.gas), (7, 500));
        let again = book.ready(Hash32([1; 32]));
        assert_eq!((again.txs, again.gas), (0, 0), "forgotten once reported");
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&i.to_le_bytes());
            book.learn(Hash32(d), 1, 1);
        }
        assert!(book.sizes.len() <= MAX_ENTRIES && book.order.len() <= MAX_ENTRIES);
    }
}
