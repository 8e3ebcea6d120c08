//! Block sync, off the consensus thread: answering peers' block requests, and carrying
//! the replica's own requests to the peer it named.
//!
//! ```text
//! replica KeepBlock ──▶ driver ──▶ BlockServer (thread) ◀── peers' block requests (sync protocol)
//!                                   kept blocks, then RocksDB ──▶ answer (sync::answer)
//! replica BlockRequest to P ──▶ driver ──▶ fetch task ──▶ sync-protocol request to P
//!                                        P's blocks ──▶ driver, as P's BlockResponse
//! replica CatchUpRequest to P ─▶ (the same path) ─▶ P's committed blocks after the one
//!                                        named, oldest first ──▶ driver, as P's CatchUpResponse
//! ```
//!
//! Why not on the consensus thread: one request may read 128 blocks from RocksDB, so a
//! replica that answered requests could be slowed at will by any validator. On the sync
//! protocol every request has its own stream: an answer (up to [`MAX_SYNC_BYTES`]) never
//! queues ahead of votes on the consensus stream, and it can only come from the peer
//! asked.
//!
//! Invariants: the server's memory is bounded ([`KEPT_BYTES`] of kept blocks, the oldest
//! dropped first: committed blocks are in RocksDB anyway); each peer is served at most
//! [`PEER_BYTES_PER_SECOND`] after a burst of [`PEER_BURST_BYTES`], and is told `Busy`
//! beyond; the driver never waits on either side (full channels drop, and are counted:
//! the replica asks again after a round timeout).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::{sync, Block, Message};
use ordo_network::{InboundRequest, NetworkHandle, Request, Response};
use ordo_storage::Storage;
use ordo_types::{codec, Hash32, PublicKey};
use tokio::sync::mpsc;
use tracing::debug;

use crate::driver_input::DriverInput;
use crate::supervisor::TaskError;
use crate::wire::{NodeRequest, NodeResponse};

/// The most blocks in one answer: the requester's `sync_batch` (128 by default), which it
/// also enforces.
pub const MAX_SYNC_BLOCKS: usize = 128;
/// A quarter of the sync protocol's response limit (8 MiB), so an answer of blocks with
/// full payloads (1,024 digests, 32 KiB each) still fits with room to spare.
pub const MAX_SYNC_BYTES: usize = 2 << 20;
/// Kept blocks held in memory: about a minute of full blocks at the chain's usual 37
/// blocks a second, far more than the uncommitted tail that only memory can serve.
pub const KEPT_BYTES: usize = 64 << 20;
/// What one peer may be sent per second: a laggard catches up at over ten times the rate
/// the chain grows even with full blocks, while one validator asking in a loop costs this
/// node at most a few percent of a core in reads.
pub const PEER_BYTES_PER_SECOND: f64 = 16.0 * (1 << 20) as f64;
/// A burst of two full answers.
pub const PEER_BURST_BYTES: f64 = 2.0 * MAX_SYNC_BYTES as f64;
/// Work queued for the server (kept blocks and requests). A request that finds it full
/// is answered `Busy`.
const SERVER_QUEUE: usize = 4_096;
/// The replica's requests waiting to go out, and requests out at once. Beyond them a
/// request is dropped: the replica asks again after a round timeout.
const FETCH_QUEUE: usize = 256;
const FETCHES_IN_FLIGHT: usize = 16;

/// What a peer's block request asks for.
#[derive(Clone, Copy, Debug)]
pub enum BlockAsk {
    /// A block and its ancestors above a round, newest first (kept blocks or RocksDB).
    Ancestors { block_id: Hash32, above_round: u64 },
    /// The committed chain after a committed block, oldest first (RocksDB only: only
    /// what is committed here is served forward).
    After(Hash32),
}

/// What the block server works on, in arrival order.
enum ServerInput {
    Keep(Block),
    Request {
        from: PublicKey,
        ask: BlockAsk,
        max: u16,
        request: InboundRequest,
    },
}

/// The driver's and the request router's handle on block sync.
#[derive(Clone)]
pub struct BlockSync {
    server: mpsc::Sender<ServerInput>,
    fetch: mpsc::Sender<(PublicKey, NodeRequest)>,
    /// The fetch loop's own parts, taken once by [`BlockSync::fetch_loop`].
    fetcher: Arc<parking_lot::Mutex<Option<Fetcher>>>,
}

/// What the fetch loop needs.
struct Fetcher {
    network: NetworkHandle,
    storage: Storage,
    requests: mpsc::Receiver<(PublicKey, NodeRequest)>,
    driver: mpsc::Sender<DriverInput>,
}

