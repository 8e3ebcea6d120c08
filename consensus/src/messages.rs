//! The protocol's data: blocks, votes, certificates, timeouts and the wire messages.
//!
//! Invariant: every signature covers a domain-tagged digest that names the epoch and the
//! round, so no signature can be replayed in another round, epoch or role. A block's id
//! commits to the whole QC it carries (all but the signature bytes), its parent's id
//! among it, so a chain of ids authenticates a chain of blocks and their certificates'
//! content without further signatures.

use std::fmt;

use bincode::{Decode, Encode};
use ordo_types::{codec, Hash32, Signature};

pub type Round = u64;
pub type Epoch = u64;
/// A validator's position in the [`crate::Committee`].
pub type ValidatorIndex = u16;

/// Largest wire message accepted by [`Message::decode`].
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

const BLOCK_TAG: &[u8] = b"ordo/block\0";
const VOTE_TAG: &[u8] = b"ordo/vote\0";
const TIMEOUT_TAG: &[u8] = b"ordo/timeout\0";
const PROPOSAL_TAG: &[u8] = b"ordo/proposal\0";
const GENESIS_TAG: &[u8] = b"ordo/genesis\0";

/// 2f + 1 votes for one block in one round. It certifies `block_id` and, because votes
/// sign the parent too, names the parent: a QC whose round follows its parent's round
/// directly is the proof that commits the parent (the 2-chain rule).
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct QuorumCert {
    pub round: Round,
    pub block_id: Hash32,
    pub parent_round: Round,
    pub parent_id: Hash32,
    /// Signers by committee index, strictly ascending.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

impl QuorumCert {
    /// The certificate every epoch starts from: it certifies the genesis block, unsigned.
    pub fn genesis(epoch: Epoch) -> Self {
        let id = Block::genesis(epoch).id();
        QuorumCert {
            round: 0,
            block_id: id,
            parent_round: 0,
            parent_id: id,
            signatures: Vec::new(),
        }
    }

    /// The digest each vote in this certificate signed.
    pub fn signed_digest(&self, epoch: Epoch) -> Hash32 {
        vote_digest(
            epoch,
            self.round,
            &self.block_id,
            self.parent_round,
            &self.parent_id,
        )
    }

    /// The block this certificate commits, if its round directly follows its parent's.
    pub fn commits(&self) -> Option<(Round, Hash32)> {
        (self.round > 0 && self.round == self.parent_round.saturating_add(1))
            .then_some((self.parent_round, self.parent_id))
    }

    /// Identifies the certificate's content, for the verification cache.
    pub fn cache_key(&self) -> Hash32 {
        Hash32::digest(b"ordo/qc-cache\0", &codec::encode(self))
    }
}

/// The block executed at one height and the state root after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ExecutedRoot {
    pub block: Hash32,
    pub root: Hash32,
}

/// The state roots a block carries: those of heights `first`, `first + 1`, ... (the
/// rules they follow are in [`crate::state_roots`]).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StateRoots {
    pub first: u64,
    pub roots: Vec<ExecutedRoot>,
}

impl Default for StateRoots {
    /// What the genesis block carries: nothing, and height 1 next.
    fn default() -> Self {
        StateRoots {
            first: 1,
            roots: Vec::new(),
        }
    }
}

impl StateRoots {
    /// The first height a child block carries.
    pub fn next(&self) -> u64 {
        self.first.saturating_add(self.roots.len() as u64)
    }

    /// What this block carries for `height`, if it carries it.
    pub fn get(&self, height: u64) -> Option<ExecutedRoot> {
        let i = usize::try_from(height.checked_sub(self.first)?).ok()?;
        self.roots.get(i).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, ExecutedRoot)> + '_ {
        (self.first..).zip(self.roots.iter().copied())
    }

    /// What a block id hashes of these roots.
    pub(crate) fn id_bytes(&self) -> Vec<u8> {
        ordo_types::codec::encode(self)
    }
}

