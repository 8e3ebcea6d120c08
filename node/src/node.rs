//! One validator process: start-up (storage and recovery, genesis, network, consensus,
//! execution, RPC), the wiring between them, and graceful shutdown.
//!
//! ```text
//! network consensus bytes ─▶ inbound ─┬─ proposals' batches ─▶ Batches (fetch) ─▶ PayloadReady ─┐
//!                                     ├─ state roots ─▶ RootTracker                              │
//!                                     └─ messages ─────────────────────────────▶ Driver (thread) ◀┘
//! own batch proofs ─▶ (held while execution lags) ─▶ PayloadReady ─▶ Driver
//! peers' pushed batches ─▶ offers (each author's in sequence, held while execution lags)
//!                      ─▶ PayloadReady ─▶ Driver (any leader proposes what it holds)
//! Driver: Persist (fsync) ▸ Send ▸ Commit (record in RocksDB, raise committed height)
//! committed height ─▶ Pipeline: fetch ─▶ execute ─▶ commit ─▶ executed height, state root
//! RPC ─▶ Mempool ─▶ Dissemination (batches, acks, proofs)
//! ```
//!
//! Invariant: the node stops (and `run` returns an error) on the first fatal storage or
//! execution failure, so it never continues on state it could not persist.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use ordo_consensus::messages::MAX_MESSAGE_BYTES;
use ordo_consensus::{
    Block, Committee as ConsensusCommittee, LeaderPolicy, Message, Replica, SafetyData,
};
use ordo_execution::{genesis, ParallelExecutor, ParallelOptions};
use ordo_network::{
    Dissemination, DisseminationConfig, Mempool, MempoolConfig, NetworkConfig, NetworkHandle,
};
use ordo_storage::{BlockCommit, Storage, StorageConfig};
use ordo_types::{codec, keyfile, Hash32, StateAccumulator};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{info, warn};

use crate::batches::Batches;
use crate::block_sync::BlockSync;
use crate::config::{LeaderPolicyName, NodeConfig};
use crate::driver::{Driver, DriverInput};
use crate::error::{NodeError, Result};
use crate::genesis::GenesisFile;
use crate::pipeline::{on_verdict, Pipeline};
use crate::roots::RootTracker;
use crate::rpc::{self, RpcState};
use crate::shared::{ExecutedTip, Shared};
use crate::wire::NodeMessage;

/// Committed blocks handed to a restarted replica (leader reputation needs its window).
const RESTORE_TAIL: u64 = 256;
/// Proposals whose payload waits to be fetched. One proposal a round asks at most, so a
/// backlog means the fetcher is stuck; dropping then costs a vote, not memory.
const PAYLOAD_FETCH_QUEUE: usize = 64;

/// Runs a validator until SIGTERM, Ctrl-C or a fatal error.
pub async fn run(config: NodeConfig) -> Result<()> {
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NodeError::Other(format!("cannot watch SIGTERM: {e}")))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("Ctrl-C: shutting down"),
            _ = term.recv() => info!("SIGTERM: shutting down"),
        }
        Ok::<(), NodeError>(())
    };
    run_until(config, stop).await
}

/// Runs a validator until `stop` resolves (or a fatal error).
pub async fn run_until(
    config: NodeConfig,
    stop: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let node = start(config).await?;
    let shared = node.shared.clone();
    let fatal = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(reason) = shared.fatal.lock().clone() {
                return reason;
            }
        }
    };
    let outcome = tokio::select! {
        r = stop => r,
        reason = fatal => Err(NodeError::Other(reason)),
    };
    node.shutdown().await;
    outcome
}

/// The prometheus recorder is process-wide: install it once.
fn prometheus() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .clone()
}

