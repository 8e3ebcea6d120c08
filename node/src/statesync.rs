//! State sync: a validator whose store has executed nothing (new, or wiped) joins from a
//! snapshot its peers offer instead of replaying the chain from genesis; so does one
//! whose peers pruned the blocks after its last commit ([`pruned_behind`]: its store is
//! emptied first, all but its safety data).
//!
//! ```text
//! connected to f + 1 peers ─▶ every peer's offers ─▶ the newest offered alike by f + 1
//!   ─▶ its root checked against the chain: the blocks from the offer's certified block
//!      down to the snapshot's, one of which carries the root (`verify_root_proof`)
//!   ─▶ its manifest (digest checked) ─▶ the blocks of the duplicate window below it (a
//!      hash chain down from the offered block) and their batches (checked by digest):
//!      the transaction hashes the duplicate rule looks back on
//!   ─▶ chunks from the offering peers, a few at once, each checked against the manifest
//!   ─▶ the whole checked against the offered root; the height marked executed
//! then the node starts as after a restart at that height: consensus catches up forward
//! from the offered block, and execution resumes after it
//! ```
//!
//! Trust: the root is one a quorum certificate vouches for (every block carries the roots
//! its voters computed: see `ordo_consensus::state_roots`), checked against the genesis
//! committee's keys, so no peer, nor f colluding ones, can make a syncing validator take
//! another state; an offer is also taken only when more than f validators make it alike
//! (height, root, block, proof and manifest), which spares fetching a Byzantine offer. A
//! chunk from a lying peer fails its hash, is counted, the peer reported, and the chunk
//! asked of another. Storage makes the restore durable chunk by chunk: a validator killed
//! mid-sync resumes the same snapshot if peers still offer it, and otherwise aborts it and
//! syncs anew (or replays the chain), never running on part of a snapshot. A snapshot
//! whose chunks stop being served mid-sync (its peers keep only their newest few, and
//! deleted it for newer ones) is given up in the same run for the newest offered then,
//! up to [`SNAPSHOT_CHOICES`] snapshots.
//!
//! Memory is bounded by [`CHUNKS_IN_FLIGHT`] chunks, the window's blocks (256) and the
//! batches fetched for them (held by the caller's batch fetcher, bounded by its store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use ordo_consensus::{ed25519_verify, verify_root_proof, Block, Committee};
use ordo_network::{BatchBody, NetworkHandle, Request, Response};
use ordo_storage::{Recovery, Restore, SnapshotManifest, Storage};
use ordo_types::{codec, Hash32, PublicKey};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::batches::Batches;
use crate::block_sync::MAX_SYNC_BLOCKS;
use crate::dedup::DUPLICATE_WINDOW;
use crate::error::NodeError;
use crate::wire::{NodeRequest, NodeResponse, SnapshotOffer, MAX_SNAPSHOT_OFFERS};

/// Chunks fetched at once: enough to keep a few peers' disks and links busy, at about
/// 1 MiB each.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// Tries per chunk, over the offering peers, before the sync is given up: with
/// [`RETRY_PAUSE`] between them, a chunk nobody can serve for about 10 s.
const CHUNK_TRIES: usize = 40;
/// Pause before asking again after a request found no answer (a busy server, a missing
/// file, a lost connection): a server answers `Busy` at once when its reads are taken.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a sync that has f + 1 peers waits for the others to connect.
const MORE_PEERS_WAIT: Duration = Duration::from_secs(1);
/// Requests for one peer's proof of a root: 128 blocks of at most 1,024 digests fit in
/// two 2-MiB answers.
const PROOF_REQUESTS_PER_PEER: usize = 3;
/// How long a sync waits for a snapshot offered alike to have its root certified (a few
/// blocks after its height, seconds even on an idle chain), and how often it asks.
const CERTIFICATION_WAIT: Duration = Duration::from_secs(30);
const CERTIFICATION_PAUSE: Duration = Duration::from_millis(500);
/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Snapshots one sync may choose, one after another: a validator keeps only its newest
/// few (`storage.snapshots_kept`), so a restore slower than a few snapshot intervals
/// finds the one it began deleted, and goes on with a newer one; a fourth failure in a
/// row is more than deletions explain, and stops the sync with an error instead.
const SNAPSHOT_CHOICES: usize = 4;

