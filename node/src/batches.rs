//! Where the node gets a batch it needs, and how it serves batches to peers.
//!
//! Lookup order: the dissemination layer's memory store, then RocksDB, then the peers
//! (the block's author first), through the node's own request on the sync protocol so
//! that peers can answer from RocksDB as well as from memory. A batch from a peer is
//! accepted only if its digest is the one asked for and every signature in it verifies;
//! it is then stored, so each batch is verified once per validator.
//!
//! Also here: payload availability for voting. When a proposal names batches, each one
//! found (or fetched) is reported to consensus with `PayloadReady`, once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ordo_network::{
    Batch, BatchBody, BatchStore, InboundRequest, NetworkHandle, Request, Response,
    MAX_BATCH_MESSAGE_BYTES,
};
use ordo_storage::Storage;
use ordo_types::{codec, Hash32, PublicKey, SignedTransaction};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::block_sync::BlockSync;
use crate::driver::DriverInput;
use crate::offers::Offer;
use crate::wire::{NodeRequest, NodeResponse};

/// How long to wait for a pushed batch before asking peers for it.
const PUSH_GRACE: Duration = Duration::from_millis(300);
const REPORTED_WINDOW: usize = 200_000;
/// Batches being fetched for one proposer's blocks at a time: two full blocks' worth
/// (at the default 1,024 digests a block). An honest leader's next proposal comes a
/// round later, when the last one's fetches are long done; a faulty one cannot make
/// this node start more than this many lookups.
const MAX_FETCHES_PER_PROPOSER: usize = 2_048;

