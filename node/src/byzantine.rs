//! A validator that misbehaves on purpose, compiled only with the `byzantine` feature and
//! switched on by a `[byzantine]` config section: fault tests run one such validator
//! among honest ones to show that safety holds and the chain keeps committing.
//!
//! Each behaviour is the smallest honest rendition of one attack, made on the outbound
//! path so that the replica itself stays correct (its own safety data, its view of the
//! chain) and only what leaves the node is hostile:
//! - `equivocate`: as leader, a second, correctly signed proposal for the same round (a
//!   later timestamp) goes to half of the committee, the original to the other half, and
//!   both to one validator, which thus holds proof of the equivocation;
//! - `double_vote`: before each vote, a correctly signed vote of the same round for a
//!   forged sibling block goes to the same leader;
//! - `stale_messages`: every send is followed by replays of this validator's own
//!   messages from rounds at least [`STALE_ROUNDS`] old, to everyone;
//! - `oversized_messages`: every [`OVERSIZED_EVERY`], a consensus frame one byte above the
//!   protocol's limit, to everyone;
//! - `invalid_signatures` and `withhold_batches` live in the dissemination layer
//!   (`ordo_network::byzantine`) and the node's batch server ([`crate::batches`]);
//!   `corrupt_snapshot_chunks` in the snapshot server ([`crate::snapshots`]), which
//!   changes one byte of every chunk it serves.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_consensus::messages::{proposal_digest, vote_digest, Epoch, Round};
use ordo_consensus::{Message, Proposal, Vote};
use ordo_network::byzantine::ByzantineBatches;
use ordo_network::{NetworkHandle, MAX_CONSENSUS_MESSAGE_BYTES};
use ordo_types::{Hash32, KeyPair, PublicKey};
use tracing::{debug, warn};

use crate::config::{Behaviour, ByzantineSection};
use crate::wire::NodeMessage;

/// Replayed messages are at least this many rounds older than the current round.
const STALE_ROUNDS: Round = 3;
/// Own messages kept for replay.
const STALE_KEPT: usize = 256;
/// Old messages replayed after each send.
const REPLAYS_PER_SEND: usize = 4;
/// How often an oversized frame goes out (each one gets this validator dropped for a while).
const OVERSIZED_EVERY: Duration = Duration::from_secs(5);
const SIBLING_TAG: &[u8] = b"ordo/byzantine-sibling\0";

/// The dissemination layer's share of `section`.
pub fn batches(section: &ByzantineSection) -> ByzantineBatches {
    ByzantineBatches {
        invalid_signatures: section.has(Behaviour::InvalidSignatures),
        withhold: section.has(Behaviour::WithholdBatches),
    }
}

/// Says so, loudly, at start-up.
pub fn announce(section: &ByzantineSection) {
    warn!(
        behaviours = ?section.behaviours,
        "BYZANTINE VALIDATOR: this node misbehaves on purpose (fault tests only)"
    );
}

pub(crate) fn count(behaviour: &'static str) {
    metrics::counter!("ordo_byzantine_actions_total", "behaviour" => behaviour).increment(1);
}

/// The consensus driver's misbehaviour: sees each outbound message before it leaves.
pub struct Misbehaviour {
    section: ByzantineSection,
    key: KeyPair,
    epoch: Epoch,
    /// Every validator's consensus key, in committee order.
    validators: Vec<PublicKey>,
    sent: VecDeque<(Round, Arc<Vec<u8>>)>,
    replay_cursor: usize,
    last_oversized: Option<Instant>,
}

impl Misbehaviour {
    pub fn new(
        section: ByzantineSection,
        key: KeyPair,
        epoch: Epoch,
        validators: Vec<PublicKey>,
    ) -> Self {
        Misbehaviour {
            section,
            key,
            epoch,
            validators,
            sent: VecDeque::new(),
            replay_cursor: 0,
            last_oversized: None,
        }
    }