/// What the fetch loop learns from catch-up answers.
enum CatchUpNews {
    /// A peer's answer that the committed chain after `after` is pruned there.
    Pruned {
        peer: PublicKey,
        after: Hash32,
        oldest: u64,
    },
    /// A peer served committed blocks: this node is not stuck.
    Served,
}

/// How long a peer's "pruned" answer counts: the node stops only when f + 1 peers said
/// so within this time and none served blocks meanwhile.
const PRUNED_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

impl BlockSync {
    /// The handle, and the server to run on a thread of its own; answers to the
    /// replica's requests go to `driver` once [`BlockSync::fetch_loop`] runs. `genesis`
    /// is the id of the chain's genesis block (committed height 0).
    pub fn new(
        storage: Storage,
        genesis: Hash32,
        network: NetworkHandle,
        driver: mpsc::Sender<DriverInput>,
    ) -> (BlockSync, BlockServer) {
        let (server_tx, server_rx) = mpsc::channel(SERVER_QUEUE);
        let (fetch_tx, fetch_rx) = mpsc::channel(FETCH_QUEUE);
        let fetcher = Fetcher {
            network,
            storage: storage.clone(),
            requests: fetch_rx,
            driver,
        };
        (
            BlockSync {
                server: server_tx,
                fetch: fetch_tx,
                fetcher: Arc::new(parking_lot::Mutex::new(Some(fetcher))),
            },
            BlockServer::new(storage, genesis, server_rx),
        )
    }

    /// Sends the replica's requests, a bounded number at a time, and hands each answer
    /// to the driver in the name of the peer that gave it. Runs once.
    pub async fn fetch_loop(self) -> Result<(), TaskError> {
        let Some(fetcher) = self.fetcher.lock().take() else {
            return Err(TaskError::Invariant(
                "the block fetch loop runs once".into(),
            ));
        };
        drop(self);
        fetch_loop(fetcher).await
    }

    /// A block joined the replica's tree.
    pub fn keep(&self, block: Block) {
        if self.server.try_send(ServerInput::Keep(block)).is_err() {
            metrics::counter!("ordo_node_sync_kept_dropped_total").increment(1);
        }
    }

    /// The replica asks `to` for blocks (a [`NodeRequest::Blocks`] or
    /// [`NodeRequest::CommittedAfter`]).
    pub fn request(&self, to: PublicKey, request: NodeRequest) {
        if self.fetch.try_send((to, request)).is_err() {
            metrics::counter!("ordo_node_sync_requests_dropped_total").increment(1);
        }
    }

    /// A peer's block request, from the sync protocol.
    pub fn serve(&self, request: InboundRequest, ask: BlockAsk, max: u16) {
        let input = ServerInput::Request {
            from: request.from,
            ask,
            max,
            request,
        };
        if let Err(e) = self.server.try_send(input) {
            if let ServerInput::Request { request, .. } = e.into_inner() {
                metrics::counter!("ordo_node_sync_served_total", "outcome" => "busy").increment(1);
                request.respond(Response::Busy);
            }
        }
    }
}

/// Bytes a peer may still be sent, refilled with time.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes `bytes` if the bucket is not empty (it may go below zero: a large answer
    /// is paid for by the next requests' waits).
    fn take(&mut self, now: Instant, bytes: impl FnOnce() -> usize) -> bool {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * PEER_BYTES_PER_SECOND).min(PEER_BURST_BYTES);
        if self.tokens <= 0.0 {
            return false;
        }
        self.tokens -= bytes() as f64;
        true
    }
}

/// Answers block requests from kept blocks and RocksDB.
pub struct BlockServer {
    storage: Storage,
    /// Height 0 of the committed chain, which storage does not hold.
    genesis: Hash32,
    inputs: mpsc::Receiver<ServerInput>,
    kept: HashMap<Hash32, (Block, usize)>,
    kept_order: VecDeque<Hash32>,
    kept_bytes: usize,
    buckets: HashMap<PublicKey, Bucket>,
}

impl BlockServer {
    fn new(storage: Storage, genesis: Hash32, inputs: mpsc::Receiver<ServerInput>) -> Self {
        BlockServer {
            storage,
            genesis,
            inputs,
            kept: HashMap::new(),
            kept_order: VecDeque::new(),
            kept_bytes: 0,
            buckets: HashMap::new(),
        }
    }

    /// Serves until every handle is gone (a shutdown).
    pub fn run(mut self) -> Result<(), TaskError> {
        while let Some(input) = self.inputs.blocking_recv() {
            match input {
                ServerInput::Keep(block) => self.keep(block),
                ServerInput::Request {
                    from,
                    ask,
                    max,
                    request,
                } => {
                    let response = self.answer(from, ask, max);
                    request.respond(response);
                }
            }
        }
        debug!("block server stopped");
        Ok(())
    }

