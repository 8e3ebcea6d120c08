//! Batch dissemination: the wiring of batch maker, receiver, quorum waiter and sync.
//!
//! ```text
//! mempool ─▶ BatchMaker ────────┬─▶ disseminate ─┬─▶ store (own batch: verified at ingress)
//! opaque payloads ─▶ PayloadMaker ┘                ├─▶ QuorumWaiter (own ack) ─▶ proofs out
//!                                                  └─▶ broadcast to every validator
//! network batches in ─▶ receive ─┬─ Batch: verify all signatures (bulk pool), store, ack
//!                                └─ Ack:   QuorumWaiter
//! network batch requests in ─▶ serve from store;   fetch(proof) ─▶ ask signers, verify, store
//! ```
//!
//! Invariant: this validator signs an acknowledgement only for a batch in its store, and a
//! batch enters the store only after every signature in it verified here (or it is our own
//! batch). A stored batch is acknowledged again on request without verifying it again.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::counter;
use ordo_types::{ChainId, Hash32, KeyPair, PublicKey, SignedTransaction};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::batch::{Batch, BatchAck, BatchBody, BatchInfo, BatchMessage, ProofOfAvailability};
use crate::batch_maker::{BatchLimits, BatchMaker, BatchSink};
use crate::batch_store::{BatchStore, BatchStoreConfig};
use crate::error::Error;
use crate::mempool::Mempool;
use crate::network::{InboundRequest, NetworkHandle};
use crate::payload_maker::{split, Chunk, OpaqueLimits, PayloadMaker, PAYLOAD_OVERHEAD};
use crate::protocol::{Request, Response, MAX_BATCH_MESSAGE_BYTES};
use crate::quorum_waiter::{AvailableBatch, PendingSlot, QuorumEvent, QuorumWaiter, Unproven};
use crate::stats::{DisseminationSnapshot, DisseminationStats};
use crate::verify::KeyCache;

/// Signatures verified together: large enough to amortise batch verification (about
/// 18.5 µs a signature in chunks of 128, 16 µs in chunks of 512 on the reference
/// machine). One batch's chunks run one after the other on one bulk thread: batches
/// arriving together (`max_concurrent_verifications` at once) keep the cores busy, and
/// spreading one batch over the cores took a pool that spins when idle.
const VERIFY_CHUNK: usize = 512;

/// How long a fetch waits for a batch that is being verified after a push.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct DisseminationConfig {
    /// A batch is cut when its transactions reach this many encoded bytes...
    pub max_batch_bytes: usize,
    /// ...or this many transactions...
    pub max_batch_txs: usize,
    /// A batch holds at most this much EVM gas (the sum of its transactions' gas limits),
    /// so that one batch fits in a block: the chain's block gas limit.
    pub max_batch_gas: u64,
    /// ...or its oldest transaction has waited this long.
    pub max_batch_delay: Duration,
    /// Own batches awaiting a proof of availability; more wait (back-pressure).
    pub max_pending_batches: usize,
    /// A batch that found a validator's queue full is offered to it again this often.
    pub retry_interval: Duration,
    /// A batch is pushed again to the validators that have not acknowledged it after
    /// this long (a connection lost with the batch in flight)...
    pub resend_interval: Duration,
    /// ...up to this many times once it has its proof (without limit before).
    pub max_resends: u32,
    /// Received batches verified at the same time.
    pub max_concurrent_verifications: usize,
    /// Acknowledge opaque batches, and make them from submitted payloads (ordering-only
    /// networks; the dissemination benchmark makes its own).
    pub accept_opaque: bool,
    /// The least time between two opaque batches that are not full
    /// ([`Dissemination::submit_opaque`]): below one submission an interval nothing
    /// waits; above it, submissions share batches instead of making one each.
    pub opaque_batch_interval: Duration,
    pub proof_queue: usize,
    pub store: BatchStoreConfig,
    /// Deliberate misbehaviour for fault tests (off by default).
    #[cfg(feature = "byzantine")]
    pub byzantine: crate::byzantine::ByzantineBatches,
}

