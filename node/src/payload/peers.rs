//! Other validators' batches, offered to consensus so that whoever leads next proposes a
//! batch instead of its author alone: a batch no longer waits for its author's turn (on
//! average a round and a half of four), and a crashed author's pushed batches still get
//! ordered.
//!
//! A leader proposes its pool in the order batches were offered, and one author's
//! batches carry consecutive nonces of the same senders: a later batch ordered before an
//! earlier one would fail its transactions on their nonces. So each author's batches are
//! offered strictly in sequence order, each after its predecessor (offered here before
//! it, so it comes first in the pool, unless a proposal's report put it there earlier) or
//! after a batch of that author that a committed block holds. The chain is read only
//! from committed blocks (a proposal may be forged or orphaned), and only for batches
//! this validator received from their author's own push: a fetched batch's author and
//! sequence number are just fields that anyone could have filled in. An author's first
//! sequence number is its start time, so nothing is offered for an author until one of
//! its pushed batches is committed; a gap (a lost push) holds the author's later batches
//! until one of them is committed. Meanwhile the author still proposes its own, as
//! before. A leader needs no proof of availability for a batch it holds itself: voters
//! fetch it from the leader.
//!
//! Bounded: an author's offered and not yet committed batches are capped so that offers
//! from all authors together fill at most half of consensus's pool (whose overflow drops
//! the oldest entry, which would put an author's next batch first), and at most
//! [`MAX_HELD`] wait; so one flooding validator cannot crowd out the others through offers.
//! Pure: no I/O, no clock; [`super::order`] runs it.

use std::collections::{BTreeMap, HashMap, HashSet};

use ordo_network::BatchInfo;
use ordo_types::{Hash32, PublicKey};

/// Offered and uncommitted batches of one author, at most (fewer in large committees).
pub const MAX_OUTSTANDING: usize = 1_024;
/// Batches of one author waiting for their turn, at most; more are not offered.
pub const MAX_HELD: usize = 4_096;

/// What the offer task learns.
#[derive(Debug, Clone)]
pub enum Offer {
    /// A peer's batch was pushed by its author, verified and stored here.
    Stored(BatchInfo),
    /// A committed block held these batches (author, sequence number, digest).
    Committed(Vec<(PublicKey, u64, Hash32)>),
}

#[derive(Default)]
struct Author {
    /// The sequence number to offer next; unknown until a pushed batch is committed.
    next: Option<u64>,
    /// Pushed here and not offered yet, by sequence number.
    held: BTreeMap<u64, Hash32>,
    /// Offered and not known to be committed, by sequence number.
    offered: BTreeMap<u64, Hash32>,
}

impl Author {
    /// Whether `digest` is this author's batch `seq` as its author pushed it here.
    fn pushed(&self, seq: u64, digest: &Hash32) -> bool {
        self.held.get(&seq) == Some(digest) || self.offered.get(&seq) == Some(digest)
    }
}

/// The ordering rules above, without I/O.
pub struct Sequencer {
    /// The committee's keys: batches claiming any other author are ignored.
    members: HashSet<PublicKey>,
    max_outstanding: usize,
    authors: HashMap<PublicKey, Author>,
    /// Every author's `offered`, together.
    uncommitted: HashSet<Hash32>,
}

impl Sequencer {
    /// `pool` is the most digests consensus keeps waiting to be proposed.
    pub fn new(members: impl IntoIterator<Item = PublicKey>, pool: usize) -> Self {
        let members: HashSet<PublicKey> = members.into_iter().collect();
        let max_outstanding = (pool / 2 / members.len().max(1)).clamp(1, MAX_OUTSTANDING);
        Sequencer {
            members,
            max_outstanding,
            authors: HashMap::new(),
            uncommitted: HashSet::new(),
        }
    }

    /// Digests that may be offered now, in order, after learning `offer`.
    pub fn learn(&mut self, offer: Offer) -> Vec<Hash32> {
        let mut ready = Vec::new();
        match offer {
            Offer::Stored(info) => {
                if !self.members.contains(&info.author) {
                    return ready;
                }
                let author = self.authors.entry(info.author).or_default();
                let behind = author.next.is_some_and(|n| info.seq < n);
                if !behind && author.held.len() < MAX_HELD {
                    author.held.insert(info.seq, info.digest);
                }
                self.drain(info.author, &mut ready);
            }
            Offer::Committed(batches) => {
                for (author, seq, digest) in batches {
                    let Some(a) = self.authors.get_mut(&author) else {
                        continue;
                    };
                    if !a.pushed(seq, &digest) {
                        continue;
                    }
                    let after = seq.saturating_add(1);
                    if a.next.is_none_or(|n| n < after) {
                        a.next = Some(after);
                    }
                    // Committed, or passed by the chain (a dropped notice cannot leak).
                    let later = a.offered.split_off(&after);
                    for (_, d) in std::mem::replace(&mut a.offered, later) {
                        self.uncommitted.remove(&d);
                    }
                    self.drain(author, &mut ready);
                }
            }
        }
        ready
    }

