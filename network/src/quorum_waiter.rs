//! The quorum waiter: collects acknowledgements of this validator's own batches into
//! proofs of availability, and sees each batch delivered to every validator.
//!
//! Invariants: an acknowledgement counts only if its sender signed it, the sender is a
//! validator that has not acknowledged this batch yet, and it signs exactly the batch's
//! [`BatchInfo`]; one that goes into a proof has its signature verified. One that comes
//! after the proof only marks its sender as holding the batch, which the authenticated
//! connection it came on already shows: checking its signature (two of every three
//! acknowledgements with four validators) cost 5% of the CPU of four validators at
//! 50,000 payloads/s on 2 cores, for nothing. At f + 1 the proof is emitted once and the
//! batch's slot among the pending batches is freed. A validator whose send queue was full
//! is offered the batch again until its queue takes it; one that has not acknowledged
//! after `resend_interval` (a connection lost with the batch in flight) gets it again, a
//! bounded number of times once the proof exists. So a busy or restarted validator rarely
//! has to fetch a batch later. Tracking is bounded: the oldest tracked batch is
//! forgotten first (its proof, if any, was already emitted).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, histogram};
use ordo_types::{codec, Hash32, PublicKey, Signature};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::batch::{BatchAck, BatchInfo, BatchMessage, ProofOfAvailability};
use crate::batch_store::BatchStore;
use crate::committee::Committee;
use crate::error::Error;
use crate::network::NetworkHandle;
use crate::stats::DisseminationStats;

/// Own batches tracked for delivery at most; older ones are forgotten.
const MAX_TRACKED: usize = 4096;

/// A batch of ours that has its proof of availability.
#[derive(Debug)]
pub struct AvailableBatch {
    pub proof: ProofOfAvailability,
    /// From the batch's creation to its f + 1-th acknowledgement.
    pub latency: Duration,
    /// The batch's items, still counted as unproven until the receiver has counted them
    /// as proven (admission control reads both counts), and drops this.
    pub unproven: Unproven,
}

/// Own items counted in the dissemination's count of items without a proof
/// ([`crate::Dissemination::unproven_items`]) for as long as this lives.
#[derive(Debug)]
pub struct Unproven {
    items: u64,
    count: Arc<AtomicU64>,
}

impl Unproven {
    pub(crate) fn new(items: u64, count: Arc<AtomicU64>) -> Self {
        count.fetch_add(items, Ordering::Relaxed);
        Unproven { items, count }
    }
}

impl Drop for Unproven {
    fn drop(&mut self) {
        self.count.fetch_sub(self.items, Ordering::Relaxed);
    }
}

/// One of this validator's batches awaiting its proof: its slot among the pending batches,
/// given back when the proof forms or the batch is forgotten, and its items in the count of
/// own items without a proof, which go with the proof to the node.
pub(crate) struct PendingSlot {
    permit: OwnedSemaphorePermit,
    unproven: Unproven,
}

impl PendingSlot {
    pub(crate) fn new(permit: OwnedSemaphorePermit, items: u64, unproven: Arc<AtomicU64>) -> Self {
        PendingSlot {
            permit,
            unproven: Unproven::new(items, unproven),
        }
    }
}

pub(crate) enum QuorumEvent {
    /// A batch this validator made and broadcast, with its own acknowledgement.
    Own {
        info: BatchInfo,
        own_ack: BatchAck,
        created: Instant,
        permit: PendingSlot,
        /// Validators whose queue was full when the batch was pushed.
        unsent: Vec<PublicKey>,
        wire: Arc<Vec<u8>>,
    },
    Ack(PublicKey, BatchAck),
}

struct Tracked {
    info: BatchInfo,
    signatures: Vec<(PublicKey, Signature)>,
    created: Instant,
    last_push: Instant,
    pushes: u32,
    /// Held until the proof forms: bounds the batches awaiting one.
    permit: Option<PendingSlot>,
    /// Validators still to be offered the batch, and its frame while there are any.
    unsent: Vec<PublicKey>,
    wire: Option<Arc<Vec<u8>>>,
}