impl Default for DisseminationConfig {
    fn default() -> Self {
        DisseminationConfig {
            max_batch_bytes: 500_000,
            max_batch_txs: 10_000,
            max_batch_gas: u64::MAX,
            max_batch_delay: Duration::from_millis(20),
            max_pending_batches: 64,
            retry_interval: Duration::from_millis(50),
            resend_interval: Duration::from_secs(10),
            max_resends: 3,
            max_concurrent_verifications: 2 * ordo_types::bulk::threads(),
            accept_opaque: false,
            // Under a round (12 to 13 ms at 50,000 payloads/s on 2 cores): 4 validators then
            // make about 400 batches a second there instead of 1,500 (one per submission);
            // 5 ms gave a higher latency, 20 ms about the same (README, Open loop).
            opaque_batch_interval: Duration::from_millis(10),
            proof_queue: 1024,
            store: BatchStoreConfig::default(),
            #[cfg(feature = "byzantine")]
            byzantine: Default::default(),
        }
    }
}

/// What the dissemination layer hands the node.
pub struct DisseminationOutputs {
    /// Proofs of availability of this validator's batches, for the leader's blocks.
    pub proofs: mpsc::Receiver<AvailableBatch>,
    /// Hashes of transactions dropped from the mempool because they expired.
    pub expired: mpsc::Receiver<Vec<Hash32>>,
    /// Other validators' batches as they are verified and stored after their author's
    /// push, so that any leader can propose them. Not those fetched on request (whose
    /// author field nobody vouches for), nor a push of one fetched before. Dropped when
    /// the node falls behind reading them (`ordo_network_stored_notices_dropped_total`).
    pub stored: mpsc::Receiver<BatchInfo>,
    /// Each dissemination task's end, as it ends. Before [`Dissemination::shutdown`] any
    /// end is a failure (the tasks run for the life of the validator), which the node's
    /// supervisor reads here.
    pub ended: mpsc::UnboundedReceiver<TaskEnded>,
}

/// A dissemination task that ended: which, and its panic's message if it panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnded {
    pub task: &'static str,
    pub panic: Option<String>,
}

/// Runs `task` and reports its end, a panic included, on `ended`; the handle returned
/// resolves after the report.
fn spawn_reported(
    name: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
    ended: &mpsc::UnboundedSender<TaskEnded>,
) -> JoinHandle<()> {
    #[cfg(feature = "byzantine")]
    let task = crate::byzantine::panic_hook(name, task);
    let task = tokio::spawn(task);
    let ended = ended.clone();
    tokio::spawn(async move {
        let panic = match task.await {
            Ok(()) => None,
            Err(e) => Some(match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string()),
                Err(_) => "cancelled".to_string(),
            }),
        };
        // Nobody listening (the node is gone) is fine.
        let _ = ended.send(TaskEnded { task: name, panic });
    })
}

/// A cloneable handle on a validator's dissemination layer.
#[derive(Clone)]
pub struct Dissemination {
    inner: Arc<DInner>,
}

struct DInner {
    config: DisseminationConfig,
    key: KeyPair,
    chain_id: ChainId,
    network: NetworkHandle,
    store: Arc<BatchStore>,
    mempool: Arc<Mempool>,
    pending: Arc<Semaphore>,
    /// Items (transactions or payloads) of own batches made and not proven yet, and opaque
    /// payloads queued for a batch.
    unproven: Arc<AtomicU64>,
    first_seq: u64,
    next_seq: AtomicU64,
    quorum: mpsc::Sender<QuorumEvent>,
    stored: mpsc::Sender<BatchInfo>,
    stats: Arc<DisseminationStats>,
    in_flight: Mutex<HashSet<Hash32>>,
    keys: Arc<KeyCache>,
    verifications: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Submitted opaque payloads, to the payload maker (when opaque batches are accepted).
    opaque: Option<mpsc::Sender<Chunk>>,
}

/// Submissions' chunks waiting for the payload maker. Their payloads count as unproven
/// while they wait, so admission control bounds what this queue holds in items; this
/// bounds it in chunks (each at most half a batch message) when a caller does not.
const OPAQUE_QUEUE: usize = 1_024;

/// Answers, one per chunk, that a submission's opaque payloads are in batches.
pub struct OpaqueReceipt {
    answers: Vec<oneshot::Receiver<Result<(), String>>>,
}

impl OpaqueReceipt {
    /// Waits until every chunk is in a batch on its way.
    pub async fn batched(self) -> Result<(), Error> {
        for answer in self.answers {
            answer
                .await
                .map_err(|_| Error::Shutdown)?
                .map_err(Error::NotBatched)?;
        }
        Ok(())
    }
}