/// A started validator.
pub struct RunningNode {
    pub shared: Arc<Shared>,
    pub network: NetworkHandle,
    pub rpc_addr: std::net::SocketAddr,
    dissemination: Dissemination,
    shutdown: watch::Sender<bool>,
    driver: std::thread::JoinHandle<()>,
    block_server: std::thread::JoinHandle<()>,
    pipeline: crate::pipeline::PipelineHandles,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the store, creating the genesis state on a fresh one; returns the store, the
/// executed tip and the accumulator of the executed state.
fn open_storage(
    config: &NodeConfig,
    genesis_file: &GenesisFile,
) -> Result<(Storage, ExecutedTip, StateAccumulator)> {
    let mut storage_config = if config.storage.small_caches {
        StorageConfig::small()
    } else {
        StorageConfig::default()
    };
    storage_config.sync_commits = config.storage.sync_commits;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Write {
        path: config.data_dir.clone(),
        source,
    })?;
    let (storage, recovery) = Storage::open(&config.data_dir, storage_config)?;
    let initial = genesis(&genesis_file.state_spec())?;
    let genesis_block = Block::genesis(genesis_file.epoch);
    let genesis_id = genesis_block.id();
    let Some(last_executed) = recovery.last_executed else {
        info!(root = %initial.state_root, "writing the genesis state");
        storage.record_committed(0, &genesis_id, Some(&codec::encode(&genesis_block)), None)?;
        let commit = BlockCommit {
            height: 0,
            block_hash: genesis_id,
            state_writes: initial
                .to_bytes()
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
            transactions: Vec::new(),
            accumulator: initial.accumulator.clone(),
        };
        storage.commit_executed(&commit)?;
        return Ok((
            storage,
            ExecutedTip {
                height: 0,
                state_root: initial.state_root,
                timestamp_ms: 0,
            },
            initial.accumulator,
        ));
    };
    let stored_genesis = storage.state_root_at(0)?;
    if stored_genesis != Some(initial.state_root) || storage.block_hash_at(0)? != Some(genesis_id) {
        return Err(NodeError::Other(format!(
            "{} holds another chain's data (its genesis differs from {})",
            config.data_dir.display(),
            config.genesis.display()
        )));
    }
    let timestamp_ms = storage
        .block_at(last_executed)?
        .and_then(|(_, b)| codec::decode::<Block, MAX_MESSAGE_BYTES>(&b).ok())
        .map_or(0, |b| b.timestamp_ms);
    info!(
        last_executed,
        last_committed = ?recovery.last_committed,
        pending = recovery.pending.len(),
        root = %recovery.state_root,
        "resuming from storage"
    );
    Ok((
        storage,
        ExecutedTip {
            height: last_executed,
            state_root: recovery.state_root,
            timestamp_ms,
        },
        recovery.accumulator,
    ))
}

fn consensus_config(config: &NodeConfig, n: usize) -> ordo_consensus::Config {
    let mut c = ordo_consensus::Config::new(n);
    c.base_timeout_ms = config.consensus.base_timeout_ms;
    c.max_timeout_exponent = config.consensus.max_timeout_exponent;
    c.max_batch_delay_ms = config.consensus.max_batch_delay_ms;
    c.max_payload = config.consensus.max_payload;
    c.block_retention = config.consensus.block_retention;
    c.leader_policy = match config.consensus.leader_policy {
        LeaderPolicyName::RoundRobin => LeaderPolicy::RoundRobin,
        LeaderPolicyName::Reputation => LeaderPolicy::reputation(n),
    };
    c
}

/// The replica as storage left it: safety data and the recent committed chain.
fn restore_replica(
    config: &NodeConfig,
    storage: &Storage,
    committee: ConsensusCommittee,
    key: ordo_types::KeyPair,
) -> Result<(Replica<ordo_types::KeyPair>, u64)> {
    let epoch = committee.epoch();
    let safety = match storage.safety_data()? {
        Some(bytes) => SafetyData::from_bytes(&bytes)?,
        None => SafetyData::new(epoch),
    };
    let last_committed = storage.last_committed().unwrap_or(0);
    let mut tail = Vec::new();
    for h in last_committed.saturating_sub(RESTORE_TAIL)..=last_committed {
        if let Some((_, bytes)) = storage.block_at(h)? {
            let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| {
                NodeError::Other(format!("committed block {h} does not decode: {e}"))
            })?;
            tail.push(block);
        }
    }
    info!(
        last_voted_round = safety.last_voted_round,
        high_qc = %safety.high_qc,
        last_committed,
        "consensus restored"
    );
    let cfg = consensus_config(config, committee.size());
    Ok((
        Replica::restore(cfg, committee, key, safety, tail),
        last_committed + 1,
    ))
}

