//! State-root exchange: every validator announces its state root after executing each
//! block; this tracker compares them.
//!
//! Rule: when at least 2f + 1 other validators announced the same root for a height and
//! it differs from ours, our state diverged. The tracker then reports divergence once;
//! the node logs it, counts it and stops voting, rather than certify blocks on a state
//! that the honest majority does not share.
//!
//! The tracker also finds how far 2f others executed alike with us ([`RootTracker::ready_through`]):
//! the heights a leader may carry in a block (see `ordo_consensus::state_roots`), since a
//! quorum can check them at once. Our roots and that height go to the driver.
//!
//! Invariant: memory is bounded: only the most recent `WINDOW` heights are kept.
//!
//! [`RootTracker`] is the pure rule; [`run`] is its owner task: it takes our roots from
//! the executed-block events (and announces each to the peers), the peers' from the
//! network, tells the driver to stop voting on divergence, and publishes a
//! [`RootsView`] for the RPC.

use std::collections::{BTreeMap, HashMap};

use ordo_network::NetworkHandle;
use ordo_types::{Hash32, PublicKey};
use tokio::sync::{mpsc, watch};
use tracing::error;

use crate::driver_input::DriverInput;
use crate::events::ExecutedBlock;
use crate::supervisor::TaskError;
use crate::wire::NodeMessage;

const WINDOW: u64 = 1_024;

/// What one announcement or one local root revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing decided yet.
    Open,
    /// A quorum of others agrees with our root at this height.
    Agreed { height: u64 },
    /// A quorum of others agrees on `theirs`, which is not our `ours`.
    Diverged {
        height: u64,
        ours: Hash32,
        theirs: Hash32,
    },
}

pub struct RootTracker {
    quorum: usize,
    me: Option<PublicKey>,
    ours: BTreeMap<u64, Hash32>,
    theirs: BTreeMap<u64, HashMap<PublicKey, Hash32>>,
    decided: BTreeMap<u64, bool>,
    highest_agreed: Option<u64>,
    /// The highest height at which 2f others announced our root.
    ready_through: u64,
}

impl RootTracker {
    /// `quorum` is 2f + 1 for the committee; `me` is this validator's key, whose own
    /// announcements (none are sent to self, but be safe) are ignored.
    pub fn new(quorum: usize, me: Option<PublicKey>) -> Self {
        RootTracker {
            quorum,
            me,
            ours: BTreeMap::new(),
            theirs: BTreeMap::new(),
            decided: BTreeMap::new(),
            highest_agreed: None,
            ready_through: 0,
        }
    }

    /// The highest height at which, with us, a quorum (2f others) announced our root: they
    /// executed every height up to it.
    pub fn ready_through(&self) -> u64 {
        self.ready_through
    }

    #[cfg(test)]
    pub fn highest_agreed(&self) -> Option<u64> {
        self.highest_agreed
    }

    pub fn local(&mut self, height: u64, root: Hash32) -> Verdict {
        self.ours.insert(height, root);
        self.prune(height);
        self.check(height)
    }

    pub fn remote(&mut self, from: PublicKey, height: u64, root: Hash32) -> Verdict {
        if Some(from) == self.me {
            return Verdict::Open;
        }
        let newest = self.ours.keys().next_back().copied().unwrap_or(0);
        // Far-future heights are either a fast peer or noise; keep memory bounded.
        if height > newest + WINDOW || height + WINDOW < newest {
            return Verdict::Open;
        }
        self.theirs.entry(height).or_default().insert(from, root);
        self.check(height)
    }

    fn check(&mut self, height: u64) -> Verdict {
        self.note_ready(height);
        if self.decided.contains_key(&height) {
            return Verdict::Open;
        }
        let (Some(ours), Some(theirs)) = (self.ours.get(&height), self.theirs.get(&height)) else {
            return Verdict::Open;
        };
        let mut counts: HashMap<Hash32, usize> = HashMap::new();
        for r in theirs.values() {
            *counts.entry(*r).or_default() += 1;
        }
        let Some((root, _)) = counts.into_iter().find(|(_, c)| *c >= self.quorum) else {
            return Verdict::Open;
        };
        let agreed = root == *ours;
        self.decided.insert(height, agreed);
        if agreed {
            self.highest_agreed = self.highest_agreed.max(Some(height));
            Verdict::Agreed { height }
        } else {
            Verdict::Diverged {
                height,
                ours: *ours,
                theirs: root,
            }
        }
    }

    fn note_ready(&mut self, height: u64) {
        if height <= self.ready_through {
            return;
        }
        let Some(ours) = self.ours.get(&height) else {
            return;
        };
        let alike = self
            .theirs
            .get(&height)
            .map_or(0, |t| t.values().filter(|r| *r == ours).count());
        if alike + 1 >= self.quorum {
            self.ready_through = height;
        }
    }

    fn prune(&mut self, newest: u64) {
        let keep_from = newest.saturating_sub(WINDOW);
        self.ours = self.ours.split_off(&keep_from);
        self.theirs = self.theirs.split_off(&keep_from);
        self.decided = self.decided.split_off(&keep_from);
    }
}