    fn keep(&mut self, block: Block) {
        let id = block.id();
        if self.kept.contains_key(&id) {
            return;
        }
        let size = codec::encode(&block).len();
        self.kept.insert(id, (block, size));
        self.kept_order.push_back(id);
        self.kept_bytes += size;
        while self.kept_bytes > KEPT_BYTES {
            let Some(old) = self.kept_order.pop_front() else {
                break;
            };
            if let Some((_, size)) = self.kept.remove(&old) {
                self.kept_bytes -= size;
            }
        }
    }

    /// The oldest height kept, when the block after `after` is pruned here: `after` is
    /// not known as committed (its entry pruned, or never here) while history is pruned,
    /// or it is known but the next height is below the oldest kept.
    fn pruned_after(&self, after: &Hash32) -> Option<u64> {
        let oldest = self.storage.pruned_below().ok()?;
        if oldest == 0 {
            return None;
        }
        let height = if *after == self.genesis {
            Some(0)
        } else {
            self.storage.committed_height_of(after).ok()?
        };
        match height {
            Some(h) if h + 1 >= oldest => None,
            _ => Some(oldest),
        }
    }

    fn answer(&mut self, from: PublicKey, ask: BlockAsk, max: u16) -> Response {
        if let BlockAsk::After(after) = ask {
            if let Some(oldest) = self.pruned_after(&after) {
                metrics::counter!("ordo_node_sync_served_total", "outcome" => "pruned")
                    .increment(1);
                return Response::Opaque(NodeResponse::Pruned { oldest }.encode());
            }
        }
        let now = Instant::now();
        let bucket = self.buckets.entry(from).or_insert(Bucket {
            tokens: PEER_BURST_BYTES,
            at: now,
        });
        // The bucket is charged after the walk, with what was actually sent.
        let mut sent = 0;
        let mut blocks = Vec::new();
        let (kept, storage, genesis) = (&self.kept, &self.storage, self.genesis);
        let max = usize::from(max).min(MAX_SYNC_BLOCKS);
        let served = bucket.take(now, || {
            blocks = match ask {
                BlockAsk::Ancestors {
                    block_id,
                    above_round,
                } => sync::answer(
                    |id| match kept.get(id) {
                        Some((b, size)) => Some((b.clone(), *size)),
                        None => stored_block(storage, id),
                    },
                    block_id,
                    above_round,
                    max,
                    MAX_SYNC_BYTES,
                ),
                BlockAsk::After(after) => sync::answer_after(
                    |id| {
                        if *id == genesis {
                            Some(0)
                        } else {
                            storage.committed_height_of(id).ok().flatten()
                        }
                    },
                    |height| committed_block_at(storage, height),
                    after,
                    max,
                    MAX_SYNC_BYTES,
                ),
            };
            sent = blocks.iter().map(|b| codec::encode(b).len()).sum();
            sent
        });
        if !served {
            metrics::counter!("ordo_node_sync_served_total", "outcome" => "rate_limited")
                .increment(1);
            return Response::Busy;
        }
        metrics::counter!("ordo_node_sync_served_total", "outcome" => "answered").increment(1);
        metrics::counter!("ordo_node_sync_served_bytes_total").increment(sent as u64);
        Response::Opaque(NodeResponse::Blocks(blocks).encode())
    }
}

/// The committed block at `height` from RocksDB, with its encoded size.
fn committed_block_at(storage: &Storage, height: u64) -> Option<(Block, usize)> {
    let (hash, encoded) = storage.block_at(height).ok().flatten()?;
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&encoded).ok()?;
    (block.id() == hash).then_some((block, encoded.len()))
}

/// A committed block from RocksDB, with its encoded size.
fn stored_block(storage: &Storage, id: &Hash32) -> Option<(Block, usize)> {
    let encoded = storage.block(id).ok().flatten()?;
    let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&encoded).ok()?;
    (block.id() == *id).then_some((block, encoded.len()))
}

