//! The authenticated validator network: one libp2p swarm (TCP, noise, yamux) per endpoint.
//!
//! Invariants:
//! - Only peers whose libp2p identity is in the committee get a connection: the allow list
//!   denies everyone else right after the noise handshake, and inbound streams from an
//!   unknown peer are dropped as a second line.
//! - Every other validator has one send queue per long-lived protocol, bounded in
//!   messages and in bytes and drained by its own writer task; enqueueing never waits, so
//!   a slow or dead peer loses its own messages (counted) and never delays anyone else or
//!   grows memory.
//! - A validator that is not connected is dialled again with exponential back-off, so a
//!   restarted validator is reconnected.
//! - A peer that sends a frame over the limit or bytes that do not decode is counted,
//!   disconnected and refused for a while.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, identity, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use libp2p_stream::Control;
use ordo_types::{codec, PublicKey};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tracing::{debug, info, warn};

use crate::batch::BatchMessage;
use crate::framing::{read_frame, write_frame};
use crate::protocol::{
    Protocol, Request, Response, MAX_BATCH_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
use crate::send_queue::{self, QueueReceiver, QueueSender, Refused};
use crate::stats::{DropReason, NetworkStats};
use crate::{Committee, Error};

/// Sync requests served at the same time; further request streams are dropped.
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// How an endpoint runs; [`NetworkConfig::new`] gives workable defaults.
#[derive(Clone)]
pub struct NetworkConfig {
    /// This endpoint's libp2p identity.
    pub keypair: identity::Keypair,
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0` for a port chosen by the OS.
    pub listen_addr: Multiaddr,
    pub committee: Arc<Committee>,
    /// Consensus messages queued per peer before new ones are dropped...
    pub consensus_queue: usize,
    /// ...and the bytes they may hold.
    pub consensus_queue_bytes: usize,
    /// Batches queued per peer before new ones are dropped, and their bytes.
    pub batch_queue: usize,
    pub batch_queue_bytes: usize,
    /// Acknowledgements queued per peer; they go out before any queued batch.
    pub ack_queue: usize,
    /// Capacity of each channel towards the node and the dissemination layer...
    pub inbound_queue: usize,
    /// ...but received batch messages, which may be large, queue only this many.
    pub batch_inbound_queue: usize,
    /// A write that takes longer marks the peer's stream dead.
    pub write_timeout: Duration,
    pub request_timeout: Duration,
    pub dial_backoff_min: Duration,
    pub dial_backoff_max: Duration,
    /// How long a peer that sent garbage is refused.
    pub ban_duration: Duration,
}

impl NetworkConfig {
    pub fn new(
        keypair: identity::Keypair,
        listen_addr: Multiaddr,
        committee: Arc<Committee>,
    ) -> Self {
        NetworkConfig {
            keypair,
            listen_addr,
            committee,
            consensus_queue: 1024,
            // Four of the largest consensus frames; a round's traffic is a few KiB.
            consensus_queue_bytes: 16 << 20,
            batch_queue: 64,
            // Sixteen of the largest batches, some 400 of the usual ~150 KiB ones.
            batch_queue_bytes: 64 << 20,
            ack_queue: 1024,
            inbound_queue: 1024,
            batch_inbound_queue: 32,
            write_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            dial_backoff_min: Duration::from_millis(100),
            dial_backoff_max: Duration::from_secs(5),
            ban_duration: Duration::from_secs(30),
        }
    }
}

/// A request from a validator, to be answered through [`InboundRequest::respond`].
#[derive(Debug)]
pub struct InboundRequest {
    pub from: PublicKey,
    pub request: Request,
    reply: oneshot::Sender<Response>,
}

impl InboundRequest {
    pub fn respond(self, response: Response) {
        // The requester may have given up; nothing to do then.
        let _ = self.reply.send(response);
    }
}

/// What the network delivers; each channel is bounded and applies back-pressure to the
/// stream it reads from.
pub struct Inbound {
    /// Consensus messages: (sender's consensus key, opaque bytes).
    pub consensus: mpsc::Receiver<(PublicKey, Vec<u8>)>,
    /// Batches and acknowledgements, for the dissemination layer.
    pub batches: mpsc::Receiver<(PublicKey, BatchMessage)>,
    /// Requests for batches, for the dissemination layer.
    pub batch_requests: mpsc::Receiver<InboundRequest>,
    /// Opaque requests (blocks, for instance), for the node.
    pub requests: mpsc::Receiver<InboundRequest>,
}

/// A cheap, cloneable handle on a running endpoint.
#[derive(Clone)]
pub struct NetworkHandle {
    inner: Arc<Inner>,
}

struct PeerQueues {
    consensus: QueueSender,
    batch: QueueSender,
    ack: QueueSender,
}

/// Which of a peer's queues a message joins.
#[derive(Clone, Copy)]
enum Queue {
    Consensus,
    Batch,
    Ack,
}

impl Queue {
    fn protocol(self) -> Protocol {
        match self {
            Queue::Consensus => Protocol::Consensus,
            Queue::Batch | Queue::Ack => Protocol::Batch,
        }
    }

    fn of(self, queues: &PeerQueues) -> &QueueSender {
        match self {
            Queue::Consensus => &queues.consensus,
            Queue::Batch => &queues.batch,
            Queue::Ack => &queues.ack,
        }
    }
}

struct Inner {
    committee: Arc<Committee>,
    local_index: Option<usize>,
    peer_id: PeerId,
    listen_addr: Multiaddr,
    queues: Vec<Option<PeerQueues>>,
    control: Mutex<Control>,
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<NetworkStats>,
    connected: watch::Receiver<HashSet<usize>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    request_timeout: Duration,
    filter: Arc<PeerFilter>,
}

/// Validators whose traffic this endpoint drops, both ways: the test-only partition switch
/// behind [`NetworkHandle::set_partitioned`]. Connections stay up, as with a filtering
/// firewall, so healing needs no redial; nothing but a test or an operator's admin call
/// ever sets it.
struct PeerFilter {
    blocked: Vec<std::sync::atomic::AtomicBool>,
}

impl PeerFilter {
    fn new(size: usize) -> PeerFilter {
        PeerFilter {
            blocked: (0..size).map(|_| Default::default()).collect(),
        }
    }

    fn blocks(&self, index: usize) -> bool {
        self.blocked
            .get(index)
            .is_some_and(|b| b.load(std::sync::atomic::Ordering::Relaxed))
    }
}

enum Command {
    /// Disconnect and refuse this validator for the ban duration.
    Ban(usize),
    /// Dial this validator at another address from now on.
    Address(usize, Multiaddr),
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    stream: libp2p_stream::Behaviour,
}

/// Starts an endpoint: listens, dials the other validators and serves the protocols.
/// Returns once the listening address is known.
pub async fn start(config: NetworkConfig) -> Result<(NetworkHandle, Inbound), Error> {
    let committee = config.committee.clone();
    let peer_id = config.keypair.public().to_peer_id();
    let local_index = committee.index_of_peer(&peer_id);

    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|_| Behaviour {
            allow: Default::default(),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        // Validators stay connected: the long-lived streams keep connections busy, and an
        // idle one costs little next to a redial.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();

    for (i, v) in committee.validators().iter().enumerate() {
        swarm.behaviour_mut().allow.allow_peer(v.peer_id);
        if Some(i) != local_index {
            swarm.add_peer_address(v.peer_id, v.address.clone());
        }
    }

    swarm
        .listen_on(config.listen_addr.clone())
        .map_err(|e| Error::Listen {
            addr: config.listen_addr.to_string(),
            reason: e.to_string(),
        })?;
    let listen_addr = timeout(Duration::from_secs(10), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { reason: Err(e), .. } => return Err(e.to_string()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| "no listening address within 10 s".to_string())
    .and_then(|r| r)
    .map_err(|reason| Error::Listen {
        addr: config.listen_addr.to_string(),
        reason,
    })?;
    info!(%peer_id, %listen_addr, validator = ?local_index, "network listening");

    let stats = Arc::new(NetworkStats::new(committee.size()));
    let filter = Arc::new(PeerFilter::new(committee.size()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let (connected_tx, connected_rx) = watch::channel(HashSet::new());
    let mut control = swarm.behaviour().stream.new_control();
    let mut tasks = Vec::new();

    let (consensus_tx, consensus_rx) = mpsc::channel(config.inbound_queue);
    let (batches_tx, batches_rx) = mpsc::channel(config.batch_inbound_queue);
    let (batch_req_tx, batch_req_rx) = mpsc::channel(config.inbound_queue);
    let (req_tx, req_rx) = mpsc::channel(config.inbound_queue);
    let ctx = Arc::new(InboundCtx {
        committee: committee.clone(),
        stats: stats.clone(),
        commands: command_tx.clone(),
        consensus: consensus_tx,
        batches: batches_tx,
        batch_requests: batch_req_tx,
        requests: req_tx,
        request_timeout: config.request_timeout,
        write_timeout: config.write_timeout,
        filter: filter.clone(),
    });
    for protocol in [Protocol::Consensus, Protocol::Batch, Protocol::Sync] {
        let incoming = control
            .accept(protocol.stream_protocol())
            .map_err(|e| Error::Transport(e.to_string()))?;
        tasks.push(tokio::spawn(accept_loop(
            protocol,
            incoming,
            ctx.clone(),
            shutdown_rx.clone(),
        )));
    }

    let mut queues = Vec::with_capacity(committee.size());
    for (i, v) in committee.validators().iter().enumerate() {
        if Some(i) == local_index {
            queues.push(None);
            continue;
        }
        let mut spawn_writer = |protocol: Protocol, capacity: usize, bytes: usize, priority| {
            let (tx, rx) = send_queue::bounded(capacity, bytes);
            tasks.push(tokio::spawn(
                Writer {
                    index: i,
                    peer: v.peer_id,
                    protocol,
                    control: control.clone(),
                    stats: stats.clone(),
                    write_timeout: config.write_timeout,
                    backoff_min: config.dial_backoff_min,
                    backoff_max: config.dial_backoff_max,
                }
                .run(rx, priority, shutdown_rx.clone()),
            ));
            tx
        };
        // An acknowledgement is about 150 bytes: the count bounds the bytes.
        let (ack, acks) = send_queue::bounded(config.ack_queue, usize::MAX);
        queues.push(Some(PeerQueues {
            consensus: spawn_writer(
                Protocol::Consensus,
                config.consensus_queue,
                config.consensus_queue_bytes,
                None,
            ),
            batch: spawn_writer(
                Protocol::Batch,
                config.batch_queue,
                config.batch_queue_bytes,
                Some(acks),
            ),
            ack,
        }));
    }

    let driver = SwarmDriver {
        swarm,
        committee: committee.clone(),
        local_index,
        stats: stats.clone(),
        connected_tx,
        addresses: committee
            .validators()
            .iter()
            .map(|v| v.address.clone())
            .collect(),
        connections: vec![0; committee.size()],
        next_dial: vec![Instant::now(); committee.size()],
        backoff: vec![config.dial_backoff_min; committee.size()],
        banned_until: vec![None; committee.size()],
        backoff_min: config.dial_backoff_min,
        backoff_max: config.dial_backoff_max,
        ban_duration: config.ban_duration,
    };
    tasks.push(tokio::spawn(driver.run(command_rx, shutdown_rx)));

    let handle = NetworkHandle {
        inner: Arc::new(Inner {
            committee,
            local_index,
            peer_id,
            listen_addr,
            queues,
            control: Mutex::new(control),
            commands: command_tx,
            stats,
            connected: connected_rx,
            shutdown: shutdown_tx,
            tasks: Mutex::new(tasks),
            request_timeout: config.request_timeout,
            filter,
        }),
    };
    let inbound = Inbound {
        consensus: consensus_rx,
        batches: batches_rx,
        batch_requests: batch_req_rx,
        requests: req_rx,
    };
    Ok((handle, inbound))
}

impl NetworkHandle {
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

    pub fn stats(&self) -> crate::StatsSnapshot {
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
        queues.batch.try_send(bytes).map_err(|e| match e {
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
        let peer = self
            .inner
            .committee
            .get(index)
            .ok_or(Error::UnknownValidator(*to))?
            .peer_id;
        let fail = |reason: String| Error::Request { peer: *to, reason };
        if self.inner.filter.blocks(index) {
            self.inner
                .stats
                .send_dropped(index, Protocol::Sync, DropReason::Partitioned);
            return Err(fail("partitioned".into()));
        }
        let mut control = self.inner.control.lock().clone();
        let bytes = codec::encode(request);
        let exchange = async {
            let mut stream = control
                .open_stream(peer, Protocol::Sync.stream_protocol())
                .await
                .map_err(|e| fail(e.to_string()))?;
            write_frame(&mut stream, &bytes)
                .await
                .map_err(|e| fail(e.to_string()))?;
            self.inner.stats.bytes_out(Protocol::Sync, bytes.len());
            let mut buf = Vec::new();
            if !read_frame(&mut stream, MAX_RESPONSE_BYTES, &mut buf)
                .await
                .map_err(|e| fail(e.to_string()))?
            {
                return Err(fail("stream closed without an answer".into()));
            }
            self.inner.stats.bytes_in(Protocol::Sync, buf.len());
            let _ = stream.close().await;
            codec::decode::<Response, MAX_RESPONSE_BYTES>(&buf).map_err(|e| {
                if let Some(i) = self.inner.committee.index_of_key(to) {
                    self.inner.stats.decode_error(i, Protocol::Sync);
                }
                fail(e.to_string())
            })
        };
        timeout(self.inner.request_timeout, exchange)
            .await
            .map_err(|_| fail("timed out".into()))?
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
        for (i, blocked) in self.inner.filter.blocked.iter().enumerate() {
            let on = indices.contains(&i) && Some(i) != self.inner.local_index;
            blocked.store(on, std::sync::atomic::Ordering::Relaxed);
        }
        self.partitioned()
    }

    /// The validators whose traffic [`NetworkHandle::set_partitioned`] drops.
    pub fn partitioned(&self) -> Vec<usize> {
        (0..self.inner.filter.blocked.len())
            .filter(|&i| self.inner.filter.blocks(i))
            .collect()
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

struct SwarmDriver {
    swarm: Swarm<Behaviour>,
    committee: Arc<Committee>,
    local_index: Option<usize>,
    stats: Arc<NetworkStats>,
    connected_tx: watch::Sender<HashSet<usize>>,
    addresses: Vec<Multiaddr>,
    connections: Vec<u32>,
    next_dial: Vec<Instant>,
    backoff: Vec<Duration>,
    banned_until: Vec<Option<Instant>>,
    backoff_min: Duration,
    backoff_max: Duration,
    ban_duration: Duration,
}

impl SwarmDriver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.backoff_min.min(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                Some(command) = commands.recv() => match command {
                    Command::Ban(i) => self.ban(i),
                    Command::Address(i, addr) => self.set_address(i, addr),
                },
                _ = tick.tick() => self.dial_due(),
                _ = shutdown.changed() => break,
            }
        }
        debug!("network driver stopped");
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.committee.size() {
            if Some(i) == self.local_index {
                continue;
            }
            let Some(v) = self.committee.get(i) else {
                continue;
            };
            if let Some(until) = self.banned_until[i] {
                if until > now {
                    continue;
                }
                self.banned_until[i] = None;
                self.swarm.behaviour_mut().allow.allow_peer(v.peer_id);
            }
            if self.connections[i] > 0 || self.next_dial[i] > now {
                continue;
            }
            let opts = DialOpts::peer_id(v.peer_id)
                .addresses(vec![self.addresses[i].clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(peer = i, error = %e, "dial not started");
            }
            self.next_dial[i] = now + self.backoff[i];
            self.backoff[i] = (self.backoff[i] * 2).min(self.backoff_max);
        }
    }

    fn set_address(&mut self, i: usize, addr: Multiaddr) {
        let Some(v) = self.committee.get(i) else {
            return;
        };
        self.swarm.add_peer_address(v.peer_id, addr.clone());
        self.addresses[i] = addr;
        self.backoff[i] = self.backoff_min;
        self.next_dial[i] = Instant::now();
    }

    fn ban(&mut self, i: usize) {
        let Some(v) = self.committee.get(i) else {
            return;
        };
        warn!(peer = i, "dropping validator that sent undecodable data");
        self.stats.peer_dropped();
        self.banned_until[i] = Some(Instant::now() + self.ban_duration);
        self.swarm.behaviour_mut().allow.disallow_peer(v.peer_id);
    }

    fn publish_connected(&self) {
        let set: HashSet<usize> = (0..self.connections.len())
            .filter(|&i| self.connections[i] > 0)
            .collect();
        self.stats.set_connected(set.len());
        self.connected_tx.send_replace(set);
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                match self.committee.index_of_peer(&peer_id) {
                    Some(i) => {
                        self.connections[i] += 1;
                        self.backoff[i] = self.backoff_min;
                        debug!(peer = i, "connected");
                        self.publish_connected();
                    }
                    None => {
                        // The allow list should have denied it already.
                        self.stats.refused();
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                    }
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(i) = self.committee.index_of_peer(&peer_id) {
                    self.connections[i] = self.connections[i].saturating_sub(1);
                    if self.connections[i] == 0 {
                        debug!(peer = i, "disconnected");
                        self.next_dial[i] = Instant::now() + self.backoff[i];
                        self.publish_connected();
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    debug!(%send_back_addr, "refused a peer outside the validator set");
                    self.stats.refused();
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }
}

struct Writer {
    index: usize,
    peer: PeerId,
    protocol: Protocol,
    control: Control,
    stats: Arc<NetworkStats>,
    write_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl Writer {
    async fn run(
        mut self,
        mut queue: QueueReceiver,
        mut priority: Option<QueueReceiver>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut stream = None;
        let mut backoff = self.backoff_min;
        loop {
            let message = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(m) = recv_if_any(&mut priority) => m,
                m = queue.recv() => match m { Some(m) => m, None => break },
            };
            if stream.is_none() {
                let opened = timeout(
                    self.write_timeout,
                    self.control
                        .open_stream(self.peer, self.protocol.stream_protocol()),
                )
                .await;
                match opened {
                    Ok(Ok(s)) => {
                        stream = Some(s);
                        backoff = self.backoff_min;
                    }
                    _ => {
                        self.stats
                            .send_dropped(self.index, self.protocol, DropReason::Unreachable);
                        // Messages queued meanwhile are stale or will be dropped at the full
                        // queue; waiting here is what keeps a dead peer from costing CPU.
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {},
                            _ = shutdown.changed() => break,
                        }
                        backoff = (backoff * 2).min(self.backoff_max);
                        continue;
                    }
                }
            }
            let Some(s) = stream.as_mut() else { continue };
            match timeout(self.write_timeout, write_frame(s, &message)).await {
                Ok(Ok(())) => self.stats.bytes_out(self.protocol, message.len() + 4),
                _ => {
                    self.stats
                        .send_dropped(self.index, self.protocol, DropReason::WriteFailed);
                    stream = None;
                }
            }
        }
    }
}

/// The next message of an optional queue; never resolves without one.
async fn recv_if_any(queue: &mut Option<QueueReceiver>) -> Option<send_queue::Message> {
    match queue {
        Some(q) => q.recv().await,
        None => std::future::pending().await,
    }
}

struct InboundCtx {
    committee: Arc<Committee>,
    stats: Arc<NetworkStats>,
    commands: mpsc::UnboundedSender<Command>,
    consensus: mpsc::Sender<(PublicKey, Vec<u8>)>,
    batches: mpsc::Sender<(PublicKey, BatchMessage)>,
    batch_requests: mpsc::Sender<InboundRequest>,
    requests: mpsc::Sender<InboundRequest>,
    request_timeout: Duration,
    write_timeout: Duration,
    filter: Arc<PeerFilter>,
}

async fn accept_loop(
    protocol: Protocol,
    mut incoming: libp2p_stream::IncomingStreams,
    ctx: Arc<InboundCtx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut readers = tokio::task::JoinSet::new();
    // One reader per peer on a long-lived protocol: a peer opens a new stream only after
    // giving up on the old one, so the old reader is stale and must not hold memory.
    let mut current: HashMap<usize, tokio::task::AbortHandle> = HashMap::new();
    loop {
        let (peer, stream) = tokio::select! {
            s = incoming.next() => match s { Some(s) => s, None => break },
            _ = shutdown.changed() => break,
            // Reap finished readers so the set does not grow.
            Some(_) = readers.join_next(), if !readers.is_empty() => continue,
        };
        let Some(index) = ctx.committee.index_of_peer(&peer) else {
            ctx.stats.refused();
            continue;
        };
        if protocol == Protocol::Sync && readers.len() >= MAX_CONCURRENT_REQUESTS {
            debug!(
                peer = index,
                "too many requests in progress; stream dropped"
            );
            continue;
        }
        let ctx = ctx.clone();
        let handle = readers.spawn(async move {
            match protocol {
                Protocol::Sync => serve_request(index, stream, &ctx).await,
                _ => read_stream(protocol, index, stream, &ctx).await,
            }
        });
        if protocol != Protocol::Sync {
            if let Some(old) = current.insert(index, handle) {
                old.abort();
            }
        }
    }
    readers.abort_all();
}

fn misbehaved(ctx: &InboundCtx, index: usize, protocol: Protocol, what: &dyn std::fmt::Display) {
    warn!(peer = index, protocol = protocol.label(), error = %what, "bad input from validator");
    ctx.stats.decode_error(index, protocol);
    let _ = ctx.commands.send(Command::Ban(index));
}

async fn read_stream(
    protocol: Protocol,
    index: usize,
    mut stream: libp2p::Stream,
    ctx: &InboundCtx,
) {
    let Some(from) = ctx.committee.get(index).map(|v| v.consensus_key) else {
        return;
    };
    let mut buf = Vec::new();
    loop {
        match read_frame(&mut stream, protocol.max_frame(), &mut buf).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(crate::framing::FrameError::Io(e)) => {
                debug!(peer = index, error = %e, "stream ended");
                return;
            }
            Err(e) => return misbehaved(ctx, index, protocol, &e),
        }
        ctx.stats.bytes_in(protocol, buf.len() + 4);
        if ctx.filter.blocks(index) {
            continue;
        }
        let delivered = match protocol {
            Protocol::Consensus => ctx
                .consensus
                .send((from, std::mem::take(&mut buf)))
                .await
                .is_ok(),
            _ => match codec::decode::<BatchMessage, MAX_BATCH_MESSAGE_BYTES>(&buf) {
                Ok(message) => ctx.batches.send((from, message)).await.is_ok(),
                Err(e) => return misbehaved(ctx, index, protocol, &e),
            },
        };
        if !delivered {
            return;
        }
    }
}

async fn serve_request(index: usize, mut stream: libp2p::Stream, ctx: &InboundCtx) {
    let Some(from) = ctx.committee.get(index).map(|v| v.consensus_key) else {
        return;
    };
    let mut buf = Vec::new();
    match timeout(
        ctx.request_timeout,
        read_frame(&mut stream, MAX_REQUEST_BYTES, &mut buf),
    )
    .await
    {
        Ok(Ok(true)) => {}
        Ok(Err(e @ crate::framing::FrameError::TooLarge { .. })) => {
            return misbehaved(ctx, index, Protocol::Sync, &e)
        }
        _ => return,
    }
    ctx.stats.bytes_in(Protocol::Sync, buf.len() + 4);
    if ctx.filter.blocks(index) {
        return;
    }
    let request = match codec::decode::<Request, MAX_REQUEST_BYTES>(&buf) {
        Ok(r) => r,
        Err(e) => return misbehaved(ctx, index, Protocol::Sync, &e),
    };
    let (reply, answer) = oneshot::channel();
    let route = match request {
        Request::Batch(_) => &ctx.batch_requests,
        Request::Opaque(_) => &ctx.requests,
    };
    // A full queue means we are overloaded: say so rather than wait.
    let response = match route.try_send(InboundRequest {
        from,
        request,
        reply,
    }) {
        Ok(()) => timeout(ctx.request_timeout, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Response::Busy),
        Err(_) => Response::Busy,
    };
    let bytes = codec::encode(&response);
    if bytes.len() > MAX_RESPONSE_BYTES {
        warn!(
            peer = index,
            len = bytes.len(),
            "response over the limit not sent"
        );
        return;
    }
    if let Ok(Ok(())) = timeout(ctx.write_timeout, write_frame(&mut stream, &bytes)).await {
        ctx.stats.bytes_out(Protocol::Sync, bytes.len() + 4);
        let _ = stream.close().await;
    }
}