/// A proposed block. The payload is opaque: digests whose data the node makes available.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    pub epoch: Epoch,
    pub round: Round,
    pub author: ValidatorIndex,
    /// The proposer's clock, from the driver; never decreases along a chain.
    pub timestamp_ms: u64,
    pub payload: Vec<Hash32>,
    /// The state roots of the heights executed since those its parent's chain carried
    /// (see [`crate::state_roots`]): the block's certificate vouches for them.
    pub state: StateRoots,
    /// Certifies the parent.
    pub qc: QuorumCert,
}

impl Block {
    /// The root of every epoch: round 0, empty, identified by the epoch alone.
    pub fn genesis(epoch: Epoch) -> Self {
        let anchor = Hash32::digest(GENESIS_TAG, &epoch.to_le_bytes());
        Block {
            epoch,
            round: 0,
            author: 0,
            timestamp_ms: 0,
            payload: Vec::new(),
            state: StateRoots::default(),
            qc: QuorumCert {
                round: 0,
                block_id: anchor,
                parent_round: 0,
                parent_id: anchor,
                signatures: Vec::new(),
            },
        }
    }

    /// The block's id: over every field, the parent QC's included, except the QC's
    /// signature bytes (one signer may sign one digest in more than one way). So a block
    /// fetched by id carries exactly the certificate its proposer sent: the parent it
    /// names (which decides what the QC commits) and who signed it (which leader
    /// reputation reads) cannot be altered by whoever relays it.
    pub fn id(&self) -> Hash32 {
        if crate::control::INSECURE_SYNC {
            return self.legacy_id();
        }
        let signers: Vec<ValidatorIndex> = self.qc.signatures.iter().map(|s| s.0).collect();
        Hash32::digest_parts(
            BLOCK_TAG,
            &[
                &self.epoch.to_le_bytes(),
                &self.round.to_le_bytes(),
                &self.author.to_le_bytes(),
                &self.timestamp_ms.to_le_bytes(),
                &codec::encode(&self.payload),
                &self.state.id_bytes(),
                &self.qc.round.to_le_bytes(),
                self.qc.block_id.as_bytes(),
                &self.qc.parent_round.to_le_bytes(),
                self.qc.parent_id.as_bytes(),
                &codec::encode(&signers),
            ],
        )
    }

    /// The id before the forged-sync fix: the QC's round and block only. Kept for the
    /// control build alone (see [`crate::control`]).
    fn legacy_id(&self) -> Hash32 {
        Hash32::digest_parts(
            BLOCK_TAG,
            &[
                &self.epoch.to_le_bytes(),
                &self.round.to_le_bytes(),
                &self.author.to_le_bytes(),
                &self.timestamp_ms.to_le_bytes(),
                &codec::encode(&self.payload),
                &self.qc.round.to_le_bytes(),
                self.qc.block_id.as_bytes(),
            ],
        )
    }

    pub fn parent(&self) -> Hash32 {
        self.qc.block_id
    }
}

/// A leader's signed block, with the timeout certificate that justifies its round when
/// the previous round did not produce a QC.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct Proposal {
    pub block: Block,
    pub tc: Option<TimeoutCert>,
    pub signature: Signature,
}

pub fn proposal_digest(epoch: Epoch, round: Round, block_id: &Hash32) -> Hash32 {
    Hash32::digest_parts(
        PROPOSAL_TAG,
        &[
            &epoch.to_le_bytes(),
            &round.to_le_bytes(),
            block_id.as_bytes(),
        ],
    )
}

/// One validator's vote for a block, sent to the next round's leader.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct Vote {
    pub round: Round,
    pub block_id: Hash32,
    pub parent_round: Round,
    pub parent_id: Hash32,
    pub author: ValidatorIndex,
    pub signature: Signature,
}

pub fn vote_digest(
    epoch: Epoch,
    round: Round,
    block_id: &Hash32,
    parent_round: Round,
    parent_id: &Hash32,
) -> Hash32 {
    Hash32::digest_parts(
        VOTE_TAG,
        &[
            &epoch.to_le_bytes(),
            &round.to_le_bytes(),
            block_id.as_bytes(),
            &parent_round.to_le_bytes(),
            parent_id.as_bytes(),
        ],
    )
}

