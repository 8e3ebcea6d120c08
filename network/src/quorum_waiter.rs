//! The quorum waiter: collects acknowledgements of this validator's own batches into
//! proofs of availability.
//!
//! Invariants: an acknowledgement counts only if its signer is a validator that has not
//! acknowledged this batch yet, it signs exactly the batch's [`BatchInfo`], and its
//! signature verifies. At f + 1 the proof is emitted once and the batch's slot among the
//! pending batches is freed. Until then the batch is pushed again, periodically, to the
//! validators that have not acknowledged it, so a lost message or a restarted peer never
//! strands a batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, histogram};
use ordo_types::{Hash32, PublicKey, Signature};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::batch::{BatchAck, BatchInfo, ProofOfAvailability};
use crate::dissemination::{AvailableBatch, DisseminationStats};
use crate::{Committee, NetworkHandle};

pub(crate) enum QuorumEvent {
    /// A batch this validator made and broadcast, with its own acknowledgement.
    Own {
        info: BatchInfo,
        own_ack: BatchAck,
        wire: Arc<Vec<u8>>,
        created: Instant,
        permit: OwnedSemaphorePermit,
    },
    Ack(PublicKey, BatchAck),
}

struct Pending {
    info: BatchInfo,
    signatures: Vec<(PublicKey, Signature)>,
    wire: Arc<Vec<u8>>,
    created: Instant,
    last_push: Instant,
    _permit: OwnedSemaphorePermit,
}

pub(crate) struct QuorumWaiter {
    pub committee: Arc<Committee>,
    pub network: NetworkHandle,
    pub proofs: mpsc::Sender<AvailableBatch>,
    pub stats: Arc<DisseminationStats>,
    pub resend_interval: Duration,
}

impl QuorumWaiter {
    pub(crate) async fn run(
        self,
        mut events: mpsc::Receiver<QuorumEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut pending: HashMap<Hash32, Pending> = HashMap::new();
        let mut tick = tokio::time::interval(self.resend_interval / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                e = events.recv() => match e { Some(e) => e, None => break },
                _ = tick.tick() => { self.resend(&mut pending); continue }
                _ = shutdown.changed() => break,
            };
            match event {
                QuorumEvent::Own {
                    info,
                    own_ack,
                    wire,
                    created,
                    permit,
                } => {
                    let entry = Pending {
                        info,
                        signatures: vec![(own_ack.signer, own_ack.signature)],
                        wire,
                        created,
                        last_push: Instant::now(),
                        _permit: permit,
                    };
                    pending.insert(info.digest, entry);
                    // A committee of one is done at once.
                    self.maybe_complete(&mut pending, info.digest).await;
                }
                QuorumEvent::Ack(from, ack) => {
                    let digest = ack.info.digest;
                    let Some(entry) = pending.get_mut(&digest) else {
                        counter!("ordo_network_acks_late_total").increment(1);
                        continue;
                    };
                    if ack.signer != from
                        || entry.info != ack.info
                        || !self.committee.contains_key(&ack.signer)
                    {
                        warn!(%from, "acknowledgement that does not match its batch or sender");
                        counter!("ordo_network_acks_invalid_total").increment(1);
                        continue;
                    }
                    if entry.signatures.iter().any(|(k, _)| *k == ack.signer) {
                        continue;
                    }
                    if ack.verify(self.committee.chain_id()).is_err() {
                        warn!(%from, "acknowledgement with a bad signature");
                        counter!("ordo_network_acks_invalid_total").increment(1);
                        continue;
                    }
                    entry.signatures.push((ack.signer, ack.signature));
                    self.maybe_complete(&mut pending, digest).await;
                }
            }
        }
    }

    async fn maybe_complete(&self, pending: &mut HashMap<Hash32, Pending>, digest: Hash32) {
        let done = pending
            .get(&digest)
            .is_some_and(|p| p.signatures.len() >= self.committee.availability_threshold());
        if !done {
            return;
        }
        let Some(entry) = pending.remove(&digest) else {
            return;
        };
        let latency = entry.created.elapsed();
        histogram!("ordo_network_batch_poa_seconds").record(latency.as_secs_f64());
        counter!("ordo_network_proofs_total").increment(1);
        self.stats.proof_formed();
        debug!(batch = %entry.info, ?latency, "proof of availability");
        let proof = ProofOfAvailability {
            info: entry.info,
            signatures: entry.signatures,
        };
        // The node may not listen (tests of the network alone); nothing is lost then.
        let _ = self.proofs.send(AvailableBatch { proof, latency }).await;
    }

    fn resend(&self, pending: &mut HashMap<Hash32, Pending>) {
        let now = Instant::now();
        for entry in pending.values_mut() {
            if now.duration_since(entry.last_push) < self.resend_interval {
                continue;
            }
            entry.last_push = now;
            for v in self.committee.validators() {
                if Some(v.consensus_key) == self.network.local_key()
                    || entry.signatures.iter().any(|(k, _)| *k == v.consensus_key)
                {
                    continue;
                }
                counter!("ordo_network_batches_resent_total").increment(1);
                let _ = self
                    .network
                    .send_batch_bytes(&v.consensus_key, entry.wire.clone());
            }
        }
    }
}