/// Where a state sync is, for `/v1/status` while it runs (the RPC proper starts after).
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    step: AtomicU8,
    target_height: AtomicU64,
    chunks: AtomicU64,
    chunks_applied: AtomicU64,
}

/// The steps of [`run`], in order, as `/v1/status` names them.
const STEPS: [&str; 5] = [
    "waiting_for_peers",
    "choosing_snapshot",
    "fetching_blocks_below",
    "fetching_chunks",
    "finishing",
];

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            step: AtomicU8::new(0),
            target_height: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            chunks_applied: AtomicU64::new(0),
        }
    }
}

impl Progress {
    fn step(&self, step: usize) {
        self.step.store(step as u8, Ordering::Relaxed);
    }

    /// The `sync` object of `/v1/status` during the restore.
    pub fn to_json(&self) -> serde_json::Value {
        let applied = self.chunks_applied.load(Ordering::Relaxed);
        let seconds = self.started.elapsed().as_secs_f64();
        serde_json::json!({
            "phase": "restoring",
            "step": STEPS[usize::from(self.step.load(Ordering::Relaxed)).min(STEPS.len() - 1)],
            "snapshot_height": self.target_height.load(Ordering::Relaxed),
            "chunks": self.chunks.load(Ordering::Relaxed),
            "chunks_applied": applied,
            "chunks_per_second": if seconds > 0.0 { applied as f64 / seconds } else { 0.0 },
            "seconds": seconds,
        })
    }
}