/// A validator gives up on `round`; it carries its highest QC so that the timeout
/// certificate can tell the next leader what it must extend, the TC that brought it into
/// `round` so that laggards can follow, and the QC that proves its latest commit, so that
/// every replica learns the commits one replica saw (leader reputation needs replicas
/// to agree on the committed history).
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct Timeout {
    pub round: Round,
    pub high_qc: QuorumCert,
    pub last_tc: Option<TimeoutCert>,
    pub commit_qc: QuorumCert,
    pub author: ValidatorIndex,
    pub signature: Signature,
}

pub fn timeout_digest(epoch: Epoch, round: Round, high_qc_round: Round) -> Hash32 {
    Hash32::digest_parts(
        TIMEOUT_TAG,
        &[
            &epoch.to_le_bytes(),
            &round.to_le_bytes(),
            &high_qc_round.to_le_bytes(),
        ],
    )
}

/// 2f + 1 timeouts for one round. `high_qc` is the highest QC among them, the one the
/// next leader's block must not fall below.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub struct TimeoutCert {
    pub round: Round,
    pub high_qc: QuorumCert,
    /// (signer, the signer's high-QC round, signature), signers strictly ascending.
    pub signatures: Vec<(ValidatorIndex, Round, Signature)>,
}

impl TimeoutCert {
    pub fn max_high_qc_round(&self) -> Round {
        self.signatures.iter().map(|s| s.1).max().unwrap_or(0)
    }
}

