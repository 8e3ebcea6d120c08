//! Offering other validators' batches to consensus, so that whoever leads next proposes a
//! batch instead of its author alone: a batch no longer waits for its author's turn (on
//! average a round and a half of four), and a crashed author's pushed batches still get
//! ordered.
//!
//! A leader proposes its pool in the order batches were offered, and one author's
//! batches carry consecutive nonces of the same senders: a later batch ordered before an
//! earlier one would fail its transactions on their nonces. So each author's batches are
//! offered strictly in sequence order, starting after one this validator has seen in a
//! proposal (reported to consensus before it is learnt here, so it precedes its
//! successors in the pool) or a committed block (an author's first sequence number is its start time, so
//! there is nothing else to start from). A gap (a push that was lost) holds the author's
//! later batches until the missing one shows up in the chain; meanwhile the author still
//! proposes its own, as before. A leader needs no proof of availability to propose a
//! batch it holds itself: voters fetch it from the leader.
//!
//! Bounded: at most [`MAX_OUTSTANDING`] offered and not yet committed batches per author,
//! and [`MAX_HELD`] waiting, so one flooding validator cannot fill consensus's pool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ordo_network::BatchInfo;
use ordo_types::{Hash32, PublicKey};
use tokio::sync::{mpsc, watch};

use crate::batches::Batches;
use crate::shared::Shared;

/// Offered batches of one author that are not committed yet, at most.
pub const MAX_OUTSTANDING: usize = 1_024;
/// Batches of one author waiting for their turn, at most; more are not offered.
pub const MAX_HELD: usize = 4_096;

/// What the offer task learns.
#[derive(Debug, Clone)]
pub enum Offer {
    /// A peer's batch was pushed, verified and stored here.
    Stored(BatchInfo),
    /// A proposal named this batch.
    Proposed(BatchInfo),
    /// A committed block held these batches (author, sequence number, digest).
    Committed(Vec<(PublicKey, u64, Hash32)>),
}

#[derive(Default)]
struct Author {
    /// The sequence number to offer next; unknown until one is seen in the chain.
    next: Option<u64>,
    held: BTreeMap<u64, Hash32>,
    outstanding: usize,
}

/// The ordering rules above, without I/O.
pub struct Sequencer {
    /// The committee's keys: batches claiming any other author are ignored.
    members: HashSet<PublicKey>,
    authors: HashMap<PublicKey, Author>,
    /// Offered and not yet committed: digest to author.
    offered: HashMap<Hash32, PublicKey>,
}

impl Sequencer {
    pub fn new(members: impl IntoIterator<Item = PublicKey>) -> Self {
        Sequencer {
            members: members.into_iter().collect(),
            authors: HashMap::new(),
            offered: HashMap::new(),
        }
    }

    /// Digests that may be offered now, in order, after learning `offer`.
    pub fn learn(&mut self, offer: Offer) -> Vec<Hash32> {
        let mut ready = Vec::new();
        match offer {
            Offer::Stored(info) | Offer::Proposed(info) if !self.members.contains(&info.author) => {
            }
            Offer::Stored(info) => {
                let author = self.authors.entry(info.author).or_default();
                let behind = author.next.is_some_and(|n| info.seq < n);
                if !behind && author.held.len() < MAX_HELD {
                    author.held.insert(info.seq, info.digest);
                }
                self.drain(info.author, &mut ready);
            }
            Offer::Proposed(info) => {
                self.in_chain(info.author, info.seq);
                self.drain(info.author, &mut ready);
            }
            Offer::Committed(batches) => {
                for (author, seq, digest) in batches {
                    if !self.members.contains(&author) {
                        continue;
                    }
                    if let Some(by) = self.offered.remove(&digest) {
                        if let Some(a) = self.authors.get_mut(&by) {
                            a.outstanding = a.outstanding.saturating_sub(1);
                        }
                    }
                    self.in_chain(author, seq);
                    self.drain(author, &mut ready);
                }
            }
        }
        ready
    }

    /// `seq` of `author` is in the chain: what comes after it is next.
    fn in_chain(&mut self, author: PublicKey, seq: u64) {
        let a = self.authors.entry(author).or_default();
        let after = seq.saturating_add(1);
        if a.next.is_none_or(|n| n < after) {
            a.next = Some(after);
        }
    }

    fn drain(&mut self, author: PublicKey, ready: &mut Vec<Hash32>) {
        let Some(a) = self.authors.get_mut(&author) else {
            return;
        };
        let Some(mut next) = a.next else { return };
        // Anything below `next` is in the chain already or was passed by it.
        a.held = a.held.split_off(&next);
        while a.outstanding < MAX_OUTSTANDING {
            let Some(digest) = a.held.remove(&next) else {
                break;
            };
            next += 1;
            a.outstanding += 1;
            self.offered.insert(digest, author);
            ready.push(digest);
        }
        a.next = Some(next);
    }
}