    /// Whether `digest` was offered and is not known to be committed.
    #[cfg(test)]
    pub fn uncommitted(&self, digest: &Hash32) -> bool {
        self.uncommitted.contains(digest)
    }

    fn drain(&mut self, author: PublicKey, ready: &mut Vec<Hash32>) {
        let Some(a) = self.authors.get_mut(&author) else {
            return;
        };
        let Some(mut next) = a.next else { return };
        // Anything below `next` is in the chain already or was passed by it.
        a.held = a.held.split_off(&next);
        while a.offered.len() < self.max_outstanding {
            let Some(digest) = a.held.remove(&next) else {
                break;
            };
            a.offered.insert(next, digest);
            self.uncommitted.insert(digest);
            ready.push(digest);
            next += 1;
        }
        a.next = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::KeyPair;

    const POOL: usize = 16_384;

    fn key(author: u8) -> PublicKey {
        KeyPair::from_seed([author; 32]).public()
    }

    fn info(author: u8, seq: u64) -> BatchInfo {
        BatchInfo {
            author: key(author),
            seq,
            digest: Hash32::digest(b"test\0", &[author, seq as u8, (seq >> 8) as u8]),
            num_txs: 1,
            gas: 0,
            bytes: 100,
        }
    }

    fn sequencer() -> Sequencer {
        Sequencer::new((1..=3).map(key), POOL)
    }

    fn committed(author: u8, seq: u64) -> Offer {
        Offer::Committed(vec![(key(author), seq, info(author, seq).digest)])
    }

    fn digests(author: u8, seqs: impl IntoIterator<Item = u64>) -> Vec<Hash32> {
        seqs.into_iter().map(|s| info(author, s).digest).collect()
    }

    #[test]
    fn nothing_is_offered_before_a_pushed_batch_of_the_author_commits() {
        let mut s = sequencer();
        assert!(s.learn(Offer::Stored(info(1, 10))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 11))).is_empty());
        assert_eq!(s.learn(committed(1, 10)), digests(1, [11]));
        assert_eq!(s.learn(Offer::Stored(info(1, 12))), digests(1, [12]));
    }

    #[test]
    fn a_commit_of_a_batch_not_pushed_here_moves_nothing() {
        let mut s = sequencer();
        for seq in 10..=12 {
            s.learn(Offer::Stored(info(1, seq)));
        }
        // Someone else's batch claiming author 1 and sequence 11 (a forgery, or a batch
        // this validator only fetched): its author and sequence prove nothing.
        let forged = Hash32::digest(b"test\0", b"forged");
        assert!(s
            .learn(Offer::Committed(vec![(key(1), 11, forged)]))
            .is_empty());
        assert_eq!(s.learn(committed(1, 10)), digests(1, [11, 12]));
    }

    #[test]
    fn batches_stored_out_of_order_are_offered_in_order() {
        let mut s = sequencer();
        s.learn(Offer::Stored(info(1, 0)));
        assert!(s.learn(committed(1, 0)).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 3))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
        assert_eq!(s.learn(Offer::Stored(info(1, 1))), digests(1, 1..=3));
        // A late duplicate of an offered batch is not offered again.
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
    }

    #[test]
    fn a_gap_holds_later_batches_until_one_of_them_commits() {
        let mut s = sequencer();
        s.learn(Offer::Stored(info(1, 0)));
        s.learn(committed(1, 0));
        // Batch 1 never arrives here.
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 3))).is_empty());
        // Its author proposes 1 and 2 itself; once 2 is committed, 3 is next.
        assert_eq!(s.learn(committed(1, 2)), digests(1, [3]));
    }

    #[test]
    fn authors_are_independent_bounded_and_freed_by_later_commits() {
        let mut s = sequencer();
        for a in 1..=2 {
            s.learn(Offer::Stored(info(a, 0)));
            s.learn(committed(a, 0));
        }
        let mut offered = 0;
        for seq in 1..=(MAX_OUTSTANDING as u64 + 10) {
            offered += s.learn(Offer::Stored(info(1, seq))).len();
        }
        assert_eq!(offered, MAX_OUTSTANDING);
        // Author 2 is not held up by author 1's backlog.
        assert_eq!(s.learn(Offer::Stored(info(2, 1))), digests(2, [1]));
        // The commit of batch 5 frees 1 to 5 even if the notices of 1 to 4 were lost.
        let first_held = MAX_OUTSTANDING as u64 + 1;
        assert_eq!(
            s.learn(committed(1, 5)),
            digests(1, first_held..first_held + 5)
        );
        assert!(!s.uncommitted(&info(1, 5).digest));
        assert!(s.uncommitted(&info(1, 6).digest));
        assert_eq!(s.uncommitted.len(), MAX_OUTSTANDING + 1);
    }

    #[test]
    fn strangers_are_ignored_and_large_committees_offer_less_per_author() {
        let mut s = sequencer();
        s.learn(Offer::Stored(info(9, 0)));
        assert!(s.learn(committed(9, 0)).is_empty());
        assert!(s.authors.is_empty());
        let large = Sequencer::new((0..100).map(key), POOL);
        assert_eq!(large.max_outstanding, POOL / 2 / 100);
    }
}