pub(crate) struct QuorumWaiter {
    pub committee: Arc<Committee>,
    pub network: NetworkHandle,
    pub store: Arc<BatchStore>,
    pub proofs: mpsc::Sender<AvailableBatch>,
    pub stats: Arc<DisseminationStats>,
    pub resend_interval: Duration,
    pub max_resends: u32,
    pub retry_interval: Duration,
}

impl QuorumWaiter {
    pub(crate) async fn run(
        self,
        mut events: mpsc::Receiver<QuorumEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tracked: HashMap<Hash32, Tracked> = HashMap::new();
        let mut order: VecDeque<Hash32> = VecDeque::new();
        let period = self.retry_interval.max(Duration::from_millis(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                e = events.recv() => match e { Some(e) => e, None => break },
                _ = tick.tick() => { self.resend(&mut tracked); continue }
                _ = shutdown.changed() => break,
            };
            match event {
                QuorumEvent::Own {
                    info,
                    own_ack,
                    created,
                    permit,
                    unsent,
                    wire,
                } => {
                    let entry = Tracked {
                        info,
                        signatures: vec![(own_ack.signer, own_ack.signature)],
                        created,
                        last_push: Instant::now(),
                        pushes: 0,
                        permit: Some(permit),
                        wire: (!unsent.is_empty()).then_some(wire),
                        unsent,
                    };
                    tracked.insert(info.digest, entry);
                    order.push_back(info.digest);
                    while tracked.len() > MAX_TRACKED {
                        // Only batches that already have their proof get here in practice:
                        // at most `max_pending_batches` lack one.
                        if let Some(old) = order.pop_front() {
                            tracked.remove(&old);
                        }
                    }
                    // A committee of one is done at once.
                    self.on_signature(&mut tracked, info.digest).await;
                }
                QuorumEvent::Ack(from, ack) => {
                    let digest = ack.info.digest;
                    let Some(entry) = tracked.get_mut(&digest) else {
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
                    let for_proof = entry.permit.is_some();
                    if for_proof && ack.verify(self.committee.chain_id()).is_err() {
                        warn!(%from, "acknowledgement with a bad signature");
                        counter!("ordo_network_acks_invalid_total").increment(1);
                        continue;
                    }
                    entry.signatures.push((ack.signer, ack.signature));
                    self.on_signature(&mut tracked, digest).await;
                }
            }
            if order.len() > 2 * tracked.len() + 64 {
                order.retain(|d| tracked.contains_key(d));
            }
        }
    }

    async fn on_signature(&self, tracked: &mut HashMap<Hash32, Tracked>, digest: Hash32) {
        let Some(entry) = tracked.get_mut(&digest) else {
            return;
        };
        let acks = entry.signatures.len();
        if entry.permit.is_some() && acks >= self.committee.availability_threshold() {
            let PendingSlot { permit, unproven } = entry.permit.take().expect("checked");
            drop(permit);
            let latency = entry.created.elapsed();
            histogram!("ordo_network_batch_poa_seconds").record(latency.as_secs_f64());
            counter!("ordo_network_proofs_total").increment(1);
            self.stats.proof_formed();
            debug!(batch = %entry.info, ?latency, "proof of availability");
            let proof = ProofOfAvailability {
                info: entry.info,
                signatures: entry.signatures.clone(),
            };
            // The node may not listen (tests of the network alone); nothing is lost then.
            let available = AvailableBatch {
                proof,
                latency,
                unproven,
            };
            let _ = self.proofs.send(available).await;
        }
        if acks >= self.committee.size() {
            tracked.remove(&digest);
        }
    }

    fn resend(&self, tracked: &mut HashMap<Hash32, Tracked>) {
        let now = Instant::now();
        let me = self.network.local_key();
        let mut give_up = Vec::new();
        for (digest, entry) in tracked.iter_mut() {
            if let Some(wire) = &entry.wire {
                let network = &self.network;
                entry.unsent.retain(|k| {
                    matches!(
                        network.retry_batch_bytes(k, wire.clone()),
                        Err(Error::QueueFull { .. })
                    )
                });
                if entry.unsent.is_empty() {
                    entry.wire = None;
                }
            }
            if now.duration_since(entry.last_push) < self.resend_interval {
                continue;
            }
            if entry.pushes >= self.max_resends && entry.permit.is_none() {
                // Proven and pushed enough: whoever still lacks it fetches it.
                give_up.push(*digest);
                continue;
            }
            let Some(batch) = self.store.get(digest) else {
                give_up.push(*digest);
                continue;
            };
            entry.last_push = now;
            entry.pushes += 1;
            let wire = Arc::new(codec::encode(&BatchMessage::Batch((*batch).clone())));
            for v in self.committee.validators() {
                if Some(v.consensus_key) == me
                    || entry.signatures.iter().any(|(k, _)| *k == v.consensus_key)
                {
                    continue;
                }
                counter!("ordo_network_batches_resent_total").increment(1);
                let _ = self
                    .network
                    .send_batch_bytes(&v.consensus_key, wire.clone());
            }
        }
        for d in give_up {
            tracked.remove(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use ordo_types::KeyPair;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::batch_store::BatchStoreConfig;
    use crate::committee::{network_keypair_from_seed, test_committee};
    use crate::network::{start, NetworkConfig};

    const CHAIN: u64 = 7;

    /// An acknowledgement whose signature does not verify never goes into a proof, though
    /// acknowledgements that come after the proof are no longer verified.
    #[tokio::test]
    async fn a_forged_acknowledgement_before_the_proof_stays_out_of_it() {
        let keys: Vec<KeyPair> = (0..4u8).map(|i| KeyPair::from_seed([i + 1; 32])).collect();
        let committee = Arc::new(test_committee(CHAIN, &keys, 101));
        // Validator 0 alone, on a real endpoint: its pushes to the others go nowhere.
        let (network, _inbound) = start(NetworkConfig::new(
            network_keypair_from_seed([101; 32]),
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            committee.clone(),
        ))
        .await
        .unwrap();
        let (proofs_tx, mut proofs) = mpsc::channel(8);
        let waiter = QuorumWaiter {
            committee: committee.clone(),
            network,
            store: Arc::new(BatchStore::new(BatchStoreConfig::default())),
            proofs: proofs_tx,
            stats: Arc::new(DisseminationStats::default()),
            resend_interval: Duration::from_secs(600),
            max_resends: 0,
            retry_interval: Duration::from_secs(600),
        };
        let (events, events_rx) = mpsc::channel(8);
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(waiter.run(events_rx, shutdown));

        let info = BatchInfo {
            author: keys[0].public(),
            seq: 1,
            digest: Hash32::digest(b"ordo/test/batch\0", b"one"),
            num_txs: 1,
            bytes: 100,
            gas: 0,
        };
        let unproven = Arc::new(AtomicU64::new(0));
        let slot = PendingSlot::new(
            Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            1,
            unproven.clone(),
        );
        events
            .send(QuorumEvent::Own {
                info,
                own_ack: BatchAck::sign(CHAIN, info, &keys[0]),
                created: Instant::now(),
                permit: slot,
                unsent: Vec::new(),
                wire: Arc::new(Vec::new()),
            })
            .await
            .unwrap();
        // Validator 1's acknowledgement carries a signature by another key: with the
        // author's own it would make f + 1, so a proof formed now would not verify.
        let mut forged = BatchAck::sign(CHAIN, info, &keys[3]);
        forged.signer = keys[1].public();
        events
            .send(QuorumEvent::Ack(keys[1].public(), forged))
            .await
            .unwrap();
        events
            .send(QuorumEvent::Ack(
                keys[2].public(),
                BatchAck::sign(CHAIN, info, &keys[2]),
            ))
            .await
            .unwrap();
        let available = tokio::time::timeout(Duration::from_secs(30), proofs.recv())
            .await
            .expect("a proof forms from the two valid acknowledgements")
            .unwrap();
        available.proof.verify(&committee).unwrap();
        let signers: HashSet<PublicKey> = available.proof.signers().copied().collect();
        assert_eq!(signers, HashSet::from([keys[0].public(), keys[2].public()]));
        // Its item stays counted as unproven until the receiver lets go of it.
        assert_eq!(unproven.load(Ordering::Relaxed), 1);
        drop(available);
        assert_eq!(unproven.load(Ordering::Relaxed), 0);
    }
}