/// Starts every part of a validator and returns once the RPC listens.
pub async fn start(config: NodeConfig) -> Result<RunningNode> {
    let genesis_file = GenesisFile::load(&config.genesis)?;
    let key = keyfile::read(&config.validator_key)?;
    let network_key = keyfile::read(&config.network_key)?;
    let consensus_committee = genesis_file.consensus_committee()?;
    if consensus_committee.index_of(&key.public()).is_none() {
        return Err(NodeError::Other(format!(
            "{} is not a validator key of this genesis",
            config.validator_key.display()
        )));
    }
    let prometheus = prometheus();
    let (storage, tip, accumulator) = open_storage(&config, &genesis_file)?;
    if genesis_file.ordering_only {
        warn!("ordering-only network: payloads are ordered and stored, never verified or executed");
    }

    let overrides: Vec<_> = config
        .network
        .peers
        .iter()
        .map(|p| (p.consensus_key, p.address.clone()))
        .collect();
    let net_committee = genesis_file.network_committee(&overrides)?;
    let quorum = consensus_committee.quorum();
    #[cfg(feature = "byzantine")]
    let misbehaviour = config.byzantine.clone().map(|section| {
        crate::byzantine::announce(&section);
        crate::byzantine::Misbehaviour::new(
            section,
            key.clone(),
            consensus_committee.epoch(),
            consensus_committee.validators().to_vec(),
        )
    });
    let (replica, next_height) =
        restore_replica(&config, &storage, consensus_committee, key.clone())?;

    let (committed_tx, _) = watch::channel(next_height - 1);
    let (executed_tx, _) = watch::channel(tip);
    let shared = Arc::new(Shared {
        chain_id: genesis_file.chain_id,
        storage: storage.clone(),
        committed: committed_tx,
        executed: executed_tx,
        round: AtomicU64::new(0),
        stop_voting: AtomicBool::new(false),
        fatal: Mutex::new(None),
        pending: Mutex::new(HashMap::new()),
        roots: Mutex::new(RootTracker::new(quorum, Some(key.public()))),
        max_lag: config.execution.max_lag_blocks,
        certified_round: AtomicU64::new(0),
        committed_round: AtomicU64::new(0),
        recent_blocks: Mutex::new(VecDeque::new()),
    });

    let identity = crate::localnet::network_identity(&network_key);
    let net_config = NetworkConfig::new(identity, config.network.listen.clone(), net_committee);
    let (network, inbound) = ordo_network::start(net_config).await?;
    info!(
        peer_id = %network.peer_id(),
        listen = %network.listen_addr(),
        validator = ?network.local_index(),
        "network listening"
    );

    let mut mempool_config = MempoolConfig::new(genesis_file.chain_id);
    mempool_config.max_transactions = config.mempool.max_transactions;
    mempool_config.max_per_sender = config.mempool.max_per_sender;
    mempool_config.nonce_window = config.mempool.nonce_window;
    let mempool = Arc::new(Mempool::new(mempool_config));
    let diss_config = DisseminationConfig {
        max_batch_txs: config.mempool.max_batch_txs,
        max_batch_delay: Duration::from_millis(config.mempool.max_batch_delay_ms),
        accept_opaque: genesis_file.ordering_only,
        #[cfg(feature = "byzantine")]
        byzantine: config
            .byzantine
            .as_ref()
            .map(crate::byzantine::batches)
            .unwrap_or_default(),
        ..DisseminationConfig::default()
    };
    let (dissemination, outputs) = Dissemination::spawn(
        diss_config,
        key.clone(),
        network.clone(),
        inbound.batches,
        inbound.batch_requests,
        mempool.clone(),
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (driver_tx, driver_rx) = mpsc::channel::<DriverInput>(4096);
    let (offers_tx, offers_rx) = mpsc::channel(4096);
    let consensus_pool = consensus_config(&config, network.committee().validators().len()).max_pool;
    let batches = Batches::new(
        dissemination.store().clone(),
        storage.clone(),
        network.clone(),
        driver_tx.clone(),
        offers_tx,
        genesis_file.ordering_only,
    );
    #[cfg(feature = "byzantine")]
    if let Some(section) = &config.byzantine {
        batches.set_withhold(section.has(crate::config::Behaviour::WithholdBatches));
    }
    let mut servers = Vec::new();
    if let Some(handle) = prometheus.clone() {
        // Histograms accumulate until drained; the recorder leaves draining to its owner.
        servers.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        }));
    }
    let (block_sync, block_server) =
        BlockSync::spawn(storage.clone(), network.clone(), driver_tx.clone())
            .map_err(|e| NodeError::Other(format!("cannot start the block server: {e}")))?;
    servers.push(tokio::spawn(
        batches.clone().serve(inbound.requests, block_sync.clone()),
    ));
    let (fetch_payload_tx, mut fetch_payload_rx) =
        mpsc::channel::<(ordo_types::PublicKey, Vec<Hash32>)>(PAYLOAD_FETCH_QUEUE);
    let fetcher = batches.clone();
    servers.push(tokio::spawn(async move {
        while let Some((proposer, digests)) = fetch_payload_rx.recv().await {
            fetcher.on_proposal(proposer, &digests);
        }
    }));
    servers.push(tokio::spawn(inbound_consensus(
        inbound.consensus,
        network.clone(),
        shared.clone(),
        driver_tx.clone(),
    )));
    servers.push(tokio::spawn(own_proofs(
        outputs.proofs,
        dissemination.first_seq(),
        shared.clone(),
        batches.clone(),
        shutdown_rx.clone(),
    )));
    servers.push(tokio::spawn(crate::offers::offer_peer_batches(
        outputs.stored,
        offers_rx,
        consensus_pool,
        shared.clone(),
        batches.clone(),
        shutdown_rx.clone(),
    )));
    let mut expired = outputs.expired;
    servers.push(tokio::spawn(async move {
        // Expired transactions are answered from the pending map's expiry; just drain.
        while let Some(hashes) = expired.recv().await {
            metrics::counter!("ordo_node_expired_transactions_total")
                .increment(hashes.len() as u64);
        }
    }));

    let threads = if config.execution.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.execution.threads
    };
    let executor = Arc::new(ParallelExecutor::new(
        genesis_file.chain_config(),
        ParallelOptions::new(threads),
    )?);
    let pipeline = Pipeline {
        shared: shared.clone(),
        batches: batches.clone(),
        network: network.clone(),
        executor,
        accumulator,
    }
    .spawn(shutdown_rx.clone())
    .map_err(|e| NodeError::Other(format!("cannot start the pipeline: {e}")))?;

    let driver = Driver {
        replica,
        network: network.clone(),
        shared: shared.clone(),
        next_height,
        block_sync,
        fetch_payload: fetch_payload_tx,
        #[cfg(feature = "byzantine")]
        byzantine: misbehaviour,
    }
    .spawn(driver_rx, shutdown_rx.clone())
    .map_err(|e| NodeError::Other(format!("cannot start consensus: {e}")))?;

    let rpc_state = Arc::new(RpcState {
        shared: shared.clone(),
        mempool,
        network: network.clone(),
        dissemination: dissemination.clone(),
        ordering_only: genesis_file.ordering_only,
        prometheus,
        max_body_bytes: config.rpc.max_body_bytes,
        max_wait_ms: config.rpc.max_wait_ms,
        concurrency: Semaphore::new(config.rpc.max_concurrency),
        fault_injection: config.rpc.fault_injection,
    });
    let listener = rpc::bind(config.rpc.listen).await?;
    let rpc_addr = listener
        .local_addr()
        .map_err(|e| NodeError::Other(e.to_string()))?;
    let router = rpc::router(rpc_state.clone());
    let mut stop = shutdown_rx.clone();
    servers.push(tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = rpc::serve(listener, router, stopped).await {
            warn!(error = %e, "RPC server stopped");
        }
    }));
    if let Some(addr) = config.metrics.listen {
        let listener = rpc::bind(addr).await?;
        // Metrics and health only: the RPC's submission and admin routes stay on its port.
        let router = rpc::metrics_router(rpc_state);
        let mut stop = shutdown_rx.clone();
        servers.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.changed().await;
            };
            if let Err(e) = rpc::serve(listener, router, stopped).await {
                warn!(error = %e, "metrics server stopped");
            }
        }));
    }
    info!(rpc = %rpc_addr, executed = tip.height, committed = next_height - 1, "validator running");
    Ok(RunningNode {
        shared,
        network,
        rpc_addr,
        dissemination,
        shutdown: shutdown_tx,
        driver,
        block_server,
        pipeline,
        servers,
    })
}