/// Syncs `storage` (which has executed nothing) from a snapshot peers offer, waiting at
/// most `wait` for `trust` (f + 1) peers, and returns what storage then holds. `None`: no
/// snapshot could be trusted (logged); the caller then replays the chain from genesis.
/// An error once a restore has begun: it stays in storage for the next start.
pub async fn run(
    network: &NetworkHandle,
    committee: &Committee,
    storage: &Storage,
    batches: &Batches,
    trust: usize,
    wait: Duration,
    progress: &Progress,
) -> Result<Option<Recovery>, NodeError> {
    let started = Instant::now();
    if !network.wait_connected(wait, |c| c.len() >= trust).await {
        if let Ok(unfinished) = storage.resume_restore() {
            // Kept rather than thrown away for a replay: peers may just be slow to come.
            return Err(NodeError::Other(format!(
                "state sync: the restore of the snapshot of height {} is unfinished and \
                 fewer than {trust} peers are reachable; start again to resume it",
                unfinished.manifest().height
            )));
        }
        warn!(
            trust,
            "state sync: too few peers to trust a snapshot; replaying the chain"
        );
        return Ok(None);
    }
    // A moment more for the rest of the committee: more offers to compare, and more
    // peers to spread the chunks over.
    let others = network.committee().validators().len().saturating_sub(1);
    let _ = network
        .wait_connected(MORE_PEERS_WAIT, |c| c.len() >= others)
        .await;
    // A restore a killed sync left is resumed while its snapshot is still offered alike;
    // otherwise the newest snapshot so offered is restored, from scratch.
    let mut unfinished = storage.resume_restore().ok();
    let mut given_up: Option<u64> = None;
    // The snapshot whose window of blocks this run fetched: chosen again, it needs none.
    let mut windowed = None;
    let mut choice = 0;
    loop {
        choice += 1;
        progress.step(1);
        let chosen = choose(network, committee, trust, unfinished.as_ref()).await;
        let manifest = match &chosen {
            Some((offer, peers, _)) => {
                let manifest = manifest(network, offer, peers).await;
                if manifest.is_none() {
                    warn!(
                        height = offer.height,
                        "state sync: no peer served the chosen manifest"
                    );
                }
                manifest
            }
            None => None,
        };
        let (Some((offer, peers, certified_round)), Some(manifest)) = (chosen, manifest) else {
            return match (given_up, &unfinished) {
                (Some(height), Some(restore)) => Err(NodeError::Other(format!(
                    "state sync: the snapshot of height {height} could not be fetched and no \
                     snapshot is offered alike and served now ({} of {} chunks of the one \
                     begun missing); start again to resume",
                    restore.missing().len(),
                    restore.manifest().chunks.len()
                ))),
                _ => {
                    info!("state sync: no snapshot to restore; replaying the chain");
                    Ok(None)
                }
            };
        };
        info!(
            height = offer.height,
            root = %offer.state_root.short(),
            certified_round,
            chunks = offer.chunks,
            bytes = offer.bytes,
            peers = peers.len(),
            choice,
            "state sync: snapshot chosen, its root certified"
        );
        metrics::gauge!("ordo_statesync_certified_round").set(certified_round as f64);
        metrics::gauge!("ordo_statesync_chunks").set(f64::from(offer.chunks));
        metrics::gauge!("ordo_statesync_target_height").set(offer.height as f64);
        progress
            .target_height
            .store(offer.height, Ordering::Relaxed);
        progress
            .chunks
            .store(u64::from(offer.chunks), Ordering::Relaxed);
        let applied = restore_applied(unfinished.as_ref(), &offer);
        progress.chunks_applied.store(applied, Ordering::Relaxed);
        metrics::gauge!("ordo_statesync_chunks_applied").set(applied as f64);

        let restore = match unfinished.take() {
            Some(r) if r.manifest().digest() == offer.manifest => {
                info!(
                    missing = r.missing().len(),
                    "state sync: resuming an unfinished restore"
                );
                r
            }
            Some(r) => {
                drop(r);
                storage.abort_restore()?;
                storage.begin_restore(&manifest)?
            }
            None => storage.begin_restore(&manifest)?,
        };
        // From here on the restore begun stays in storage: chunks that cannot be fetched
        // make the sync choose again (above), any other failure stops the validator, and
        // its next start resumes the restore (or, if no peer offers it any more, aborts it).
        progress.step(2);
        if windowed != Some(offer.manifest) {
            window(network, storage, batches, &offer, &peers).await?;
            windowed = Some(offer.manifest);
        }
        progress.step(3);
        match chunks(network, &restore, &offer, &peers, trust, progress).await {
            Fetched::All => {
                progress.step(4);
                let recovery = restore.finish(offer.block_hash)?;
                metrics::gauge!("ordo_statesync_restored_height").set(offer.height as f64);
                info!(
                    height = offer.height,
                    root = %recovery.state_root.short(),
                    seconds = started.elapsed().as_secs_f64(),
                    "state sync: snapshot restored"
                );
                return Ok(Some(recovery));
            }
            fetched if choice == SNAPSHOT_CHOICES => {
                return Err(NodeError::Other(format!(
                    "state sync: {} of {} chunks of the snapshot of height {} could not be \
                     fetched ({}), after {SNAPSHOT_CHOICES} tries at a snapshot; start again \
                     to resume",
                    restore.missing().len(),
                    offer.chunks,
                    offer.height,
                    fetched.why()
                )));
            }
            fetched => {
                warn!(
                    height = offer.height,
                    missing = restore.missing().len(),
                    chunks = offer.chunks,
                    why = fetched.why(),
                    "state sync: the snapshot's chunks cannot be fetched now; choosing again"
                );
                metrics::counter!("ordo_statesync_snapshots_given_up_total").increment(1);
                given_up = Some(offer.height);
                unfinished = Some(restore);
            }
        }
    }
}

/// Chunks of `offer` already applied: those of `unfinished` if it restores `offer`, else
/// none (a restore of another snapshot is aborted).
fn restore_applied(unfinished: Option<&Restore>, offer: &SnapshotOffer) -> u64 {
    match unfinished {
        Some(r) if r.manifest().digest() == offer.manifest => {
            u64::from(offer.chunks).saturating_sub(r.missing().len() as u64)
        }
        _ => 0,
    }
}