async fn fetch_loop(fetcher: Fetcher) -> Result<(), TaskError> {
    let Fetcher {
        network,
        storage,
        mut requests,
        driver,
    } = fetcher;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(FETCHES_IN_FLIGHT));
    let (pruned_tx, mut pruned_rx) = mpsc::channel::<CatchUpNews>(FETCHES_IN_FLIGHT);
    let trust = network.committee().validators().len().saturating_sub(1) / 3 + 1;
    // Peers that recently answered "pruned", with their oldest height and when.
    let mut pruned_at: HashMap<PublicKey, (u64, Instant)> = HashMap::new();
    loop {
        let (peer, request) = tokio::select! {
            next = requests.recv() => match next {
                Some(next) => next,
                None => break,
            },
            Some(news) = pruned_rx.recv() => {
                let CatchUpNews::Pruned { peer, after, oldest } = news else {
                    pruned_at.clear();
                    continue;
                };
                // Counted only if the blocks this node lacks are below the peer's oldest
                // (a peer behind this node does not know its last block either).
                let lacking = storage.committed_height_of(&after).ok().flatten();
                if lacking.is_some_and(|h| h + 1 < oldest) {
                    pruned_at.insert(peer, (oldest, Instant::now()));
                }
                pruned_at.retain(|_, (_, at)| at.elapsed() < PRUNED_MEMORY);
                // A Byzantine peer's say-so is one of the f + 1. The stop is no wipe: at
                // the restart every peer is asked, and the store is emptied only if none
                // serves the blocks and f + 1 offer a snapshot above them.
                if pruned_at.len() >= trust {
                    let oldest = pruned_at.values().map(|(o, _)| *o).min().unwrap_or_default();
                    return Err(TaskError::Invariant(format!(
                        "this validator is behind the history its peers keep: {} of them \
                         pruned the blocks after its last commit at height {} (the oldest \
                         they keep is {oldest}) and none served them meanwhile; restart \
                         it: at start it restores a snapshot its peers offer",
                        pruned_at.len(),
                        lacking.unwrap_or_default()
                    )));
                }
                continue;
            }
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            metrics::counter!("ordo_node_sync_requests_dropped_total").increment(1);
            continue;
        };
        let network = network.clone();
        let driver = driver.clone();
        let pruned = pruned_tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let after = match &request {
                NodeRequest::CommittedAfter { after, .. } => Some(*after),
                _ => None,
            };
            let answer = network
                .request(&peer, &Request::Opaque(request.encode()))
                .await;
            let blocks = match answer {
                Ok(Response::Opaque(bytes)) => match NodeResponse::decode(&bytes) {
                    Ok(NodeResponse::Blocks(blocks)) => blocks,
                    Ok(NodeResponse::Pruned { oldest }) => {
                        metrics::counter!("ordo_node_sync_fetches_total", "outcome" => "pruned")
                            .increment(1);
                        if let Some(after) = after {
                            let _ = pruned
                                .send(CatchUpNews::Pruned {
                                    peer,
                                    after,
                                    oldest,
                                })
                                .await;
                        }
                        return;
                    }
                    Ok(_) | Err(_) => {
                        metrics::counter!("ordo_node_bad_messages_total").increment(1);
                        network.report_bad_message(&peer);
                        return;
                    }
                },
                Ok(Response::Busy) => {
                    metrics::counter!("ordo_node_sync_fetches_total", "outcome" => "busy")
                        .increment(1);
                    return;
                }
                Ok(_) => return,
                Err(e) => {
                    debug!(%peer, error = %e, "block request failed");
                    metrics::counter!("ordo_node_sync_fetches_total", "outcome" => "failed")
                        .increment(1);
                    return;
                }
            };
            if blocks.is_empty() {
                // The replica asks again only after a base timeout: count these apart.
                metrics::counter!("ordo_node_sync_fetches_total", "outcome" => "empty")
                    .increment(1);
                return;
            }
            metrics::counter!("ordo_node_sync_fetches_total", "outcome" => "answered").increment(1);
            let message = match after {
                Some(after) => {
                    metrics::counter!("ordo_node_catch_up_blocks_fetched_total")
                        .increment(blocks.len() as u64);
                    let _ = pruned.try_send(CatchUpNews::Served);
                    Message::CatchUpResponse { after, blocks }
                }
                None => Message::BlockResponse { blocks },
            };
            let _ = driver
                .send(DriverInput::Message {
                    from: peer,
                    message,
                })
                .await;
        });
    }
    // Every handle (the driver's) is gone: a shutdown.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_peer_is_served_a_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: PEER_BURST_BYTES,
            at: start,
        };
        let full = MAX_SYNC_BYTES;
        assert!(bucket.take(start, || full));
        assert!(bucket.take(start, || full));
        assert!(!bucket.take(start, || full), "the burst is spent");
        // Half an answer's worth of time later, one more answer, paid for in advance.
        let later = start + Duration::from_secs_f64(full as f64 / 2.0 / PEER_BYTES_PER_SECOND);
        assert!(bucket.take(later, || full));
        assert!(!bucket.take(later, || full));
    }
}
