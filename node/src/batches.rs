//! Where the node gets a batch it needs, and how it serves batches to peers.
//!
//! Lookup order: the dissemination layer's memory store, then RocksDB, then (for a recent
//! block's batch, [`Batches::get_pushed`]) its author's push until [`PUSH_GRACE`] after
//! the proposal, then the peers (the block's author first), through the node's own
//! request on the sync protocol so that peers can answer from RocksDB as well as from
//! memory. A batch from a peer is accepted only if its digest is the one asked for and
//! every signature in it verifies; it is then stored. One fetch of a digest runs at a
//! time: a second asker waits for the first's answer, so a fetched batch is checked once.
//!
//! What consensus learns about payload, and in what order, is not decided here but by
//! [`crate::payload`], which looks batches up through [`Batches::get_pushed`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use ordo_network::{
    Batch, BatchBody, BatchStore, InboundRequest, NetworkHandle, Request, Response,
    MAX_BATCH_MESSAGE_BYTES,
};
use ordo_storage::Storage;
use ordo_types::{codec, Hash32, PublicKey, SignedTransaction};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::block_sync::{BlockAsk, BlockSync};
use crate::snapshots::{SnapshotAsk, SnapshotServer};
use crate::supervisor::TaskError;
use crate::wire::{NodeRequest, NodeResponse};

/// How long after a block's proposal its batches' pushes are waited for before they are
/// fetched from peers. A batch's proof needs f + 1 acknowledgements, so up to 2f other
/// validators may still be receiving or checking its push when it is proposed (3 to 5 ms
/// later at the median, up to about 270 ms at 8,000 transfers/s on 2 cores); a push that
/// has not come by then most likely never will (a full queue, a lost connection).
pub const PUSH_GRACE: Duration = Duration::from_millis(300);

/// When the pushes of a block proposed at `proposed_ms` (its timestamp) stop being
/// waited for: [`PUSH_GRACE`] after the proposal, and never later than that from now (a
/// timestamp ahead of this clock waits no longer than a fresh proposal's; a caller that
/// meets many such blocks in a row bounds their waits together, see the fetch stage).
pub fn push_deadline(proposed_ms: u64) -> Instant {
    let since = Duration::from_millis(ordo_types::now_ms().saturating_sub(proposed_ms));
    Instant::now() + PUSH_GRACE.saturating_sub(since)
}

pub struct Batches {
    store: Arc<BatchStore>,
    storage: Storage,
    network: NetworkHandle,
    chain_id: u64,
    /// Ordering-only networks carry opaque payloads, which have nothing to verify.
    ordering_only: bool,
    me: Option<PublicKey>,
    /// Fetches from peers in flight, by digest (see the module note).
    fetching: OneAtATime<Hash32, Option<Arc<Batch>>>,
    /// Byzantine: answer every batch request with "not here" (fault tests only).
    #[cfg(feature = "byzantine")]
    withhold: std::sync::atomic::AtomicBool,
}

/// One run of a job at a time per key: whoever asks for a key while its job runs waits
/// for that run's answer instead of running it again.
struct OneAtATime<K, V> {
    /// Each running job's answer, `None` until it comes.
    running: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

impl<K, V> Default for OneAtATime<K, V> {
    fn default() -> Self {
        OneAtATime {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Copy, V: Clone> OneAtATime<K, V> {
    async fn run<F: Future<Output = V>>(&self, key: K, job: impl Fn() -> F) -> V {
        loop {
            let mine = {
                let mut running = self.running.lock();
                match running.get(&key) {
                    Some(answer) => Err(answer.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        running.insert(key, rx);
                        Ok(Running {
                            running: &self.running,
                            key,
                            tx,
                        })
                    }
                }
            };
            let mut answer = match mine {
                Ok(run) => {
                    let value = job().await;
                    run.tx.send_replace(Some(value.clone()));
                    return value;
                }
                Err(answer) => answer,
            };
            // An error: the run was dropped unanswered (its caller went away); run it
            // here instead.
            let answered = answer
                .wait_for(Option::is_some)
                .await
                .map(|value| value.clone());
            if let Ok(Some(value)) = answered {
                return value;
            }
        }
    }
}

/// A job running: leaves the map however it ends, answered or dropped.
struct Running<'m, K: Hash + Eq, V> {
    running: &'m Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
    key: K,
    tx: watch::Sender<Option<V>>,
}

impl<K: Hash + Eq, V> Drop for Running<'_, K, V> {
    fn drop(&mut self) {
        self.running.lock().remove(&self.key);
    }
}

/// Where a batch came from.
pub enum Source {
    Memory,
    Disk,
    Peer,
}

impl Batches {
    pub fn new(
        store: Arc<BatchStore>,
        storage: Storage,
        network: NetworkHandle,
        ordering_only: bool,
    ) -> Arc<Self> {
        Arc::new(Batches {
            chain_id: network.committee().chain_id(),
            ordering_only,
            me: network.local_key(),
            store,
            storage,
            network,
            fetching: OneAtATime::default(),
            #[cfg(feature = "byzantine")]
            withhold: Default::default(),
        })
    }