/// The snapshot to restore and its offering peers, with the round of the certificate
/// that vouches for its root: `unfinished`'s while it is still offered alike, otherwise
/// the newest offered alike whose root is proved certified. `None` (logged): none is.
async fn choose(
    network: &NetworkHandle,
    committee: &Committee,
    trust: usize,
    unfinished: Option<&Restore>,
) -> Option<(SnapshotOffer, Vec<PublicKey>, u64)> {
    // A snapshot is offered before its root is certified (a few blocks after its height):
    // one that only waits for that is asked about again for a while rather than replaying.
    let patience = Instant::now() + CERTIFICATION_WAIT;
    loop {
        let offers = trusted_offers(network, trust).await;
        let resumable = unfinished.and_then(|r| {
            let digest = r.manifest().digest();
            offers.iter().find(|(offer, _)| offer.manifest == digest)
        });
        if offers.is_empty() {
            info!("state sync: no snapshot offered alike by enough peers");
            return None;
        }
        // The resumable one first, then newest first: the first whose root a certificate
        // vouches for.
        let mut uncertified = false;
        let others = offers.iter().filter(|o| Some(*o) != resumable);
        for (offer, peers) in resumable.into_iter().chain(others) {
            if offer.proof_blocks == 0 {
                uncertified = true;
                continue;
            }
            match certified(network, committee, offer, peers).await {
                Some(round) => return Some((offer.clone(), peers.clone(), round)),
                None => warn!(
                    height = offer.height,
                    "state sync: no offering peer proved the snapshot's root certified"
                ),
            }
        }
        if uncertified && Instant::now() < patience {
            info!("state sync: the snapshot offered is not certified yet; asking again");
            tokio::time::sleep(CERTIFICATION_PAUSE).await;
        } else {
            warn!("state sync: no offered snapshot's root is proved certified");
            return None;
        }
    }
}

/// Whether at least `trust` (f + 1) peers pruned the blocks after this store's last
/// commit, so that it can only rejoin from a snapshot: a validator offline longer than
/// its peers' retention window. Waits at most `wait` for `trust` peers and as long for
/// their answers; `false` if too few come or say so, or if any serves the blocks. An
/// error when they did but no snapshot above this store is offered alike by `trust`: the
/// store is then kept, and the validator cannot rejoin yet.
pub async fn pruned_behind(
    network: &NetworkHandle,
    consensus: &Committee,
    storage: &Storage,
    trust: usize,
    wait: Duration,
) -> Result<bool, NodeError> {
    let Some(last) = storage.last_committed() else {
        return Ok(false);
    };
    let Some(after) = storage.block_hash_at(last)? else {
        return Ok(false);
    };
    if !network.wait_connected(wait, |c| c.len() >= trust).await {
        return Ok(false);
    }
    let committee = network.committee();
    let request = NodeRequest::CommittedAfter { after, max: 1 };
    let mut asked = JoinSet::new();
    for peer in network
        .connected()
        .into_iter()
        .filter_map(|i| committee.get(i).map(|v| v.consensus_key))
    {
        let network = network.clone();
        let request = request.clone();
        asked.spawn(async move { ask(&network, &peer, &request).await });
    }
    let mut pruned = 0;
    let mut served = 0;
    let mut oldest = u64::MAX;
    // A peer slow to answer is not waited on past `wait`: it said nothing either way.
    let _ = tokio::time::timeout(wait, async {
        while let Some(Ok(answer)) = asked.join_next().await {
            match answer {
                Some(NodeResponse::Pruned { oldest: o }) if o > last + 1 => {
                    pruned += 1;
                    oldest = oldest.min(o);
                }
                Some(NodeResponse::Blocks(blocks)) if !blocks.is_empty() => served += 1,
                _ => {}
            }
        }
    })
    .await;
    // One peer that still serves the blocks is enough to catch up from; a Byzantine
    // peer's "pruned" is one of the f + 1.
    if pruned < trust || served > 0 {
        return Ok(false);
    }
    // The store is emptied only for a snapshot that can replace it: offered alike and its
    // root proved certified.
    let offers = trusted_offers(network, trust).await;
    let mut proved = None;
    for (offer, peers) in offers.iter().filter(|(offer, _)| offer.height > last) {
        if certified(network, consensus, offer, peers).await.is_some() {
            proved = Some(offer);
            break;
        }
    }
    let Some(offer) = proved else {
        return Err(NodeError::Other(format!(
            "{pruned} peers pruned the blocks after this validator's last commit at height \
             {last} (the oldest they keep is {oldest}), and fewer than {trust} offer a \
             snapshot above it alike whose root they prove certified: it cannot rejoin \
             until they do (with snapshots off, `storage.snapshot_interval_blocks = 0`, \
             peers must keep every block: `storage.retain_blocks = 0`)"
        )));
    };
    warn!(
        last_committed = last,
        peers = pruned,
        oldest,
        snapshot = offer.height,
        "state sync: peers pruned the blocks after this store's last commit"
    );
    Ok(true)
}