/// What the tracker has found, for the RPC's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootsView {
    /// False once our root differed from a quorum's.
    pub voting: bool,
    pub agreed_height: Option<u64>,
}

impl Default for RootsView {
    fn default() -> Self {
        RootsView {
            voting: true,
            agreed_height: None,
        }
    }
}

/// Peers' announcements queued for the tracker; more are dropped (counted): a root
/// missed costs one height's check, not safety.
pub const REMOTE_QUEUE: usize = 4_096;

/// Runs `tracker` over our executed blocks and the peers' announcements.
pub async fn run(
    mut tracker: RootTracker,
    mut local: mpsc::Receiver<ExecutedBlock>,
    mut remote: mpsc::Receiver<(PublicKey, u64, Hash32)>,
    network: NetworkHandle,
    driver: mpsc::Sender<DriverInput>,
    view: watch::Sender<RootsView>,
) -> Result<(), TaskError> {
    let mut told_ready = 0;
    loop {
        let verdict = tokio::select! {
            block = local.recv() => {
                let Some(block) = block else {
                    return Err(TaskError::closed("the executed-block events"));
                };
                let (height, root) = (block.height, block.state_root);
                network.broadcast_consensus(NodeMessage::StateRoot { height, root }.encode());
                let executed = DriverInput::Executed {
                    height,
                    block: block.block,
                    root,
                };
                to_driver(&driver, executed).await?;
                tracker.local(height, root)
            }
            Some((from, height, root)) = remote.recv() => tracker.remote(from, height, root),
        };
        if tracker.ready_through() > told_ready {
            told_ready = tracker.ready_through();
            to_driver(&driver, DriverInput::PeersExecuted(told_ready)).await?;
        }
        match verdict {
            Verdict::Diverged {
                height,
                ours,
                theirs,
            } => {
                metrics::counter!("ordo_node_state_divergence_total").increment(1);
                if view.borrow().voting {
                    error!(
                        height,
                        ours = %ours,
                        theirs = %theirs,
                        "state root differs from a quorum of validators; no longer voting"
                    );
                    view.send_modify(|v| v.voting = false);
                    to_driver(&driver, DriverInput::StopVoting).await?;
                }
            }
            Verdict::Agreed { height } => {
                metrics::gauge!("ordo_node_state_root_agreed_height").set(height as f64);
                view.send_modify(|v| v.agreed_height = v.agreed_height.max(Some(height)));
            }
            Verdict::Open => {}
        }
    }
}

/// Every root and readiness goes to the driver, never dropped: a root the replica misses
/// would hold its votes on blocks carrying it until their rounds end.
async fn to_driver(
    driver: &mpsc::Sender<DriverInput>,
    input: DriverInput,
) -> Result<(), TaskError> {
    driver
        .send(input)
        .await
        .map_err(|_| TaskError::closed("the consensus driver"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::KeyPair;

    fn key(i: u8) -> PublicKey {
        KeyPair::from_seed([i; 32]).public()
    }

    #[test]
    fn quorum_of_others_decides() {
        let mut t = RootTracker::new(3, Some(key(0)));
        let good = Hash32([1; 32]);
        assert_eq!(t.local(5, good), Verdict::Open);
        assert_eq!(t.remote(key(1), 5, good), Verdict::Open);
        assert_eq!(t.remote(key(0), 5, good), Verdict::Open);
        assert_eq!(t.remote(key(2), 5, good), Verdict::Open);
        assert_eq!(t.remote(key(3), 5, good), Verdict::Agreed { height: 5 });
        assert_eq!(t.highest_agreed(), Some(5));
    }

    #[test]
    fn two_f_others_alike_make_a_height_ready_to_carry() {
        let mut t = RootTracker::new(3, Some(key(0)));
        let (good, bad) = (Hash32([1; 32]), Hash32([2; 32]));
        t.remote(key(1), 7, good);
        t.remote(key(2), 7, bad);
        t.local(7, good);
        assert_eq!(t.ready_through(), 0, "one other alike is not 2f");
        t.remote(key(3), 7, good);
        assert_eq!(t.ready_through(), 7);
        t.remote(key(1), 6, good);
        t.remote(key(2), 6, good);
        t.local(6, good);
        assert_eq!(t.ready_through(), 7, "never goes down");
        // A committee of one: our own root is a quorum.
        let mut alone = RootTracker::new(1, Some(key(0)));
        alone.local(3, good);
        assert_eq!(alone.ready_through(), 3);
    }

    #[test]
    fn divergence_is_reported_once_whatever_the_arrival_order() {
        let mut t = RootTracker::new(3, Some(key(0)));
        let bad = Hash32([2; 32]);
        let good = Hash32([1; 32]);
        for i in 1..=3 {
            assert_eq!(t.remote(key(i), 9, good), Verdict::Open);
        }
        assert_eq!(
            t.local(9, bad),
            Verdict::Diverged {
                height: 9,
                ours: bad,
                theirs: good
            }
        );
        assert_eq!(t.remote(key(3), 9, good), Verdict::Open);
        // Two others are not a quorum of 3.
        let mut t = RootTracker::new(3, Some(key(0)));
        t.local(1, bad);
        t.remote(key(1), 1, good);
        assert_eq!(t.remote(key(2), 1, good), Verdict::Open);
    }
}