impl Dissemination {
    /// Starts the batch maker, receiver, quorum waiter and batch server of one validator,
    /// fed by the network's `batches` and `batch_requests` channels (see [`crate::Inbound`]).
    /// `key` is the validator's consensus key; it signs acknowledgements.
    pub fn spawn(
        config: DisseminationConfig,
        key: KeyPair,
        network: NetworkHandle,
        batches: mpsc::Receiver<(PublicKey, BatchMessage)>,
        batch_requests: mpsc::Receiver<InboundRequest>,
        mempool: Arc<Mempool>,
    ) -> (Dissemination, DisseminationOutputs) {
        let chain_id = network.committee().chain_id();
        let (quorum_tx, quorum_rx) = mpsc::channel(4096);
        let (proofs_tx, proofs_rx) = mpsc::channel(config.proof_queue);
        let (expired_tx, expired_rx) = mpsc::channel(1024);
        let (stored_tx, stored_rx) = mpsc::channel(config.proof_queue);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let stats = Arc::new(DisseminationStats::default());
        let (opaque_tx, opaque_rx) = mpsc::channel(OPAQUE_QUEUE);
        let opaque_tx = config.accept_opaque.then_some(opaque_tx);
        // Sequence numbers start at the clock so that a restarted author does not reuse
        // one for different contents.
        let first_seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let d = Dissemination {
            inner: Arc::new(DInner {
                store: Arc::new(BatchStore::new(config.store.clone())),
                pending: Arc::new(Semaphore::new(config.max_pending_batches)),
                unproven: Arc::new(AtomicU64::new(0)),
                verifications: Arc::new(Semaphore::new(config.max_concurrent_verifications.max(1))),
                config,
                key,
                chain_id,
                network: network.clone(),
                mempool: mempool.clone(),
                first_seq,
                next_seq: AtomicU64::new(first_seq),
                quorum: quorum_tx,
                stored: stored_tx,
                stats: stats.clone(),
                in_flight: Mutex::new(HashSet::new()),
                keys: Arc::new(KeyCache::default()),
                shutdown: shutdown_tx,
                tasks: Mutex::new(Vec::new()),
                opaque: opaque_tx,
            }),
        };
        let waiter = QuorumWaiter {
            committee: network.committee().clone(),
            network,
            store: d.inner.store.clone(),
            max_resends: d.inner.config.max_resends,
            retry_interval: d.inner.config.retry_interval,
            proofs: proofs_tx,
            stats,
            resend_interval: d.inner.config.resend_interval,
        };
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let ended = &ended_tx;
        let mut tasks = vec![
            spawn_reported(
                "quorum-waiter",
                waiter.run(quorum_rx, shutdown_rx.clone()),
                ended,
            ),
            spawn_reported(
                "batch-receiver",
                d.clone().receive(batches, shutdown_rx.clone()),
                ended,
            ),
            spawn_reported(
                "batch-server",
                d.clone().serve(batch_requests, shutdown_rx.clone()),
                ended,
            ),
            spawn_reported(
                "batch-maker",
                BatchMaker {
                    limits: BatchLimits {
                        max_bytes: d.inner.config.max_batch_bytes,
                        max_txs: d.inner.config.max_batch_txs,
                        max_gas: d.inner.config.max_batch_gas,
                        max_delay: d.inner.config.max_batch_delay,
                    },
                    sink: d.clone(),
                    mempool,
                    expired: expired_tx,
                }
                .run(shutdown_rx.clone()),
                ended,
            ),
        ];
        if d.inner.opaque.is_some() {
            let limits = d.opaque_limits();
            let maker = PayloadMaker {
                sink: d.clone(),
                limits,
            };
            tasks.push(spawn_reported(
                "payload-maker",
                maker.run(opaque_rx, shutdown_rx),
                ended,
            ));
        }
        *d.inner.tasks.lock() = tasks;
        let outputs = DisseminationOutputs {
            proofs: proofs_rx,
            expired: expired_rx,
            stored: stored_rx,
            ended: ended_rx,
        };
        (d, outputs)
    }

    pub fn store(&self) -> &Arc<BatchStore> {
        &self.inner.store
    }