    /// Called for each message the replica sends (`to` is `None` for a broadcast) in
    /// round `round`; returns true when it has sent its own version instead, so that the
    /// original must not go out.
    pub fn on_send(
        &mut self,
        network: &NetworkHandle,
        round: Round,
        to: Option<&PublicKey>,
        message: &Message,
    ) -> bool {
        let mut replaced = false;
        match (message, to) {
            (Message::Proposal(p), None) if self.section.has(Behaviour::Equivocate) => {
                replaced = self.equivocate(network, p);
            }
            (Message::Vote(v), Some(to)) if self.section.has(Behaviour::DoubleVote) => {
                self.double_vote(network, to, v);
            }
            _ => {}
        }
        if self.section.has(Behaviour::StaleMessages) {
            self.replay(network, round, message);
        }
        if self.section.has(Behaviour::OversizedMessages)
            && self
                .last_oversized
                .is_none_or(|at| at.elapsed() >= OVERSIZED_EVERY)
        {
            self.last_oversized = Some(Instant::now());
            warn!(
                bytes = MAX_CONSENSUS_MESSAGE_BYTES + 1,
                "BYZANTINE: broadcasting an oversized consensus frame on purpose"
            );
            count("oversized_messages");
            network.broadcast_consensus(vec![0; MAX_CONSENSUS_MESSAGE_BYTES + 1]);
        }
        replaced
    }

    fn equivocate(&mut self, network: &NetworkHandle, p: &Proposal) -> bool {
        let me = self.key.public();
        if self.validators.get(usize::from(p.block.author)) != Some(&me) {
            return false;
        }
        let mut twin = p.clone();
        // A later timestamp: a different block id the replicas cannot tell from a real one.
        twin.block.timestamp_ms += 1;
        let id = twin.block.id();
        twin.signature = self
            .key
            .sign(proposal_digest(self.epoch, twin.block.round, &id).as_bytes());
        let others: Vec<PublicKey> = self
            .validators
            .iter()
            .copied()
            .filter(|k| *k != me)
            .collect();
        let half = others.len().div_ceil(2);
        let original = NodeMessage::Consensus(Message::Proposal(p.clone())).encode();
        let forged = NodeMessage::Consensus(Message::Proposal(twin.clone())).encode();
        warn!(
            round = p.block.round,
            block = %p.block,
            twin = %twin.block,
            "BYZANTINE: equivocating, two proposals for one round on purpose"
        );
        count("equivocate");
        for (i, k) in others.iter().enumerate() {
            let bytes = if i < half { &original } else { &forged };
            send(network, k, bytes.clone());
        }
        if let Some(first) = others.first() {
            send(network, first, forged);
        }
        true
    }

    fn double_vote(&mut self, network: &NetworkHandle, to: &PublicKey, v: &Vote) {
        let sibling = Hash32::digest(SIBLING_TAG, v.block_id.as_bytes());
        let digest = vote_digest(self.epoch, v.round, &sibling, v.parent_round, &v.parent_id);
        let forged = Vote {
            block_id: sibling,
            signature: self.key.sign(digest.as_bytes()),
            ..v.clone()
        };
        debug!(round = v.round, "BYZANTINE: double voting on purpose");
        count("double_vote");
        // Ahead of the real vote, so that the leader meets the conflicting one first.
        send(
            network,
            to,
            NodeMessage::Consensus(Message::Vote(forged)).encode(),
        );
    }

    fn replay(&mut self, network: &NetworkHandle, round: Round, message: &Message) {
        if let (Some(r), Message::Proposal(_) | Message::Vote(_) | Message::Timeout(_)) =
            (message.round(), message)
        {
            self.sent.push_back((
                r,
                Arc::new(NodeMessage::Consensus(message.clone()).encode()),
            ));
            while self.sent.len() > STALE_KEPT {
                self.sent.pop_front();
            }
        }
        let old: Vec<Arc<Vec<u8>>> = self
            .sent
            .iter()
            .filter(|(r, _)| r.saturating_add(STALE_ROUNDS) <= round)
            .map(|(_, bytes)| bytes.clone())
            .collect();
        if old.is_empty() {
            return;
        }
        for _ in 0..REPLAYS_PER_SEND.min(old.len()) {
            self.replay_cursor = (self.replay_cursor + 1) % old.len();
            count("stale_messages");
            network.broadcast_consensus(old[self.replay_cursor].to_vec());
        }
    }
}

fn send(network: &NetworkHandle, to: &PublicKey, bytes: Vec<u8>) {
    if let Err(e) = network.send_consensus(to, bytes) {
        debug!(error = %e, "byzantine send dropped");
    }
}