/// Asks `peer`, within [`REQUEST_TIMEOUT`]; `None` on any failure.
async fn ask(network: &NetworkHandle, peer: &PublicKey, ask: &NodeRequest) -> Option<NodeResponse> {
    let request = Request::Opaque(ask.encode());
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, network.request(peer, &request)).await;
    match answer {
        Ok(Ok(Response::Opaque(bytes))) => match NodeResponse::decode(&bytes) {
            Ok(response) => Some(response),
            Err(_) => {
                network.report_bad_message(peer);
                None
            }
        },
        _ => None,
    }
}

/// The offers that at least `trust` connected peers make alike, with those peers, newest
/// first.
async fn trusted_offers(
    network: &NetworkHandle,
    trust: usize,
) -> Vec<(SnapshotOffer, Vec<PublicKey>)> {
    let committee = network.committee();
    let peers: Vec<PublicKey> = network
        .connected()
        .into_iter()
        .filter_map(|i| committee.get(i).map(|v| v.consensus_key))
        .collect();
    let mut asked = JoinSet::new();
    for peer in peers {
        let network = network.clone();
        asked.spawn(async move { (peer, ask(&network, &peer, &NodeRequest::Snapshots).await) });
    }
    let mut by_offer: HashMap<SnapshotOffer, Vec<PublicKey>> = HashMap::new();
    while let Some(Ok((peer, answer))) = asked.join_next().await {
        if let Some(NodeResponse::Snapshots(offers)) = answer {
            // An honest validator lists a few; more is not looked at.
            for offer in offers.into_iter().take(MAX_SNAPSHOT_OFFERS) {
                let offering = by_offer.entry(offer).or_default();
                if !offering.contains(&peer) {
                    offering.push(peer);
                }
            }
        }
    }
    let mut trusted: Vec<(SnapshotOffer, Vec<PublicKey>)> = by_offer
        .into_iter()
        .filter(|(offer, peers)| peers.len() >= trust && offer.height > 0)
        .collect();
    // Newest first; offers of one height (which honest validators never make) in a fixed
    // order.
    trusted.sort_by(|(a, _), (b, _)| b.height.cmp(&a.height).then(a.manifest.cmp(&b.manifest)));
    trusted
}

/// The round of the certificate that vouches for `offer`'s root: the blocks from
/// `offer.certified_by` down to the one after the snapshot's block, from the first
/// offering peer whose chain proves it. A peer whose chain does not is reported.
async fn certified(
    network: &NetworkHandle,
    committee: &Committee,
    offer: &SnapshotOffer,
    peers: &[PublicKey],
) -> Option<u64> {
    let wanted = usize::from(offer.proof_blocks);
    if !(2..=MAX_SYNC_BLOCKS).contains(&wanted) {
        return None;
    }
    for peer in peers {
        // An answer may stop short (it is bounded in bytes): ask on from where it ended,
        // a few times (an honest peer needs one or two) so that a peer dribbling one
        // block an answer cannot hold the sync up.
        let mut chain: Vec<Block> = Vec::new();
        let mut next = offer.certified_by;
        for _ in 0..PROOF_REQUESTS_PER_PEER {
            if chain.len() >= wanted {
                break;
            }
            let request = NodeRequest::Blocks {
                block_id: next,
                above_round: 0,
                max: (wanted - chain.len()) as u16,
            };
            let Some(NodeResponse::Blocks(answer)) = ask(network, peer, &request).await else {
                break;
            };
            let before = chain.len();
            for block in answer {
                if block.id() != next || chain.len() == wanted {
                    break;
                }
                next = block.parent();
                chain.push(block);
            }
            if chain.len() == before {
                break;
            }
        }
        if chain.len() < wanted {
            // Not served here (pruned, busy, or gone): no evidence against the peer.
            continue;
        }
        match verify_root_proof(
            committee,
            ed25519_verify,
            &chain,
            offer.block_hash,
            offer.height,
            offer.state_root,
        ) {
            Ok(round) => return Some(round),
            Err(e) => {
                warn!(%peer, height = offer.height, error = %e, "state sync: a peer's proof of the snapshot's root fails");
                network.report_bad_message(peer);
            }
        }
    }
    None
}