/// Everything validators say to each other about consensus.
#[derive(Clone, PartialEq, Eq, Encode, Decode)]
pub enum Message {
    Proposal(Proposal),
    Vote(Vote),
    Timeout(Timeout),
    /// A TC its former broadcasts once, so that a replica that missed one of the timeouts
    /// does not sit out the round until the next timer.
    TimeoutCert(TimeoutCert),
    /// Asks for `block_id` and up to `max` of its ancestors above round `above_round`.
    BlockRequest {
        block_id: Hash32,
        above_round: Round,
        max: u16,
    },
    /// Blocks from the requested one backwards, each the parent of the one before.
    BlockResponse {
        blocks: Vec<Block>,
    },
    /// A QC its former broadcasts once when, having formed it, it no longer takes itself
    /// for the next round's leader (see `Replica`'s vote handling): the replicas that sent
    /// it their votes then commit what it commits and name the same leader, who proposes.
    QuorumCert(QuorumCert),
    /// Forward catch-up: asks for up to `max` blocks of the committed chain after block
    /// `after` (committed at the asker), oldest first. A replica far behind asks this
    /// instead of walking back from the tip, so it never holds more than one answer of
    /// blocks whose parents it lacks, whatever the length of the chain it missed.
    CatchUpRequest {
        after: Hash32,
        max: u16,
    },
    /// Committed blocks after `after`, oldest first, each the child of the one before.
    CatchUpResponse {
        after: Hash32,
        blocks: Vec<Block>,
    },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes untrusted bytes, refusing anything over [`MAX_MESSAGE_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ordo_types::Error> {
        codec::decode::<Self, MAX_MESSAGE_BYTES>(bytes)
    }

    /// The round a message is about, for routing by per-round partitions and for logs.
    pub fn round(&self) -> Option<Round> {
        match self {
            Message::Proposal(p) => Some(p.block.round),
            Message::Vote(v) => Some(v.round),
            Message::Timeout(t) => Some(t.round),
            Message::TimeoutCert(tc) => Some(tc.round),
            Message::QuorumCert(qc) => Some(qc.round),
            Message::BlockRequest { .. }
            | Message::BlockResponse { .. }
            | Message::CatchUpRequest { .. }
            | Message::CatchUpResponse { .. } => None,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Proposal(_) => "proposal",
            Message::Vote(_) => "vote",
            Message::Timeout(_) => "timeout",
            Message::TimeoutCert(_) => "timeout_cert",
            Message::QuorumCert(_) => "quorum_cert",
            Message::BlockRequest { .. } => "block_request",
            Message::BlockResponse { .. } => "block_response",
            Message::CatchUpRequest { .. } => "catch_up_request",
            Message::CatchUpResponse { .. } => "catch_up_response",
        }
    }
}

impl fmt::Display for QuorumCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QC{}({}, {} sigs)",
            self.round,
            self.block_id.short(),
            self.signatures.len()
        )
    }
}

impl fmt::Debug for QuorumCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TimeoutCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TC{}(QC{}, {} sigs)",
            self.round,
            self.high_qc.round,
            self.signatures.len()
        )
    }
}

impl fmt::Debug for TimeoutCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "B{}({}, QC{}, {} batches)",
            self.round,
            self.id().short(),
            self.qc.round,
            self.payload.len()
        )
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tc {
            Some(tc) => write!(f, "Proposal({} with {})", self.block, tc),
            None => write!(f, "Proposal({})", self.block),
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "V{}({}, by #{})",
            self.round,
            self.block_id.short(),
            self.author
        )
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "T{}(QC{}, by #{})",
            self.round, self.high_qc.round, self.author
        )
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Proposal(p) => match &p.tc {
                Some(tc) => write!(f, "Propose {} with {}", p.block, tc),
                None => write!(f, "Propose {}", p.block),
            },
            Message::Vote(v) => write!(f, "{v}"),
            Message::Timeout(t) => write!(f, "{t}"),
            Message::TimeoutCert(tc) => write!(f, "{tc}"),
            Message::QuorumCert(qc) => write!(f, "{qc}"),
            Message::BlockRequest {
                block_id,
                above_round,
                max,
            } => write!(
                f,
                "BlockRequest({}, above R{}, max {})",
                block_id.short(),
                above_round,
                max
            ),
            Message::BlockResponse { blocks } => {
                write!(f, "BlockResponse({} blocks)", blocks.len())
            }
            Message::CatchUpRequest { after, max } => {
                write!(f, "CatchUpRequest(after {}, max {max})", after.short())
            }
            Message::CatchUpResponse { after, blocks } => {
                write!(
                    f,
                    "CatchUpResponse(after {}, {} blocks)",
                    after.short(),
                    blocks.len()
                )
            }
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_through_the_codec() {
        let qc = QuorumCert::genesis(7);
        let block = Block {
            epoch: 7,
            round: 1,
            author: 2,
            timestamp_ms: 99,
            payload: vec![Hash32::digest(b"t\0", b"x")],
            state: StateRoots {
                first: 1,
                roots: vec![ExecutedRoot {
                    block: Hash32([3; 32]),
                    root: Hash32([4; 32]),
                }],
            },
            qc: qc.clone(),
        };
        let msg = Message::Proposal(Proposal {
            block: block.clone(),
            tc: None,
            signature: Signature([5; 64]),
        });
        let bytes = msg.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        assert!(format!("{msg}").starts_with("Propose B1("));
        assert!(format!("{block}").ends_with(", QC0, 1 batches)"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = Message::decode(&bytes);
        }
        assert!(Message::decode(&[9, 0, 0, 0]).is_err());
    }

    #[test]
    fn block_id_binds_the_certificate_but_not_its_signature_bytes() {
        let mut a = Block::genesis(1);
        a.round = 3;
        a.qc.signatures.push((0, Signature([1; 64])));
        let mut b = a.clone();
        b.qc.signatures[0].1 = Signature([2; 64]);
        assert_eq!(a.id(), b.id(), "another signature by the same signer");
        let mut c = a.clone();
        c.qc.signatures[0].0 = 1;
        assert_ne!(a.id(), c.id(), "another signer");
        let mut d = a.clone();
        d.qc.block_id = Hash32([9; 32]);
        assert_ne!(a.id(), d.id());
        let mut e = a.clone();
        e.qc.parent_id = Hash32([9; 32]);
        assert_ne!(a.id(), e.id());
        let mut f = a.clone();
        f.qc.parent_round = 2;
        assert_ne!(a.id(), f.id());
        let mut g = a.clone();
        g.state.roots.push(ExecutedRoot {
            block: Hash32([7; 32]),
            root: Hash32([8; 32]),
        });
        assert_ne!(a.id(), g.id(), "the state roots carried");
    }
}