pub struct Batches {
    store: Arc<BatchStore>,
    storage: Storage,
    network: NetworkHandle,
    chain_id: u64,
    /// Ordering-only networks carry opaque payloads, which have nothing to verify.
    ordering_only: bool,
    me: Option<PublicKey>,
    reported: Mutex<(HashSet<Hash32>, VecDeque<Hash32>)>,
    fetching: Mutex<HashSet<Hash32>>,
    /// Lookups in flight per proposer (see [`MAX_FETCHES_PER_PROPOSER`]).
    fetching_for: Mutex<HashMap<PublicKey, usize>>,
    driver: mpsc::Sender<DriverInput>,
    /// Committed batches' sequence numbers, for [`crate::offers`].
    offers: mpsc::Sender<Offer>,
    /// Byzantine: answer every batch request with "not here" (fault tests only).
    #[cfg(feature = "byzantine")]
    withhold: std::sync::atomic::AtomicBool,
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
        driver: mpsc::Sender<DriverInput>,
        offers: mpsc::Sender<Offer>,
        ordering_only: bool,
    ) -> Arc<Self> {
        Arc::new(Batches {
            chain_id: network.committee().chain_id(),
            ordering_only,
            me: network.local_key(),
            store,
            storage,
            network,
            reported: Mutex::new((HashSet::new(), VecDeque::new())),
            fetching: Mutex::new(HashSet::new()),
            fetching_for: Mutex::new(HashMap::new()),
            driver,
            offers,
            #[cfg(feature = "byzantine")]
            withhold: Default::default(),
        })
    }

    #[cfg(feature = "byzantine")]
    pub fn set_withhold(&self, on: bool) {
        self.withhold
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn store(&self) -> &Arc<BatchStore> {
        &self.store
    }

    /// The consensus key of validator `index` (genesis order).
    pub fn validator_key(&self, index: u16) -> Option<PublicKey> {
        self.network
            .committee()
            .get(usize::from(index))
            .map(|v| v.consensus_key)
    }

    /// The committee's consensus keys.
    pub fn members(&self) -> Vec<PublicKey> {
        self.network
            .committee()
            .validators()
            .iter()
            .map(|v| v.consensus_key)
            .collect()
    }

    /// A committed block held these batches (author, sequence number, digest).
    pub fn committed(&self, batches: Vec<(PublicKey, u64, Hash32)>) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.offers.try_send(Offer::Committed(batches))
        {
            // Costs nothing lasting: the next commit of the same authors says as much.
            metrics::counter!("ordo_node_offer_notices_dropped_total").increment(1);
        }
    }

    /// Tells consensus that `digest` is stored here, once.
    pub async fn report(&self, digest: Hash32) {
        {
            let mut r = self.reported.lock();
            if !r.0.insert(digest) {
                return;
            }
            r.1.push_back(digest);
            while r.1.len() > REPORTED_WINDOW {
                if let Some(old) = r.1.pop_front() {
                    r.0.remove(&old);
                }
            }
        }
        let _ = self.driver.send(DriverInput::Payload(vec![digest])).await;
    }

    fn reported(&self, digest: &Hash32) -> bool {
        self.reported.lock().0.contains(digest)
    }

    /// A proposal by `author`, checked by consensus, names `digests`: make each available
    /// and report them in the proposal's order. The order matters: a leader proposes
    /// reported batches in the order it learnt them, and one author's batches carry
    /// consecutive nonces of the same senders, so reporting them as their fetches happen
    /// to finish would let a later batch be ordered before an earlier one and fail its
    /// transactions on their nonces.
    pub fn on_proposal(self: &Arc<Self>, author: PublicKey, digests: &[Hash32]) {
        let wanted: Vec<Hash32> = {
            let mut per = self.fetching_for.lock();
            let in_flight = per.entry(author).or_default();
            let room = MAX_FETCHES_PER_PROPOSER.saturating_sub(*in_flight);
            let mut fetching = self.fetching.lock();
            let mut wanted: Vec<Hash32> = digests
                .iter()
                .copied()
                .filter(|d| !self.reported(d) && !fetching.contains(d))
                .collect();
            if wanted.len() > room {
                metrics::counter!("ordo_node_payload_fetches_capped_total")
                    .increment((wanted.len() - room) as u64);
                wanted.truncate(room);
            }
            fetching.extend(wanted.iter().copied());
            *in_flight += wanted.len();
            wanted
        };
        if wanted.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // Fetched concurrently, reported in order.
            let lookups: Vec<_> = wanted
                .iter()
                .map(|&d| {
                    let this = this.clone();
                    tokio::spawn(async move {
                        this.store.contains(&d)
                            || this.store.wait_for(&d, PUSH_GRACE).await
                            || this.get(&d, Some(author)).await.is_some()
                    })
                })
                .collect();
            for (d, lookup) in wanted.into_iter().zip(lookups) {
                let found = lookup.await.unwrap_or(false);
                this.fetching.lock().remove(&d);
                if let Some(n) = this.fetching_for.lock().get_mut(&author) {
                    *n = n.saturating_sub(1);
                }
                if found {
                    this.report(d).await;
                } else {
                    debug!(batch = %d.short(), "proposed batch not found");
                }
            }
        });
    }

    /// The batch `digest`, from memory, disk or peers; `None` if nobody had it.
    pub async fn get(
        &self,
        digest: &Hash32,
        prefer: Option<PublicKey>,
    ) -> Option<(Arc<Batch>, Source)> {
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
            return Some((batch, Source::Peer));
        }
        None
    }

    async fn verify(&self, batch: Arc<Batch>) -> bool {
        let chain_id = self.chain_id;
        let ordering_only = self.ordering_only;
        tokio::task::spawn_blocking(move || match &batch.body {
            BatchBody::Transactions(txs) => {
                txs.iter().all(|t| t.tx.chain_id == chain_id)
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
    ) {
        while let Some(request) = requests.recv().await {
            let response = match &request.request {
                Request::Opaque(bytes) => match NodeRequest::decode(bytes) {
                    Ok(NodeRequest::Blocks {
                        block_id,
                        above_round,
                        max,
                    }) => {
                        blocks.serve(request, block_id, above_round, max);
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
    }
}