/// The manifest of `offer`, from the first offering peer whose copy has its digest.
async fn manifest(
    network: &NetworkHandle,
    offer: &SnapshotOffer,
    peers: &[PublicKey],
) -> Option<SnapshotManifest> {
    for peer in peers {
        let Some(NodeResponse::SnapshotManifest(Some(bytes))) =
            ask(network, peer, &NodeRequest::SnapshotManifest(offer.height)).await
        else {
            continue;
        };
        match SnapshotManifest::decode(&bytes) {
            Ok(m) if m.digest() == offer.manifest && m.state_root == offer.state_root => {
                return Some(m)
            }
            _ => {
                warn!(%peer, "state sync: a manifest that is not the one offered");
                network.report_bad_message(peer);
            }
        }
    }
    None
}

/// The blocks of the duplicate window below the snapshot (the offered block and the
/// [`DUPLICATE_WINDOW`] - 1 below it), stored by hash for consensus's restart, and the
/// hashes of the transactions they included, recorded for the duplicate rule.
async fn window(
    network: &NetworkHandle,
    storage: &Storage,
    batches: &Batches,
    offer: &SnapshotOffer,
    peers: &[PublicKey],
) -> Result<(), NodeError> {
    let lowest = offer.height.saturating_sub(DUPLICATE_WINDOW - 1).max(1);
    let mut wanted = offer.block_hash;
    let mut height = offer.height;
    let mut blocks: Vec<(u64, Block)> = Vec::new();
    let mut turn = 0;
    while height >= lowest {
        let max = (height - lowest + 1).min(MAX_SYNC_BLOCKS as u64) as u16;
        let request = NodeRequest::Blocks {
            block_id: wanted,
            above_round: 0,
            max,
        };
        let peer = peers[turn % peers.len()];
        turn += 1;
        if turn > peers.len() * CHUNK_TRIES {
            return Err(NodeError::Other(
                "no peer served the blocks below the snapshot".into(),
            ));
        }
        let Some(NodeResponse::Blocks(answer)) = ask(network, &peer, &request).await else {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        };
        // A hash chain down from the block asked for: the offered block's hash (the parent
        // of a chain a verified certificate ends, see `certified`) authenticates every
        // block below it.
        for block in answer {
            if block.id() != wanted || height < lowest {
                break;
            }
            wanted = block.parent();
            blocks.push((height, block));
            height -= 1;
        }
    }
    // Every hash the window's blocks ordered, executed or skipped: what the duplicate rule
    // looks back on (storage keeps each hash's highest height).
    let mut included: Vec<(Hash32, u64)> = Vec::new();
    for (height, block) in &blocks {
        storage.put_block(&block.id(), &codec::encode(block), None)?;
        for digest in &block.payload {
            let Some((batch, _)) = batches.get(digest, None).await else {
                return Err(NodeError::Other(format!(
                    "no peer served batch {} of height {height}",
                    digest.short()
                )));
            };
            if let BatchBody::Transactions(txs) = &batch.body {
                included.extend(txs.iter().map(|tx| (tx.hash(), *height)));
            }
        }
    }
    storage.record_ordered(&included)?;
    info!(
        blocks = blocks.len(),
        transactions = included.len(),
        "state sync: blocks below the snapshot fetched"
    );
    Ok(())
}

/// How a fetch of a snapshot's chunks ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetched {
    /// Every chunk applied.
    All,
    /// More than f offering peers answered that they no longer have a chunk: they
    /// deleted the snapshot (they keep a few, and took newer ones meanwhile).
    Withdrawn,
    /// A chunk was asked [`CHUNK_TRIES`] times without being served.
    Unavailable,
}

