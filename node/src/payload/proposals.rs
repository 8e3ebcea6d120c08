//! A proposal's batches, made available for voting in the order the proposal names them.
//!
//! Consensus asks for a proposal's missing payload once the proposal passed its checks;
//! the lookups run concurrently, and each ends found or not. Reporting them as they end
//! would let an author's later batch be reported before its earlier one; so a digest is
//! released only once every digest named before it (in this proposal or an earlier one)
//! has ended. One not found anywhere is dropped from the queue and holds nothing up.
//!
//! Invariant: released digests keep the order in which they were named, each once; the
//! queue holds at most [`MAX_QUEUED`] digests. Pure: no I/O.

use std::collections::{HashSet, VecDeque};

use ordo_types::Hash32;

/// Digests waiting for their lookup or for an earlier one: four full proposals (1,024
/// digests each by default); beyond, a proposal's digests are not queued.
pub const MAX_QUEUED: usize = 4_096;

#[derive(Default)]
pub struct ProposalFetches {
    /// Named digests in order, with the lookup's outcome once known.
    queue: VecDeque<(Hash32, Option<bool>)>,
    /// Digests in the queue whose lookup has not ended.
    pending: HashSet<Hash32>,
}

impl ProposalFetches {
    /// A checked proposal names `digests`; returns those to look up (not queued already).
    pub fn named(&mut self, digests: &[Hash32]) -> Vec<Hash32> {
        let mut fetch = Vec::new();
        for d in digests {
            if self.pending.contains(d) || self.queue.len() >= MAX_QUEUED {
                continue;
            }
            self.pending.insert(*d);
            self.queue.push_back((*d, None));
            fetch.push(*d);
        }
        fetch
    }

    /// The lookup of `digest` ended; returns the digests now available, in order.
    pub fn ended(&mut self, digest: Hash32, found: bool) -> Vec<Hash32> {
        if self.pending.remove(&digest) {
            if let Some(entry) = self
                .queue
                .iter_mut()
                .find(|(d, o)| *d == digest && o.is_none())
            {
                entry.1 = Some(found);
            }
        }
        let mut out = Vec::new();
        while let Some((d, Some(found))) = self.queue.front().copied() {
            self.queue.pop_front();
            if found {
                out.push(d);
            }
        }
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    #[test]
    fn lookups_end_in_any_order_digests_come_out_in_the_named_order() {
        let mut p = ProposalFetches::default();
        assert_eq!(p.named(&[d(1), d(2), d(3)]), vec![d(1), d(2), d(3)]);
        assert_eq!(p.named(&[d(3), d(4)]), vec![d(4)], "queued already");
        assert!(p.ended(d(3), true).is_empty());
        assert!(p.ended(d(2), false).is_empty());
        assert_eq!(p.ended(d(1), true), vec![d(1), d(3)], "d(2) was not found");
        assert_eq!(p.ended(d(4), true), vec![d(4)]);
        assert_eq!(p.len(), 0);
        assert!(p.ended(d(4), true).is_empty(), "an unknown lookup");
    }
}