impl RunningNode {
    /// Stops every task: RPC, consensus, dissemination, the pipeline (after the block in
    /// hand), then the network; storage closes when the last handle drops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let driver = self.driver;
        let _ = tokio::task::spawn_blocking(move || driver.join()).await;
        self.dissemination.shutdown().await;
        let _ = self.pipeline.fetch.await;
        let execute = self.pipeline.execute;
        let commit = self.pipeline.commit;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = execute.join();
            let _ = commit.join();
        })
        .await;
        self.network.shutdown().await;
        for s in self.servers {
            s.abort();
        }
        // Ends once the driver and the request router have let go of its channel.
        let block_server = self.block_server;
        let _ = tokio::task::spawn_blocking(move || block_server.join()).await;
        info!(
            executed = self.shared.executed_tip().height,
            committed = self.shared.committed_height(),
            "validator stopped"
        );
    }
}

/// Decodes consensus-stream frames and routes them: consensus messages to the driver,
/// state roots to the tracker. Block requests travel the sync protocol (see
/// [`crate::block_sync`]); one on this stream is dropped before it costs the consensus
/// thread anything.
async fn inbound_consensus(
    mut inbound: mpsc::Receiver<(ordo_types::PublicKey, Vec<u8>)>,
    network: NetworkHandle,
    shared: Arc<Shared>,
    driver: mpsc::Sender<DriverInput>,
) {
    while let Some((from, bytes)) = inbound.recv().await {
        match NodeMessage::decode(&bytes) {
            Err(e) => {
                metrics::counter!("ordo_node_bad_messages_total").increment(1);
                warn!(%from, error = %e, "undecodable consensus frame");
                network.report_bad_message(&from);
            }
            Ok(NodeMessage::StateRoot { height, root }) => {
                let verdict = shared.roots.lock().remote(from, height, root);
                on_verdict(&shared, verdict);
            }
            Ok(NodeMessage::Consensus(Message::BlockRequest { .. })) => {
                metrics::counter!("ordo_node_bad_messages_total").increment(1);
            }
            Ok(NodeMessage::Consensus(message)) => {
                if driver
                    .send(DriverInput::Message { from, message })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// How long a batch's proof waits at most for the proofs of this validator's earlier
/// batches. The network pushes every own batch until it is proven, so this is a safety
/// valve for a batch it dropped, not a deadline: a later batch offered early would fail
/// its senders' transactions on their nonces (500 ms did, under load on 2 cores).
const PROOF_ORDER_HOLD: Duration = Duration::from_secs(10);

/// Offers this validator's available batches to consensus in creation order, holding them
/// back while execution lags (back-pressure: fewer proposals until execution catches up).
///
/// Proofs of availability complete in acknowledgement order, not creation order; offering
/// them as they come would let a later batch of a sender's transactions be ordered before
/// an earlier one, failing every transaction of the later batch on its nonce. A proof
/// therefore waits for the proofs of the batches made before it, at most
/// [`PROOF_ORDER_HOLD`] (a batch that never gets a proof must not stall the others).
/// `first_seq` is the sequence number of this process's first batch.
async fn own_proofs(
    mut proofs: mpsc::Receiver<ordo_network::AvailableBatch>,
    first_seq: u64,
    shared: Arc<Shared>,
    batches: Arc<Batches>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held: std::collections::BTreeMap<u64, (Hash32, std::time::Instant)> =
        std::collections::BTreeMap::new();
    let mut next_seq = first_seq;
    loop {
        tokio::select! {
            p = proofs.recv() => match p {
                Some(p) => {
                    metrics::histogram!("ordo_node_batch_availability_seconds")
                        .record(p.latency.as_secs_f64());
                    held.insert(p.proof.info.seq, (p.proof.info.digest, std::time::Instant::now()));
                }
                None => return,
            },
            _ = tokio::time::sleep(Duration::from_millis(20)), if !held.is_empty() => {}
            _ = shutdown.changed() => return,
        }
        while let Some((&seq, &(digest, since))) = held.first_key_value() {
            let in_order = seq <= next_seq;
            if !in_order && since.elapsed() < PROOF_ORDER_HOLD {
                break;
            }
            while shared.overloaded() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = shutdown.changed() => return,
                }
            }
            held.pop_first();
            next_seq = seq + 1;
            batches.report(digest).await;
        }
    }
}