impl Fetched {
    fn why(self) -> &'static str {
        match self {
            Fetched::All => "all applied",
            Fetched::Withdrawn => "the offering peers deleted the snapshot",
            Fetched::Unavailable => "a chunk was not served in its tries",
        }
    }
}

/// Fetches and applies every chunk `restore` misses, [`CHUNKS_IN_FLIGHT`] at once, each
/// from the next offering peer in turn; a chunk that fails its hash reports the peer.
/// Once `trust` (f + 1) peers said they no longer have one chunk (at least one of them
/// honest), asks who offers the snapshot now: no longer offered alike, it is being deleted
/// and the fetch stops; still offered (a peer that deleted it a little before the others,
/// or failed to read it), the fetch goes on with the peers that offer it now.
async fn chunks(
    network: &NetworkHandle,
    restore: &Restore,
    offer: &SnapshotOffer,
    peers: &[PublicKey],
    trust: usize,
    progress: &Progress,
) -> Fetched {
    let mut missing: Vec<(u32, usize)> = restore.missing().into_iter().map(|i| (i, 0)).collect();
    missing.reverse();
    let mut peers = peers.to_vec();
    let total = u64::from(offer.chunks);
    let applied = total.saturating_sub(missing.len() as u64);
    metrics::gauge!("ordo_statesync_chunks_applied").set(applied as f64);
    progress.chunks_applied.store(applied, Ordering::Relaxed);
    // Per chunk, the peers that answered they do not have it.
    let mut lacking: HashMap<u32, Vec<PublicKey>> = HashMap::new();
    let mut fetching = JoinSet::new();
    loop {
        while fetching.len() < CHUNKS_IN_FLIGHT {
            let Some((index, tries)) = missing.pop() else {
                break;
            };
            if tries >= CHUNK_TRIES {
                return Fetched::Unavailable;
            }
            let peer = peers[(index as usize + tries) % peers.len()];
            let network = network.clone();
            let height = offer.height;
            fetching.spawn(async move {
                if tries > 0 {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                let answer = ask(
                    &network,
                    &peer,
                    &NodeRequest::SnapshotChunk { height, index },
                )
                .await;
                (index, tries, peer, answer)
            });
        }
        let Some(Ok((index, tries, peer, answer))) = fetching.join_next().await else {
            break;
        };
        match answer {
            Some(NodeResponse::SnapshotChunk(Some(bytes))) => {
                match restore.apply_chunk(index, &bytes) {
                    Ok(()) => {
                        metrics::counter!("ordo_statesync_chunks_total", "outcome" => "applied")
                            .increment(1);
                        let applied = total.saturating_sub(restore.missing().len() as u64);
                        metrics::gauge!("ordo_statesync_chunks_applied").set(applied as f64);
                        progress.chunks_applied.store(applied, Ordering::Relaxed);
                    }
                    Err(e) => {
                        warn!(%peer, index, error = %e, "state sync: a chunk that is not the manifest's");
                        metrics::counter!("ordo_statesync_chunks_total", "outcome" => "rejected")
                            .increment(1);
                        network.report_bad_message(&peer);
                        missing.push((index, tries + 1));
                    }
                }
            }
            Some(NodeResponse::SnapshotChunk(None)) => {
                metrics::counter!("ordo_statesync_chunks_total", "outcome" => "deleted")
                    .increment(1);
                let lacking = lacking.entry(index).or_default();
                if !lacking.contains(&peer) {
                    lacking.push(peer);
                }
                if lacking.len() >= trust {
                    let offers = trusted_offers(network, trust).await;
                    let Some((_, offering)) = offers.into_iter().find(|(o, _)| o == offer) else {
                        return Fetched::Withdrawn;
                    };
                    lacking.clear();
                    peers = offering;
                }
                missing.push((index, tries + 1));
            }
            _ => {
                metrics::counter!("ordo_statesync_chunks_total", "outcome" => "unavailable")
                    .increment(1);
                missing.push((index, tries + 1));
            }
        }
    }
    if restore.missing().is_empty() {
        Fetched::All
    } else {
        Fetched::Unavailable
    }
}