    /// The sequence number of this process's first batch; later ones count up from it.
    pub fn first_seq(&self) -> u64 {
        self.inner.first_seq
    }

    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.inner.mempool
    }

    pub fn network(&self) -> &NetworkHandle {
        &self.inner.network
    }

    pub fn config(&self) -> &DisseminationConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> DisseminationSnapshot {
        self.inner.stats.snapshot()
    }

    /// Items (transactions or payloads) in this validator's batches that have no proof of
    /// availability yet, and opaque payloads queued for a batch: part of what its ingress
    /// has admitted and not seen ordered.
    pub fn unproven_items(&self) -> u64 {
        self.inner.unproven.load(Ordering::Relaxed)
    }

    /// Makes a batch of `body`, stores it, and pushes it to every validator. Waits while
    /// too many of our batches lack a proof of availability. The transactions must have
    /// been verified by this validator (the mempool does so on insertion).
    pub async fn disseminate(&self, body: BatchBody) -> Result<BatchInfo, Error> {
        let inner = &self.inner;
        let permit = inner
            .pending
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Shutdown)?;
        let permit = PendingSlot::new(permit, body.len() as u64, inner.unproven.clone());
        let batch = Batch {
            author: inner.key.public(),
            seq: inner.next_seq.fetch_add(1, Ordering::Relaxed),
            body,
        };
        let created = Instant::now();
        let (bytes, info) = batch.encode_with_info();
        let wire = Arc::new(batch_message_wire(&bytes));
        #[cfg(feature = "byzantine")]
        if inner.config.byzantine.invalid_signatures {
            if let Some(bad) = crate::byzantine::corrupted(&batch) {
                let (bad_bytes, _) = bad.encode_with_info();
                self.push_to_all(&Arc::new(batch_message_wire(&bad_bytes)));
            }
        }
        inner.store.insert_own(info, Arc::new(batch));
        let own_ack = BatchAck::sign(inner.chain_id, info, &inner.key);
        inner
            .quorum
            .send(QuorumEvent::Own {
                info,
                own_ack,
                created,
                permit,
                unsent: self.push_to_all(&wire),
                wire,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        inner.stats.batch_created();
        counter!("ordo_network_batches_created_total").increment(1);
        debug!(batch = %info, "batch disseminated");
        Ok(info)
    }

    /// Queues one submission's opaque payloads for batches, which they share with other
    /// submissions' (see [`DisseminationConfig::opaque_batch_interval`]), split into
    /// chunks that each fit a batch. From here until their batch is made they count as
    /// unproven items ([`Dissemination::unproven_items`]), whether or not the caller
    /// waits on the receipt. If dissemination fails (it is shutting down), every
    /// submission sharing the batch is told so.
    pub async fn submit_opaque(&self, payloads: Vec<Vec<u8>>) -> Result<OpaqueReceipt, Error> {
        let Some(maker) = &self.inner.opaque else {
            return Err(Error::InvalidBatch(
                "opaque batches are not accepted".into(),
            ));
        };
        let limits = self.opaque_limits();
        let chunks = split(payloads, &limits).map_err(|len| Error::TooLarge {
            len,
            max: limits.max_bytes - PAYLOAD_OVERHEAD,
        })?;
        let mut answers = Vec::with_capacity(chunks.len());
        for payloads in chunks {
            let (done, answer) = oneshot::channel();
            let queued = Unproven::new(payloads.len() as u64, self.inner.unproven.clone());
            maker
                .send(Chunk {
                    payloads,
                    done,
                    queued,
                })
                .await
                .map_err(|_| Error::Shutdown)?;
            answers.push(answer);
        }
        Ok(OpaqueReceipt { answers })
    }

    fn opaque_limits(&self) -> OpaqueLimits {
        let config = &self.inner.config;
        OpaqueLimits {
            max_bytes: MAX_BATCH_MESSAGE_BYTES / 2,
            cut_bytes: config.max_batch_bytes.min(MAX_BATCH_MESSAGE_BYTES / 2),
            max_payloads: config.max_batch_txs.max(1),
            interval: config.opaque_batch_interval,
        }
    }

    /// Queues `wire` for every other validator; returns those whose queue was full.
    fn push_to_all(&self, wire: &Arc<Vec<u8>>) -> Vec<PublicKey> {
        let me = self.inner.key.public();
        #[cfg(feature = "byzantine")]
        let recipients = if self.inner.config.byzantine.withhold {
            1
        } else {
            usize::MAX
        };
        #[cfg(not(feature = "byzantine"))]
        let recipients = usize::MAX;
        self.inner
            .network
            .committee()
            .validators()
            .iter()
            .map(|v| v.consensus_key)
            .filter(|k| *k != me)
            .take(recipients)
            .filter(|k| {
                matches!(
                    self.inner.network.send_batch_bytes(k, wire.clone()),
                    Err(Error::QueueFull { .. })
                )
            })
            .collect()
    }

    /// The batch a proof names: from the store, or else fetched from the validators that
    /// acknowledged it (then from any other), verified and stored.
    pub async fn fetch(&self, proof: &ProofOfAvailability) -> Result<Arc<Batch>, Error> {
        let digest = proof.info.digest;
        if self.inner.in_flight.lock().contains(&digest) {
            // Being verified after a push: wait for it rather than verify it twice.
            self.inner.store.wait_for(&digest, IN_FLIGHT_WAIT).await;
        }
        if let Some(batch) = self.inner.store.get(&digest) {
            return Ok(batch);
        }
        let me = self.inner.key.public();
        let committee = self.inner.network.committee();
        let mut candidates: Vec<PublicKey> =
            proof.signers().copied().filter(|k| *k != me).collect();
        for v in committee.validators() {
            if v.consensus_key != me && !candidates.contains(&v.consensus_key) {
                candidates.push(v.consensus_key);
            }
        }
        for peer in candidates {
            let batch = match self
                .inner
                .network
                .request(&peer, &Request::Batch(digest))
                .await
            {
                Ok(Response::Batch(Some(batch))) => batch,
                Ok(_) => continue,
                Err(e) => {
                    debug!(%peer, error = %e, "batch request failed");
                    continue;
                }
            };
            let (_, info) = batch.encode_with_info();
            if info != proof.info {
                warn!(%peer, "answered a batch request with another batch");
                continue;
            }
            if !self.inner.in_flight.lock().insert(digest) {
                // A push of the same batch is being verified meanwhile: use it rather than
                // verify it twice.
                if self.inner.store.wait_for(&digest, IN_FLIGHT_WAIT).await {
                    if let Some(batch) = self.inner.store.get(&digest) {
                        return Ok(batch);
                    }
                }
                continue;
            }
            let batch = Arc::new(batch);
            let verified = self.verify(batch.clone()).await;
            let stored = verified
                .is_ok()
                .then(|| self.inner.store.insert(info, batch.clone()));
            self.inner.in_flight.lock().remove(&digest);
            if let Err(e) = verified {
                warn!(%peer, error = %e, "fetched batch does not verify");
                continue;
            }
            if let Some(Err(e)) = stored {
                return Err(e);
            }
            self.inner.stats.batch_fetched();
            counter!("ordo_network_batches_fetched_total").increment(1);
            return Ok(batch);
        }
        Err(Error::BatchUnavailable(digest))
    }

    /// Stops the dissemination tasks (the network is stopped separately).
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Verifies every transaction signature of `batch` on the bulk-work pool; an opaque
    /// batch has none, and is answered here.
    async fn verify(&self, batch: Arc<Batch>) -> Result<(), Error> {
        if let BatchBody::Opaque(_) = &batch.body {
            return if self.inner.config.accept_opaque {
                Ok(())
            } else {
                Err(Error::InvalidBatch(
                    "opaque batches are not accepted".into(),
                ))
            };
        }
        let chain_id = self.inner.chain_id;
        let stats = self.inner.stats.clone();
        let keys = self.inner.keys.clone();
        let (tx, rx) = oneshot::channel();
        ordo_types::bulk::spawn(move || {
            if let BatchBody::Transactions(txs) = &batch.body {
                let result = verify_transactions(txs, chain_id, &keys);
                stats.signatures_verified(txs.len());
                let _ = tx.send(result);
            }
        });
        rx.await
            .unwrap_or_else(|_| Err(Error::InvalidBatch("its signature check panicked".into())))
    }

    async fn receive(
        self,
        mut batches: mpsc::Receiver<(PublicKey, BatchMessage)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let (from, message) = tokio::select! {
                m = batches.recv() => match m { Some(m) => m, None => break },
                _ = shutdown.changed() => break,
            };
            match message {
                BatchMessage::Ack(ack) => {
                    if self
                        .inner
                        .quorum
                        .send(QuorumEvent::Ack(from, ack))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                BatchMessage::Batch(batch) => {
                    let Ok(permit) = self.inner.verifications.clone().acquire_owned().await else {
                        break;
                    };
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.on_batch(from, batch).await;
                        drop(permit);
                    });
                }
            }
        }
    }

    async fn on_batch(&self, from: PublicKey, batch: Batch) {
        let inner = &self.inner;
        if batch.author != from {
            warn!(%from, "pushed a batch authored by someone else");
            inner.stats.rejected("wrong_author");
            return;
        }
        let (_, info) = batch.encode_with_info();
        if inner.store.contains(&info.digest) {
            // Already verified here: acknowledge again (the author may have missed it).
            self.acknowledge(info);
            return;
        }
        if !inner.in_flight.lock().insert(info.digest) {
            return;
        }
        let batch = Arc::new(batch);
        let verified = self.verify(batch.clone()).await;
        let outcome = verified.and_then(|()| inner.store.insert(info, batch));
        inner.in_flight.lock().remove(&info.digest);
        match outcome {
            Ok(new) => {
                self.acknowledge(info);
                if new {
                    if let Err(mpsc::error::TrySendError::Full(_)) = inner.stored.try_send(info) {
                        counter!("ordo_network_stored_notices_dropped_total").increment(1);
                    }
                }
            }
            Err(e @ Error::StoreFull(_)) => {
                warn!(batch = %info, error = %e, "not acknowledged");
                inner.stats.rejected("store_full");
            }
            Err(e) => {
                warn!(batch = %info, %from, error = %e, "batch rejected");
                inner.stats.rejected("invalid");
            }
        }
    }

    fn acknowledge(&self, info: BatchInfo) {
        let inner = &self.inner;
        let ack = BatchAck::sign(inner.chain_id, info, &inner.key);
        if inner
            .network
            .send_batch_message(&info.author, &BatchMessage::Ack(ack))
            .is_ok()
        {
            inner.stats.batch_acknowledged();
            counter!("ordo_network_batches_acknowledged_total").increment(1);
        }
    }

    async fn serve(
        self,
        mut requests: mpsc::Receiver<InboundRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let request = tokio::select! {
                r = requests.recv() => match r { Some(r) => r, None => break },
                _ = shutdown.changed() => break,
            };
            let response = match &request.request {
                #[cfg(feature = "byzantine")]
                Request::Batch(digest) if self.inner.config.byzantine.withhold => {
                    warn!(batch = %digest.short(), from = %request.from, "BYZANTINE: withholding a batch on purpose");
                    Response::Batch(None)
                }
                Request::Batch(digest) => {
                    Response::Batch(self.inner.store.get(digest).map(|b| (*b).clone()))
                }
                Request::Opaque(_) => Response::Busy,
            };
            request.respond(response);
        }
    }
}

