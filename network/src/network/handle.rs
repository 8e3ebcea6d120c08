//! [`NetworkHandle`]: what the node and the dissemination layer call. It queues messages for
//! the writers, runs requests on sync streams, forwards bans and peer addresses to the
//! swarm driver, switches the partition filter, and reads the stats and the connected set.
//!
//! Invariant: sending never waits. A message joins its peer's queue at once or is refused,
//! and a refusal is counted with its reason (a retry of a message already counted is not
//! counted again); only `request`, `wait_connected` and `shutdown` await, each bounded by a
//! timeout or by the endpoint's own tasks.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use libp2p_stream::Control;
use ordo_types::{codec, PublicKey};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::delay::{LinkDelay, LinkDelays};
use super::filter::PeerFilter;
use super::requests::Lane;
use super::swarm::Command;
use super::writer::{PeerQueues, Queue};
use crate::batch::BatchMessage;
use crate::committee::Committee;
use crate::error::Error;
use crate::protocol::{Protocol, Request, Response, MAX_RESPONSE_BYTES};
use crate::send_queue::Refused;
use crate::stats::{DropReason, NetworkStats, StatsSnapshot};

/// A cheap, cloneable handle on a running endpoint.
#[derive(Clone)]
pub struct NetworkHandle {
    inner: Arc<Inner>,
}

/// The running endpoint's parts that the handle reaches, put together by
/// [`start`](super::start).
pub(super) struct Inner {
    pub(super) committee: Arc<Committee>,
    pub(super) local_index: Option<usize>,
    pub(super) peer_id: PeerId,
    pub(super) listen_addr: Multiaddr,
    /// By committee index; `None` at this endpoint's own.
    pub(super) queues: Vec<Option<PeerQueues>>,
    pub(super) control: Mutex<Control>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) stats: Arc<NetworkStats>,
    pub(super) connected: watch::Receiver<HashSet<usize>>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(super) request_timeout: Duration,
    /// By committee index, `None` at this endpoint's own: the request lanes.
    pub(super) lanes: Vec<Option<Lane>>,
    pub(super) filter: Arc<PeerFilter>,
    pub(super) delays: Arc<LinkDelays>,
}

impl NetworkHandle {
    pub(super) fn new(inner: Inner) -> NetworkHandle {
        NetworkHandle {
            inner: Arc::new(inner),
        }
    }

    pub fn committee(&self) -> &Arc<Committee> {
        &self.inner.committee
    }

    /// This endpoint's index in the committee, if it is a validator.
    pub fn local_index(&self) -> Option<usize> {
        self.inner.local_index
    }

