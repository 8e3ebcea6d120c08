//! Where the node gets a batch it needs, and how it serves batches to peers.
//!
//! Lookup order: the dissemination layer's memory store, then RocksDB, then the peers
//! (the block's author first), through the node's own request on the sync protocol so
//! that peers can answer from RocksDB as well as from memory. A batch from a peer is
//! accepted only if its digest is the one asked for and every signature in it verifies;
//! it is then stored, so each batch is verified once per validator.
//!
//! What consensus learns about payload, and in what order, is not decided here but by
//! [`crate::payload`], which looks batches up through [`Batches::get`].

use std::sync::Arc;

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

pub struct Batches {
    store: Arc<BatchStore>,
    storage: Storage,
    network: NetworkHandle,
    chain_id: u64,
    /// Ordering-only networks carry opaque payloads, which have nothing to verify.
    ordering_only: bool,
    me: Option<PublicKey>,
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
        ordering_only: bool,
    ) -> Arc<Self> {
        Arc::new(Batches {
            chain_id: network.committee().chain_id(),
            ordering_only,
            me: network.local_key(),
            store,
            storage,
            network,
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
