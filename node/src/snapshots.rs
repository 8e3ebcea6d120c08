//! State snapshots served to peers: what this validator offers, and the manifest and chunk
//! files behind an offer, read off the async runtime. Storage writes the snapshots (at
//! every multiple of `storage.snapshot_interval_blocks`, from the commit stage: see
//! `pipeline`). An offer names the committed block whose certificate vouches for the
//! snapshot's root (see `ordo_consensus::state_roots`; none for the few blocks until the
//! chain carries it): a peer that syncs from it checks the root against that certificate, takes it only when more than f
//! validators offer it alike, and checks every chunk against the manifest and the whole
//! against the root (`ordo_storage::Restore`).
//!
//! Invariants: answers never hold more than [`MAX_SNAPSHOT_OFFERS`] offers or one file;
//! at most [`READS_AT_ONCE`] reads run at once, and a request beyond them is answered
//! `Busy` at once, so that peers asking in a loop cost this node a bounded share of its
//! disk and never a task each.

use std::collections::BTreeMap;
use std::sync::Arc;

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::Block;
use ordo_network::{InboundRequest, Request, Response};
use ordo_storage::{SnapshotInfo, Storage};
use ordo_types::{codec, Hash32};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::debug;

use crate::block_sync::MAX_SYNC_BLOCKS;
use crate::wire::{NodeRequest, NodeResponse, SnapshotOffer, MAX_SNAPSHOT_OFFERS};

/// File reads for peers at once: a chunk is about 1 MiB, so a few keep a syncing peer
/// busy without letting peers queue unbounded work on the blocking pool.
pub const READS_AT_ONCE: usize = 4;

/// What a peer asks of this validator's snapshots.
#[derive(Clone, Copy, Debug)]
pub enum SnapshotAsk {
    Offers,
    Manifest(u64),
    Chunk { height: u64, index: u32 },
}

/// Serves peers' snapshot requests from storage's snapshot files.
#[derive(Clone)]
pub struct SnapshotServer {
    storage: Storage,
    offers: Arc<OfferCache>,
    reads: Arc<Semaphore>,
    /// Fault tests: serve every chunk with one byte changed.
    #[cfg(feature = "byzantine")]
    corrupt: bool,
}

impl SnapshotServer {
    pub fn new(storage: Storage) -> Self {
        SnapshotServer {
            storage,
            offers: Arc::new(OfferCache::default()),
            reads: Arc::new(Semaphore::new(READS_AT_ONCE)),
            #[cfg(feature = "byzantine")]
            corrupt: false,
        }
    }

    /// Fault tests: every chunk served from now on has one byte changed.
    #[cfg(feature = "byzantine")]
    pub fn corrupting(mut self, on: bool) -> Self {
        self.corrupt = on;
        self
    }

    /// Answers `request` on the blocking pool, or `Busy` at once when [`READS_AT_ONCE`]
    /// reads are running.
    pub fn serve(&self, request: InboundRequest, ask: SnapshotAsk) {
        let Ok(permit) = self.reads.clone().try_acquire_owned() else {
            metrics::counter!("ordo_node_snapshot_served_total", "outcome" => "busy").increment(1);
            request.respond(Response::Busy);
            return;
        };
        let storage = self.storage.clone();
        let offers = self.offers.clone();
        #[cfg(feature = "byzantine")]
        let corrupt = self.corrupt;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            #[allow(unused_mut)]
            let mut answer = answer(&storage, &offers, ask);
            #[cfg(feature = "byzantine")]
            if let (true, NodeResponse::SnapshotChunk(Some(bytes))) = (corrupt, &mut answer) {
                if let Some(last) = bytes.last_mut() {
                    *last ^= 1;
                    tracing::warn!("BYZANTINE: serving a corrupted snapshot chunk on purpose");
                    crate::byzantine::count("corrupt_snapshot_chunks");
                }
            }
            let outcome = match &answer {
                NodeResponse::SnapshotManifest(None) | NodeResponse::SnapshotChunk(None) => {
                    "missing"
                }
                _ => "answered",
            };
            metrics::counter!("ordo_node_snapshot_served_total", "outcome" => outcome).increment(1);
            request.respond(Response::Opaque(answer.encode()));
        });
    }
}

/// What storage holds for `ask`; a read that fails is answered as missing (and logged):
/// the peer asks another validator.
pub fn answer(storage: &Storage, cache: &OfferCache, ask: SnapshotAsk) -> NodeResponse {
    match ask {
        SnapshotAsk::Offers => NodeResponse::Snapshots(offers(storage, cache)),
        SnapshotAsk::Manifest(height) => NodeResponse::SnapshotManifest(
            storage
                .snapshot_manifest(height)
                .inspect_err(|e| debug!(height, error = %e, "cannot read a snapshot manifest"))
                .ok()
                .flatten()
                .map(|m| m.encode()),
        ),
        SnapshotAsk::Chunk { height, index } => NodeResponse::SnapshotChunk(
            storage
                .snapshot_chunk(height, index)
                .inspect_err(|e| debug!(height, index, error = %e, "cannot read a snapshot chunk"))
                .ok()
                .flatten(),
        ),
    }
}