    /// This endpoint's consensus key, if it is a validator.
    pub fn local_key(&self) -> Option<PublicKey> {
        self.inner
            .local_index
            .and_then(|i| self.inner.committee.get(i))
            .map(|v| v.consensus_key)
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The address actually listened on (with the port the OS chose).
    pub fn listen_addr(&self) -> &Multiaddr {
        &self.inner.listen_addr
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Validators currently connected, by committee index.
    pub fn connected(&self) -> HashSet<usize> {
        self.inner.connected.borrow().clone()
    }

    /// Waits until `pred` holds for the set of connected validators, or `within` passes.
    pub async fn wait_connected(
        &self,
        within: Duration,
        pred: impl Fn(&HashSet<usize>) -> bool,
    ) -> bool {
        let mut rx = self.inner.connected.clone();
        timeout(within, rx.wait_for(|set| pred(set)))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Queues a consensus message for one validator. Fails at once if its queue is full.
    pub fn send_consensus(&self, to: &PublicKey, bytes: Vec<u8>) -> Result<(), Error> {
        self.enqueue(to, Queue::Consensus, Arc::new(bytes))
    }

    /// Queues a consensus message for every other validator; returns how many queues took
    /// it (full queues drop it and count the drop).
    pub fn broadcast_consensus(&self, bytes: Vec<u8>) -> usize {
        self.broadcast(Queue::Consensus, Arc::new(bytes))
    }

    pub(crate) fn send_batch_message(
        &self,
        to: &PublicKey,
        message: &BatchMessage,
    ) -> Result<(), Error> {
        let queue = match message {
            BatchMessage::Ack(_) => Queue::Ack,
            BatchMessage::Batch(_) => Queue::Batch,
        };
        self.enqueue(to, queue, Arc::new(codec::encode(message)))
    }

    pub(crate) fn send_batch_bytes(
        &self,
        to: &PublicKey,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), Error> {
        self.enqueue(to, Queue::Batch, bytes)
    }

    /// Like `send_batch_bytes`, for a retry of a message already counted as dropped.
    pub(crate) fn retry_batch_bytes(
        &self,
        to: &PublicKey,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), Error> {
        let index = self
            .inner
            .committee
            .index_of_key(to)
            .ok_or(Error::UnknownValidator(*to))?;
        let Some(Some(queues)) = self.inner.queues.get(index) else {
            return Err(Error::UnknownValidator(*to));
        };
        if self.inner.filter.blocks(index) {
            return Ok(());
        }
        Queue::Batch
            .of(queues)
            .try_send(bytes)
            .map_err(|e| match e {
                Refused::Full => Error::QueueFull { peer: *to },
                Refused::Closed => Error::Shutdown,
            })
    }

    fn enqueue(&self, to: &PublicKey, queue: Queue, bytes: Arc<Vec<u8>>) -> Result<(), Error> {
        let protocol = queue.protocol();
        let index = self
            .inner
            .committee
            .index_of_key(to)
            .ok_or(Error::UnknownValidator(*to))?;
        let Some(Some(queues)) = self.inner.queues.get(index) else {
            return Err(Error::UnknownValidator(*to));
        };
        if self.inner.filter.blocks(index) {
            self.inner
                .stats
                .send_dropped(index, protocol, DropReason::Partitioned);
            return Ok(());
        }
        queue.of(queues).try_send(bytes).map_err(|e| match e {
            Refused::Full => {
                self.inner
                    .stats
                    .send_dropped(index, protocol, DropReason::QueueFull);
                Error::QueueFull { peer: *to }
            }
            Refused::Closed => Error::Shutdown,
        })
    }

    fn broadcast(&self, queue: Queue, bytes: Arc<Vec<u8>>) -> usize {
        let protocol = queue.protocol();
        let mut queued = 0;
        for (index, queues) in self.inner.queues.iter().enumerate() {
            let Some(queues) = queues else { continue };
            if self.inner.filter.blocks(index) {
                self.inner
                    .stats
                    .send_dropped(index, protocol, DropReason::Partitioned);
                continue;
            }
            match queue.of(queues).try_send(bytes.clone()) {
                Ok(()) => queued += 1,
                Err(Refused::Full) => {
                    self.inner
                        .stats
                        .send_dropped(index, protocol, DropReason::QueueFull)
                }
                Err(Refused::Closed) => {}
            }
        }
        queued
    }

    /// Sends one request to a validator and waits for its answer.
    pub async fn request(&self, to: &PublicKey, request: &Request) -> Result<Response, Error> {
        let index = self
            .inner
            .committee
            .index_of_key(to)
            .ok_or(Error::UnknownValidator(*to))?;
        let fail = |reason: String| Error::Request { peer: *to, reason };
        if self.inner.filter.blocks(index) {
            self.inner
                .stats
                .send_dropped(index, Protocol::Sync, DropReason::Partitioned);
            return Err(fail("partitioned".into()));
        }
        let Some(lane) = self.inner.lanes.get(index).and_then(Option::as_ref) else {
            return Err(fail("a request to this endpoint itself".into()));
        };
        // An injected link delay: the request's round trip, before it leaves.
        let delay = self.inner.delays.of(index);
        if !delay.is_none() {
            tokio::time::sleep(2 * delay.one_way + delay.jitter).await;
        }
        let control = self.inner.control.lock().clone();
        let answer = lane
            .request(
                &control,
                &self.inner.stats,
                &codec::encode(request),
                self.inner.request_timeout,
            )
            .await
            .map_err(fail)?;
        codec::decode::<Response, MAX_RESPONSE_BYTES>(&answer).map_err(|e| {
            self.inner.stats.decode_error(index, Protocol::Sync);
            fail(e.to_string())
        })
    }

    /// Dials validator `key` at `addr` from now on, instead of its genesis address (a
    /// validator that moved, or one whose port the OS chose).
    pub fn set_peer_address(&self, key: &PublicKey, addr: Multiaddr) -> Result<(), Error> {
        let i = self
            .inner
            .committee
            .index_of_key(key)
            .ok_or(Error::UnknownValidator(*key))?;
        self.inner
            .commands
            .send(Command::Address(i, addr))
            .map_err(|_| Error::Shutdown)
    }

    /// Drops all traffic to and from these validators (by committee index) from now on,
    /// and lets everyone else's through: a network partition for fault tests. An empty
    /// list heals. Returns the indices now blocked (unknown indices are ignored).
    pub fn set_partitioned(&self, indices: &[usize]) -> Vec<usize> {
        self.inner.filter.set(indices, self.inner.local_index);
        self.partitioned()
    }

    /// Adds `delay` to everything sent to the validators `indices` (every other one when
    /// `None`) from now on, for measurements under wide-area conditions; a zero delay
    /// removes it. Returns every peer's delay, by committee index.
    pub fn set_link_delay(&self, indices: Option<&[usize]>, delay: LinkDelay) -> Vec<LinkDelay> {
        self.inner.delays.set(indices, delay);
        self.inner.delays.all()
    }

    /// Every peer's injected delay, by committee index.
    pub fn link_delays(&self) -> Vec<LinkDelay> {
        self.inner.delays.all()
    }

    /// The validators whose traffic [`NetworkHandle::set_partitioned`] drops.
    pub fn partitioned(&self) -> Vec<usize> {
        self.inner.filter.blocked()
    }

    /// Counts a consensus message from `from` that the node could not decode, and drops
    /// the peer for the ban duration.
    pub fn report_bad_message(&self, from: &PublicKey) {
        if let Some(i) = self.inner.committee.index_of_key(from) {
            self.inner.stats.decode_error(i, Protocol::Consensus);
            let _ = self.inner.commands.send(Command::Ban(i));
        }
    }

    /// Stops every task of this endpoint and closes its listener and connections.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }
}