    #[cfg(feature = "byzantine")]
    pub fn set_withhold(&self, on: bool) {
        self.withhold
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The consensus key of validator `index` (genesis order).
    pub fn validator_key(&self, index: u16) -> Option<PublicKey> {
        self.network
            .committee()
            .get(usize::from(index))
            .map(|v| v.consensus_key)
    }

    /// The batch `digest`, from memory, disk or peers; `None` if nobody had it.
    pub async fn get(
        &self,
        digest: &Hash32,
        prefer: Option<PublicKey>,
    ) -> Option<(Arc<Batch>, Source)> {
        match self.local(digest) {
            Some(found) => Some(found),
            None => self.fetch(digest, prefer).await,
        }
    }

    /// The batch `digest` of a recent block, whose author sent its push to every validator
    /// before proposing it: from memory or disk, else from its push if that arrives
    /// before `push_until`, else from peers. Fetching a batch whose push is on its way
    /// costs a round trip and a second check of every signature in it, and delays what
    /// waits for it by both.
    pub async fn get_pushed(
        &self,
        digest: &Hash32,
        prefer: Option<PublicKey>,
        push_until: Instant,
    ) -> Option<(Arc<Batch>, Source)> {
        if let Some(found) = self.local(digest) {
            return Some(found);
        }
        let grace = push_until.saturating_duration_since(Instant::now());
        if !grace.is_zero() && self.store.wait_for(digest, grace).await {
            metrics::counter!("ordo_node_batch_pushes_awaited_total").increment(1);
        }
        match self.store.get(digest) {
            Some(b) => Some((b, Source::Memory)),
            None => self.fetch(digest, prefer).await,
        }
    }

    /// The batch `digest` from this validator's memory or disk.
    fn local(&self, digest: &Hash32) -> Option<(Arc<Batch>, Source)> {
        if let Some(b) = self.store.get(digest) {
            return Some((b, Source::Memory));
        }
        match self.storage.batch(digest) {
            Ok(Some(bytes)) => match codec::decode::<Batch, MAX_BATCH_MESSAGE_BYTES>(&bytes) {
                Ok(b) if b.digest() == *digest => return Some((Arc::new(b), Source::Disk)),
                _ => warn!(batch = %digest.short(), "stored batch does not decode"),
            },
            Ok(None) => {}
            Err(e) => warn!(error = %e, "reading a batch failed"),
        }
        None
    }

    /// The batch `digest` from peers, fetched once however many ask at a time.
    async fn fetch(
        &self,
        digest: &Hash32,
        prefer: Option<PublicKey>,
    ) -> Option<(Arc<Batch>, Source)> {
        self.fetching
            .run(*digest, || self.fetch_from_peers(digest, prefer))
            .await
            .map(|b| (b, Source::Peer))
    }

    /// The batch `digest` from the first peer that serves it (`prefer` first), checked and
    /// stored in memory.
    async fn fetch_from_peers(
        &self,
        digest: &Hash32,
        prefer: Option<PublicKey>,
    ) -> Option<Arc<Batch>> {
        let mut peers: Vec<PublicKey> = prefer.into_iter().collect();
        for v in self.network.committee().validators() {
            if !peers.contains(&v.consensus_key) {
                peers.push(v.consensus_key);
            }
        }
        peers.retain(|p| Some(*p) != self.me);
        let request = Request::Opaque(NodeRequest::Batch(*digest).encode());
        for peer in peers {
            let bytes = match self.network.request(&peer, &request).await {
                Ok(Response::Opaque(bytes)) => bytes,
                Ok(_) => continue,
                Err(e) => {
                    debug!(%peer, error = %e, "batch request failed");
                    continue;
                }
            };
            let Ok(NodeResponse::Batch(Some(bytes))) = NodeResponse::decode(&bytes) else {
                continue;
            };
            let Ok(batch) = codec::decode::<Batch, MAX_BATCH_MESSAGE_BYTES>(&bytes) else {
                warn!(%peer, "sent a batch that does not decode");
                continue;
            };
            if batch.digest() != *digest {
                warn!(%peer, "answered a batch request with another batch");
                continue;
            }
            let batch = Arc::new(batch);
            if !self.verify(batch.clone()).await {
                warn!(%peer, batch = %digest.short(), "fetched batch does not verify");
                continue;
            }
            let (_, info) = batch.encode_with_info();
            if let Err(e) = self.store.insert(info, batch.clone()) {
                debug!(error = %e, "fetched batch not kept in memory");
            }
            metrics::counter!("ordo_node_batches_fetched_total").increment(1);
            return Some(batch);
        }
        None
    }

    async fn verify(&self, batch: Arc<Batch>) -> bool {
        let chain_id = self.chain_id;
        let ordering_only = self.ordering_only;
        crate::bulk::verify(move || match &batch.body {
            BatchBody::Transactions(txs) => {
                txs.iter().all(|t| t.chain_id() == chain_id)
                    && SignedTransaction::verify_many(txs).is_ok()
            }
            BatchBody::Opaque(_) => ordering_only,
        })
        .await
        .unwrap_or(false)
    }

    /// Answers peers' node requests until the channel closes; block requests go to
    /// the block server.
    pub async fn serve(
        self: Arc<Self>,
        mut requests: mpsc::Receiver<InboundRequest>,
        blocks: BlockSync,
        snapshots: SnapshotServer,
    ) -> Result<(), TaskError> {
        while let Some(request) = requests.recv().await {
            let response = match &request.request {
                Request::Opaque(bytes) => match NodeRequest::decode(bytes) {
                    Ok(NodeRequest::Blocks {
                        block_id,
                        above_round,
                        max,
                    }) => {
                        blocks.serve(
                            request,
                            BlockAsk::Ancestors {
                                block_id,
                                above_round,
                            },
                            max,
                        );
                        continue;
                    }
                    Ok(NodeRequest::CommittedAfter { after, max }) => {
                        blocks.serve(request, BlockAsk::After(after), max);
                        continue;
                    }
                    Ok(NodeRequest::Snapshots) => {
                        snapshots.serve(request, SnapshotAsk::Offers);
                        continue;
                    }
                    Ok(NodeRequest::SnapshotManifest(height)) => {
                        snapshots.serve(request, SnapshotAsk::Manifest(height));
                        continue;
                    }
                    Ok(NodeRequest::SnapshotChunk { height, index }) => {
                        snapshots.serve(request, SnapshotAsk::Chunk { height, index });
                        continue;
                    }
                    #[cfg(feature = "byzantine")]
                    Ok(NodeRequest::Batch(d))
                        if self.withhold.load(std::sync::atomic::Ordering::Relaxed) =>
                    {
                        warn!(batch = %d.short(), from = %request.from, "BYZANTINE: withholding a batch on purpose");
                        Response::Opaque(NodeResponse::Batch(None).encode())
                    }
                    Ok(NodeRequest::Batch(d)) => {
                        let bytes = match self.store.get(&d) {
                            Some(b) => Some(codec::encode(&*b)),
                            None => self.storage.batch(&d).ok().flatten(),
                        };
                        Response::Opaque(NodeResponse::Batch(bytes).encode())
                    }
                    Err(_) => {
                        metrics::counter!("ordo_node_bad_requests_total").increment(1);
                        Response::Busy
                    }
                },
                #[cfg(feature = "byzantine")]
                Request::Batch(_) if self.withhold.load(std::sync::atomic::Ordering::Relaxed) => {
                    Response::Batch(None)
                }
                Request::Batch(d) => Response::Batch(self.store.get(d).map(|b| (*b).clone())),
            };
            request.respond(response);
        }
        Err(TaskError::closed("the network's requests"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_network::{
        network_keypair_from_seed, network_public_key, BatchStoreConfig, Committee, NetworkConfig,
        ValidatorInfo,
    };
    use ordo_storage::StorageConfig;
    use ordo_types::KeyPair;

    /// A validator alone in its committee: no peer can serve it anything, so whatever
    /// `get_pushed` finds came from its own store.
    async fn lone_validator(dir: &std::path::Path) -> Arc<Batches> {
        let key = KeyPair::from_seed([7; 32]);
        let net = network_keypair_from_seed([8; 32]);
        let me = ValidatorInfo::new(
            key.public(),
            network_public_key(&net).unwrap(),
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        )
        .unwrap();
        let committee = Arc::new(Committee::new(1, vec![me]).unwrap());
        let config = NetworkConfig::new(net, "/ip4/127.0.0.1/tcp/0".parse().unwrap(), committee);
        let (network, _inbound) = ordo_network::start(config).await.unwrap();
        let (storage, _) = Storage::open(dir, StorageConfig::default()).unwrap();
        let store = Arc::new(BatchStore::new(BatchStoreConfig::default()));
        Batches::new(store, storage, network, true)
    }

    const WAIT: Duration = Duration::from_secs(10);

    fn opaque_batch() -> (Arc<Batch>, ordo_network::BatchInfo) {
        let batch = Arc::new(Batch {
            author: KeyPair::from_seed([9; 32]).public(),
            seq: 1,
            body: BatchBody::Opaque(vec![vec![1; 64]]),
        });
        let (_, info) = batch.encode_with_info();
        (batch, info)
    }

    #[tokio::test]
    async fn a_committed_batch_whose_push_is_on_its_way_is_taken_from_the_push() {
        let dir = tempfile::tempdir().unwrap();
        let batches = lone_validator(dir.path()).await;
        let (batch, info) = opaque_batch();
        // Asked now, nobody has it: the fetch stage used to ask the peers at once.
        assert!(batches.get(&info.digest, None).await.is_none());
        let store = batches.store.clone();
        let pushed = batch.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            store.insert(info, pushed).unwrap();
        });
        let found = batches
            .get_pushed(&info.digest, None, push_deadline(ordo_types::now_ms()))
            .await;
        assert!(matches!(found, Some((b, Source::Memory)) if b.digest() == info.digest));
    }

    #[tokio::test]
    async fn a_push_is_waited_for_until_a_grace_after_the_proposal_and_no_longer() {
        let now = Instant::now();
        let now_ms = ordo_types::now_ms();
        assert!(
            push_deadline(now_ms.saturating_sub(1_000)) <= Instant::now(),
            "too old"
        );
        let fresh = push_deadline(now_ms);
        assert!(fresh >= now + PUSH_GRACE - Duration::from_millis(5));
        assert!(fresh <= Instant::now() + PUSH_GRACE);
        let ahead = push_deadline(now_ms + 60_000);
        assert!(
            ahead <= Instant::now() + PUSH_GRACE,
            "a timestamp ahead waits a grace"
        );
        // A block past its grace is not waited for: a push that comes once the lookup
        // yields is not seen (it would be, had the lookup waited), so the batch is missing.
        let dir = tempfile::tempdir().unwrap();
        let batches = lone_validator(dir.path()).await;
        let (batch, info) = opaque_batch();
        let store = batches.store.clone();
        tokio::spawn(async move {
            store.insert(info, batch).unwrap();
        });
        let deadline = push_deadline(now_ms.saturating_sub(1_000));
        assert!(batches
            .get_pushed(&info.digest, None, deadline)
            .await
            .is_none());
        assert!(batches.store.wait_for(&info.digest, WAIT).await, "pushed");
    }

    #[tokio::test]
    async fn a_job_asked_for_while_it_runs_runs_once_and_both_askers_get_its_answer() {
        let jobs = OneAtATime::<u8, u32>::default();
        let runs = std::sync::atomic::AtomicU32::new(0);
        let (release, released) = watch::channel(false);
        let job = || {
            let mut released = released.clone();
            let runs = &runs;
            async move {
                let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                released.wait_for(|r| *r).await.unwrap();
                n * 10
            }
        };
        let first = jobs.run(1, job);
        let second = jobs.run(1, job);
        let other_key = jobs.run(2, job);
        // Joined futures are polled in order: all three have asked before the release.
        let release = async {
            tokio::task::yield_now().await;
            release.send_replace(true);
        };
        let answers = futures::future::join4(first, second, other_key, release);
        let (a, b, c, ()) = tokio::time::timeout(WAIT, answers).await.unwrap();
        assert_eq!(runs.into_inner(), 2, "one run per key");
        assert_eq!(a, b, "the second asker got the first run's answer");
        assert_ne!(a, c);
        assert!(jobs.running.lock().is_empty());
    }

    #[tokio::test]
    async fn a_job_whose_runner_went_away_is_run_by_the_one_waiting() {
        let jobs = OneAtATime::<u8, u32>::default();
        let mut abandoned = Box::pin(jobs.run(1, std::future::pending::<u32>));
        let mut waiter = Box::pin(jobs.run(1, || async { 7 }));
        assert!(futures::poll!(abandoned.as_mut()).is_pending(), "running");
        assert!(
            futures::poll!(waiter.as_mut()).is_pending(),
            "waiting for the run"
        );
        // The run is dropped unanswered, while the other asker waits for its answer.
        drop(abandoned);
        assert_eq!(tokio::time::timeout(WAIT, waiter).await.unwrap(), 7);
        assert!(jobs.running.lock().is_empty());
    }
}