/// Runs the [`Sequencer`] over what `offers` brings and reports the batches it releases to
/// consensus, holding them back while execution lags (as own batches are).
/// `stored` is the dissemination layer's notice of pushed batches, `chain` what
/// [`Batches`] sees in proposals and commits.
pub async fn offer_peer_batches(
    mut stored: mpsc::Receiver<BatchInfo>,
    mut chain: mpsc::Receiver<Offer>,
    shared: Arc<Shared>,
    batches: Arc<Batches>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sequencer = Sequencer::new(batches.members());
    loop {
        let offer = tokio::select! {
            Some(info) = stored.recv() => Offer::Stored(info),
            o = chain.recv() => match o { Some(o) => o, None => return },
            _ = shutdown.changed() => return,
        };
        let ready = sequencer.learn(offer);
        if ready.is_empty() {
            continue;
        }
        while shared.overloaded() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = shutdown.changed() => return,
            }
        }
        metrics::counter!("ordo_node_peer_batches_offered_total").increment(ready.len() as u64);
        for digest in ready {
            batches.report(digest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::KeyPair;

    fn info(author: u8, seq: u64) -> BatchInfo {
        BatchInfo {
            author: KeyPair::from_seed([author; 32]).public(),
            seq,
            digest: Hash32::digest(b"test\0", &[author, seq as u8, (seq >> 8) as u8]),
            num_txs: 1,
            bytes: 100,
        }
    }

    #[test]
    fn strangers_are_ignored() {
        let mut s = Sequencer::new((1..=3).map(|a| info(a, 0).author));
        s.learn(Offer::Proposed(info(9, 0)));
        assert!(s.learn(Offer::Stored(info(9, 1))).is_empty());
        assert!(s.authors.is_empty());
    }

    fn digests(infos: &[BatchInfo]) -> Vec<Hash32> {
        infos.iter().map(|i| i.digest).collect()
    }

    #[test]
    fn nothing_is_offered_before_the_author_is_seen_in_the_chain() {
        let mut s = Sequencer::new((1..=3).map(|a| info(a, 0).author));
        assert!(s.learn(Offer::Stored(info(1, 10))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 11))).is_empty());
        // Batch 9 in a proposal: 10 and 11 follow it.
        assert_eq!(
            s.learn(Offer::Proposed(info(1, 9))),
            digests(&[info(1, 10), info(1, 11)])
        );
        assert_eq!(s.learn(Offer::Stored(info(1, 12))), digests(&[info(1, 12)]));
    }

    #[test]
    fn batches_stored_out_of_order_are_offered_in_order() {
        let mut s = Sequencer::new((1..=3).map(|a| info(a, 0).author));
        s.learn(Offer::Proposed(info(1, 0)));
        assert!(s.learn(Offer::Stored(info(1, 3))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
        assert_eq!(
            s.learn(Offer::Stored(info(1, 1))),
            digests(&[info(1, 1), info(1, 2), info(1, 3)])
        );
        // A late duplicate of an offered batch is not offered again.
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
    }

    #[test]
    fn a_gap_holds_later_batches_until_the_chain_passes_it() {
        let mut s = Sequencer::new((1..=3).map(|a| info(a, 0).author));
        s.learn(Offer::Committed(vec![(
            info(1, 0).author,
            0,
            info(1, 0).digest,
        )]));
        // Batch 1 never arrives here.
        assert!(s.learn(Offer::Stored(info(1, 2))).is_empty());
        assert!(s.learn(Offer::Stored(info(1, 3))).is_empty());
        // A proposal names 1 (reported to consensus before this is learnt, so it comes
        // first in the pool): 2 and 3 follow.
        assert_eq!(
            s.learn(Offer::Proposed(info(1, 1))),
            digests(&[info(1, 2), info(1, 3)])
        );
        // A proposal that jumps ahead drops what it passed.
        assert!(s.learn(Offer::Stored(info(1, 5))).is_empty());
        assert!(s.learn(Offer::Proposed(info(1, 6))).is_empty());
        assert_eq!(s.learn(Offer::Stored(info(1, 7))), digests(&[info(1, 7)]));
    }

    #[test]
    fn authors_are_independent_and_bounded() {
        let mut s = Sequencer::new((1..=3).map(|a| info(a, 0).author));
        s.learn(Offer::Proposed(info(1, 0)));
        s.learn(Offer::Proposed(info(2, 0)));
        let mut offered = 0;
        for seq in 1..=(MAX_OUTSTANDING as u64 + 10) {
            offered += s.learn(Offer::Stored(info(1, seq))).len();
        }
        assert_eq!(offered, MAX_OUTSTANDING);
        // Author 2 is not held up by author 1's backlog.
        assert_eq!(s.learn(Offer::Stored(info(2, 1))), digests(&[info(2, 1)]));
        // Committing one of author 1's offered batches lets the next one through.
        let first = info(1, 1);
        let released = s.learn(Offer::Committed(vec![(first.author, 1, first.digest)]));
        assert_eq!(released, digests(&[info(1, MAX_OUTSTANDING as u64 + 1)]));
    }
}
