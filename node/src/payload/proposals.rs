//! A checked proposal's batches, made available for voting as their lookups find them.
//!
//! Consensus asks for a proposal's missing payload once the proposal passed its checks;
//! the lookups run concurrently and each ends found or not. Availability for the vote
//! needs no order (these digests are never pooled for proposing on this report, see
//! [`super::order`]), so each is released as soon as it is found: a slow lookup (a batch
//! fetched from peers) holds up nothing but its own block. Ordering them across proposals
//! once made one slow lookup hold every later round's vote, and rounds timed out.
//!
//! Invariant: each digest is looked up at most once at a time, and released at most once
//! per lookup, only when found; at most [`MAX_PENDING`] lookups are pending.

use std::collections::HashSet;

use ordo_types::Hash32;

/// Lookups pending at once: four full proposals (1,024 digests each by default); beyond,
/// a proposal's digests are not looked up (its block waits for a later report).
pub const MAX_PENDING: usize = 4_096;

#[derive(Default)]
pub struct ProposalFetches {
    pending: HashSet<Hash32>,
}

impl ProposalFetches {
    /// A checked proposal names `digests`; returns those to look up (not pending already).
    pub fn named(&mut self, digests: &[Hash32]) -> Vec<Hash32> {
        let mut fetch = Vec::new();
        for d in digests {
            if self.pending.len() >= MAX_PENDING {
                break;
            }
            if self.pending.insert(*d) {
                fetch.push(*d);
            }
        }
        fetch
    }

    /// The lookup of `digest` ended; returns it if it is now available.
    pub fn ended(&mut self, digest: Hash32, found: bool) -> Option<Hash32> {
        (self.pending.remove(&digest) && found).then_some(digest)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    #[test]
    fn each_found_digest_is_released_when_its_own_lookup_ends() {
        let mut p = ProposalFetches::default();
        assert_eq!(p.named(&[d(1), d(2), d(3)]), vec![d(1), d(2), d(3)]);
        assert_eq!(p.named(&[d(3), d(4)]), vec![d(4)], "pending already");
        assert_eq!(p.ended(d(3), true), Some(d(3)), "not held up by d(1)");
        assert_eq!(p.ended(d(2), false), None);
        assert_eq!(p.ended(d(1), true), Some(d(1)));
        assert_eq!(p.ended(d(4), true), Some(d(4)));
        assert_eq!(p.len(), 0);
        assert_eq!(p.ended(d(4), true), None, "an unknown lookup");
    }
}