impl BatchSink for Dissemination {
    fn disseminate(
        &self,
        body: BatchBody,
    ) -> impl Future<Output = Result<BatchInfo, Error>> + Send {
        Dissemination::disseminate(self, body)
    }
}

/// The batch-protocol frame of a batch whose canonical bytes are `batch_bytes`, without
/// encoding the batch a second time: the enum's variant index, then the batch.
fn batch_message_wire(batch_bytes: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(batch_bytes.len() + 4);
    wire.extend_from_slice(&0u32.to_le_bytes());
    wire.extend_from_slice(batch_bytes);
    wire
}

/// Chain ids and signatures of every transaction; signatures in chunks, on the caller's
/// thread.
pub(crate) fn verify_transactions(
    txs: &[SignedTransaction],
    chain_id: ChainId,
    keys: &KeyCache,
) -> Result<(), Error> {
    if let Some(t) = txs.iter().find(|t| t.chain_id() != chain_id) {
        return Err(Error::WrongChain {
            expected: chain_id,
            got: t.chain_id(),
        });
    }
    txs.chunks(VERIFY_CHUNK)
        .try_for_each(|chunk| keys.verify_many(chunk).map_err(|_| Error::BadSignature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::codec;

    #[test]
    fn wire_frame_equals_the_encoded_message() {
        let batch = Batch {
            author: KeyPair::from_seed([1; 32]).public(),
            seq: 9,
            body: BatchBody::Opaque(vec![vec![1, 2, 3]]),
        };
        let (bytes, _) = batch.encode_with_info();
        assert_eq!(
            batch_message_wire(&bytes),
            codec::encode(&BatchMessage::Batch(batch))
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_or_panics_is_reported_by_name() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        spawn_reported("returns", async {}, &tx).await.unwrap();
        assert_eq!(
            rx.recv().await,
            Some(TaskEnded {
                task: "returns",
                panic: None
            })
        );
        spawn_reported("panics", async { panic!("a bug in the task") }, &tx)
            .await
            .unwrap();
        let ended = rx.recv().await.unwrap();
        assert_eq!(ended.task, "panics");
        assert_eq!(ended.panic.as_deref(), Some("a bug in the task"));
        let n = 7;
        spawn_reported("formats", async move { panic!("bad input {n}") }, &tx)
            .await
            .unwrap();
        assert_eq!(
            rx.recv().await.unwrap().panic.as_deref(),
            Some("bad input 7")
        );
    }
}
