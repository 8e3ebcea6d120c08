//! The replica's boundary: the events the driver feeds it and the actions it returns.
//!
//! Invariant: actions are returned in the order the driver must carry them out, and an
//! [`Action::Persist`] is made durable before the action after it runs, so that no vote or
//! timeout leaves the node before the safety data that authorises it.

use ordo_types::{Hash32, PublicKey};

use crate::messages::ExecutedRoot;
use crate::messages::{Block, Message, QuorumCert};
use crate::safety::SafetyData;

/// What the driver feeds a replica.
// Events are moved once into `handle`; boxing the common case would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Event {
    /// A message from an authenticated peer.
    Message { from: PublicKey, message: Message },
    /// A timer set by [`Action::SetTimer`] fired (or any wake-up: ticks are idempotent).
    Tick,
    /// These payload digests are stored locally: they may be proposed, in this order, and
    /// blocks that carry them may be voted for.
    PayloadReady(Vec<ReadyPayload>),
    /// These payload digests are stored locally: blocks that carry them may be voted for,
    /// but this replica does not propose them on this report (the node decides the order
    /// in which payload is proposed; a proposal's say-so is no evidence of it).
    PayloadAvailable(Vec<Hash32>),
    /// We executed `block` at height `height`, and `root` is the state after it: blocks
    /// carrying it may be voted for, and a leader may carry it once its peers executed it
    /// (see [`crate::state_roots`]). Report every height as it executes, in order; after
    /// a restart, [`crate::Replica::restore_executed`] and then what [`Action::LoadRoots`]
    /// asks for.
    Executed {
        height: u64,
        block: Hash32,
        root: Hash32,
    },
    /// 2f other validators announced our root at `height`: with us a quorum executed
    /// every height up to it, so a block carrying them can be voted for at once.
    PeersExecuted { height: u64 },
}

impl Event {
    /// [`Event::Executed`] for what was executed at `height`.
    pub fn executed(height: u64, executed: ExecutedRoot) -> Self {
        Event::Executed {
            height,
            block: executed.block,
            root: executed.root,
        }
    }
}

/// A payload digest reported ready, with what it takes of a block: its transactions and
/// their gas (the sum of their EVM gas limits), which bound what a leader proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyPayload {
    pub digest: Hash32,
    pub txs: u64,
    pub gas: u64,
}

impl From<Hash32> for ReadyPayload {
    /// Payload of unknown size, counted as taking nothing of a block.
    fn from(digest: Hash32) -> Self {
        ReadyPayload {
            digest,
            txs: 0,
            gas: 0,
        }
    }
}

/// What a replica asks the driver to do, in order.
#[derive(Clone, Debug)]
pub enum Action {
    /// Store these safety data durably before executing the next action.
    Persist(SafetyData),
    Send {
        to: PublicKey,
        message: Message,
    },
    /// Send to every other validator.
    Broadcast(Message),
    /// These blocks are final, oldest first; `proof` is the QC that commits the last one.
    Commit {
        blocks: Vec<Block>,
        proof: QuorumCert,
    },
    /// This block joined the replica's tree: keep it where peers' block requests are
    /// answered from (see [`crate::sync`]). Memory will do: `Commit` is what makes
    /// committed blocks durable. The replica itself never answers block requests, so that
    /// serving laggards costs the consensus thread nothing.
    KeepBlock(Block),
    /// A valid proposal of the current round, the one this replica would vote for, names
    /// payload that is not reported available: fetch it, from the proposer first, and
    /// report it with [`Event::PayloadReady`]. Emitted once per block, and only after the
    /// proposal passed every check, so that nobody makes the node fetch by sending junk.
    FetchPayload {
        proposer: PublicKey,
        digests: Vec<Hash32>,
    },
    /// Report with [`Event::Executed`] what we executed at heights `from` to
    /// `from + count - 1` (those the store holds): the replica executed past them but
    /// holds their roots no more (a restart, or roots evicted from memory).
    LoadRoots {
        from: u64,
        count: u64,
    },
    /// Deliver [`Event::Tick`] at or after this time; replaces any earlier timer.
    SetTimer {
        deadline_ms: u64,
    },
}