/// Offers whose root a committed block certifies, by height. Such an offer does not change
/// while its snapshot's block is kept (a snapshot's files and the committed blocks do not;
/// pruning removes history from the bottom, so the blocks above one kept stay too), so
/// the block that certifies it is looked for once rather than on every request (a few
/// block reads and decodes for each snapshot kept). Holds at most the snapshots on disk.
#[derive(Default)]
pub struct OfferCache(parking_lot::Mutex<BTreeMap<u64, SnapshotOffer>>);

impl OfferCache {
    /// The offers for `snapshots` (oldest first), at most [`MAX_SNAPSHOT_OFFERS`], the
    /// newest; `offer` computes one not known yet (`None`: not offered now). Certified
    /// offers are kept while `kept` says their snapshot's block is (a validator that
    /// stopped taking snapshots prunes below the old ones still on disk); heights no
    /// longer on disk are forgotten.
    fn offers(
        &self,
        snapshots: &[SnapshotInfo],
        offer: impl Fn(&SnapshotInfo) -> Option<SnapshotOffer>,
        kept: impl Fn(u64) -> bool,
    ) -> Vec<SnapshotOffer> {
        let mut known = self.0.lock();
        known.retain(|height, _| {
            snapshots.iter().any(|info| info.height == *height) && kept(*height)
        });
        let mut offers = Vec::with_capacity(snapshots.len());
        for info in snapshots {
            if let Some(cached) = known.get(&info.height) {
                offers.push(cached.clone());
                continue;
            }
            if let Some(fresh) = offer(info) {
                if fresh.certified_by != Hash32::ZERO {
                    known.insert(info.height, fresh.clone());
                }
                offers.push(fresh);
            }
        }
        if offers.len() > MAX_SNAPSHOT_OFFERS {
            offers.drain(..offers.len() - MAX_SNAPSHOT_OFFERS);
        }
        offers
    }
}

/// The complete snapshots on disk whose block this validator committed, newest last, each
/// with the committed block whose certificate vouches for its root (none yet: 0 blocks).
pub fn offers(storage: &Storage, cache: &OfferCache) -> Vec<SnapshotOffer> {
    let Ok(snapshots) = storage.snapshots() else {
        return Vec::new();
    };
    let offer = |info: &SnapshotInfo| {
        let manifest = storage.snapshot_manifest(info.height).ok().flatten()?;
        let block_hash = storage.block_hash_at(info.height).ok().flatten()?;
        // Offered before its root is certified too, so that a syncing peer waits
        // for it rather than replaying the chain (it never restores it before).
        let (certified_by, proof_blocks) =
            certifier(storage, info.height).unwrap_or((Hash32::ZERO, 0));
        Some(SnapshotOffer {
            height: info.height,
            state_root: info.state_root,
            block_hash,
            certified_by,
            proof_blocks,
            manifest: manifest.digest(),
            chunks: info.chunks,
            bytes: info.bytes,
        })
    };
    let kept = |height| storage.block_hash_at(height).ok().flatten().is_some();
    cache.offers(&snapshots, offer, kept)
}

/// Runs `work` while [`answer_while_syncing`] answers the peers' requests arriving on
/// `requests` (taken for the time), then hands them back.
pub async fn answering_while<T>(
    requests: &mut mpsc::Receiver<InboundRequest>,
    storage: Storage,
    work: impl std::future::Future<Output = T>,
) -> Result<T, crate::error::NodeError> {
    let (stop, stopped) = oneshot::channel();
    let taken = std::mem::replace(requests, mpsc::channel(1).1);
    let answering = tokio::spawn(answer_while_syncing(taken, storage, stopped));
    let done = work.await;
    let _ = stop.send(());
    *requests = answering.await.map_err(|e| {
        crate::error::NodeError::Other(format!("the requests answered while syncing: {e}"))
    })?;
    Ok(done)
}

