//! What the node feeds the consensus driver: peers' consensus messages (block-sync
//! answers among them), the payload owner's reports and the root tracker's verdict.
//!
//! Its own file so that the driver's feeders (block sync, payload, roots, the inbound
//! path) depend on this type only, not on the driver, which itself calls block sync.

use ordo_consensus::{Message, ReadyPayload};
use ordo_types::{Hash32, PublicKey};

/// What the node feeds the driver.
#[allow(clippy::large_enum_variant)]
pub enum DriverInput {
    Message {
        from: PublicKey,
        message: Message,
    },
    /// Payload that may be proposed and voted for, in the order to propose it, with the
    /// gas each takes of a block.
    Payload(Vec<ReadyPayload>),
    /// Payload that may be voted for only (a checked proposal's batches).
    PayloadAvailable(Vec<Hash32>),
    /// We executed `block` at `height`, and `root` is the state after it (every height, in
    /// order).
    Executed {
        height: u64,
        block: Hash32,
        root: Hash32,
    },
    /// 2f others announced our root at this height: a leader may carry the roots up to it.
    PeersExecuted(u64),
    /// Our state root differs from a quorum's: send no more votes.
    StopVoting,
}