/// Answers peers' requests while this node syncs its state, before its servers start:
/// snapshot offers from storage (none, on the empty store of a node that syncs), `Busy`
/// to anything else; hands the requests back once `stop` fires. On a new chain every
/// validator syncs at once, and each then hears "nothing offered" at once instead of
/// waiting out a request timeout.
pub async fn answer_while_syncing(
    mut requests: mpsc::Receiver<InboundRequest>,
    storage: Storage,
    mut stop: oneshot::Receiver<()>,
) -> mpsc::Receiver<InboundRequest> {
    let cache = OfferCache::default();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            request = requests.recv() => {
                let Some(request) = request else { break };
                let asks_offers = matches!(
                    &request.request,
                    Request::Opaque(bytes) if matches!(NodeRequest::decode(bytes), Ok(NodeRequest::Snapshots))
                );
                if asks_offers {
                    request.respond(Response::Opaque(
                        NodeResponse::Snapshots(offers(&storage, &cache)).encode(),
                    ));
                } else {
                    request.respond(Response::Busy);
                }
            }
        }
    }
    requests
}

/// The committed block whose certificate vouches for the root of `height`, and how many
/// blocks lead from it down to the one after `height`: the block after the first
/// committed block that carries the root. `None` until both are committed (a few blocks
/// after `height`, the execution lag) or if no block within one block request carries it.
fn certifier(storage: &Storage, height: u64) -> Option<(Hash32, u16)> {
    for carrier in height + 1..height + MAX_SYNC_BLOCKS as u64 {
        let (_, bytes) = storage.block_at(carrier).ok().flatten()?;
        let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).ok()?;
        if block.state.get(height).is_some() {
            let hash = storage.block_hash_at(carrier + 1).ok().flatten()?;
            return Some((hash, (carrier + 1 - height) as u16));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(height: u64) -> SnapshotInfo {
        SnapshotInfo {
            height,
            state_root: Hash32([height as u8; 32]),
            entries: 1,
            chunks: 1,
            bytes: 1,
        }
    }

    fn offer(info: &SnapshotInfo, certified: bool) -> SnapshotOffer {
        SnapshotOffer {
            height: info.height,
            state_root: info.state_root,
            block_hash: Hash32([1; 32]),
            certified_by: if certified {
                Hash32([2; 32])
            } else {
                Hash32::ZERO
            },
            proof_blocks: u16::from(certified),
            manifest: Hash32([3; 32]),
            chunks: info.chunks,
            bytes: info.bytes,
        }
    }

    /// A certified offer is computed once; one not yet certified again at each request,
    /// until it is; a snapshot deleted from disk is forgotten.
    #[test]
    fn certified_offers_are_computed_once_and_forgotten_with_their_snapshot() {
        let cache = OfferCache::default();
        let computed = std::cell::RefCell::new(Vec::new());
        let pruned_below = std::cell::Cell::new(0);
        let ask = |snapshots: &[SnapshotInfo], certified_up_to: u64| {
            cache.offers(
                snapshots,
                |info| {
                    computed.borrow_mut().push(info.height);
                    (info.height >= pruned_below.get())
                        .then(|| offer(info, info.height <= certified_up_to))
                },
                |height| height >= pruned_below.get(),
            )
        };
        let on_disk = [info(10), info(20)];
        let first = ask(&on_disk, 10);
        assert_eq!(first.iter().map(|o| o.height).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(first[1].certified_by, Hash32::ZERO);
        assert_eq!(computed.take(), [10, 20]);
        // 20 is certified now: looked for again, then kept.
        let second = ask(&on_disk, 20);
        assert_eq!(computed.take(), [20]);
        assert_eq!(second[0], first[0]);
        assert_ne!(second[1].certified_by, Hash32::ZERO);
        assert_eq!(ask(&on_disk, 20), second);
        assert!(computed.take().is_empty(), "both from the cache");
        // 10 deleted, 30 made: 10 leaves the cache, 30 is computed.
        let on_disk = [info(20), info(30)];
        let third = ask(&on_disk, 30);
        assert_eq!(third.iter().map(|o| o.height).collect::<Vec<_>>(), [20, 30]);
        assert_eq!(computed.take(), [30]);
        assert_eq!(cache.0.lock().keys().copied().collect::<Vec<_>>(), [20, 30]);
        // History pruned past 20 while its files stay (snapshots switched off): no longer
        // offered.
        pruned_below.set(25);
        let fourth = ask(&on_disk, 30);
        assert_eq!(fourth.iter().map(|o| o.height).collect::<Vec<_>>(), [30]);
        assert_eq!(computed.take(), [20]);
        assert_eq!(cache.0.lock().keys().copied().collect::<Vec<_>>(), [30]);
    }

    #[test]
    fn at_most_the_newest_offers_are_answered() {
        let cache = OfferCache::default();
        let on_disk: Vec<SnapshotInfo> = (1..=MAX_SNAPSHOT_OFFERS as u64 + 3).map(info).collect();
        let offers = cache.offers(&on_disk, |info| Some(offer(info, true)), |_| true);
        let heights: Vec<u64> = offers.iter().map(|o| o.height).collect();
        assert_eq!(
            heights,
            (4..=MAX_SNAPSHOT_OFFERS as u64 + 3).collect::<Vec<_>>()
        );
    }
}
