//! One validator process: start-up (storage and recovery, genesis, network, consensus,
//! execution, RPC), the wiring between its tasks, and graceful shutdown.
//!
//! ```text
//! peers ─▶ inbound ─┬─ consensus messages ─────────────────────────────────▶ Driver (thread)
//!                   └─ state roots ─▶ roots (tracker) ── StopVoting ─────────▶   │  ▲
//! own proofs, peers' pushed batches, committed batches, FetchPayload ─▶ payload ─┘  │
//!   (the one owner of payload order) ── Payload / PayloadAvailable ───────────────────┘
//! Driver: Persist (fsync) ▸ Send ▸ KeepBlock ─▶ block sync ▸ Commit (RocksDB, committed height)
//! committed height ─▶ pipeline: fetch ─▶ execute ─▶ commit ─▶ executed tip (watch)
//!                                                          └▶ ExecutedBlock events ─▶ tx-index,
//!                                                             roots (and its broadcast),
//!                                                             batch-store clean-up
//! RPC ─▶ Mempool ─▶ Dissemination (batches, acks, proofs)
//! ```
//!
//! Invariant: every task runs under the [`Supervisor`]; the first one to end (an error, a
//! panic, or a return) stops the validator and `run` returns an error naming it, so the
//! node never continues with a part missing, nor on state it could not persist.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ordo_consensus::messages::MAX_MESSAGE_BYTES;

use ordo_consensus::{
    Block, Committee as ConsensusCommittee, LeaderPolicy, Message, Replica, SafetyData,
};
use ordo_execution::{genesis, ParallelExecutor, ParallelOptions};
use ordo_network::{
    Dissemination, DisseminationConfig, Mempool, MempoolConfig, NetworkConfig, NetworkHandle,
    TaskEnded,
};
use ordo_storage::{BlockCommit, Recovery, Storage, StorageConfig};
use ordo_types::{codec, keyfile, Hash32, PublicKey, StateAccumulator};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{info, warn};

use crate::admission::{Admission, AdmissionConfig, IngressGate};
use crate::batches::Batches;
use crate::block_sync::BlockSync;
use crate::config::{LeaderPolicyName, NodeConfig};
use crate::driver::Driver;
use crate::driver_input::DriverInput;
use crate::error::{NodeError, Result};
use crate::events::Publisher;
use crate::genesis::GenesisFile;
use crate::payload::order::PayloadOrder;
use crate::payload::PayloadInputs;
use crate::pipeline::Pipeline;
use crate::roots::{RootTracker, RootsView};
use crate::rpc::{self, RpcState};
use crate::shared::{ExecutedTip, Shared};
use crate::supervisor::{Failure, Supervisor, TaskError};
use crate::tx_index::TxIndex;
use crate::wire::NodeMessage;

/// Committed blocks handed to a restarted replica (leader reputation needs its window).
const RESTORE_TAIL: u64 = 256;
/// Inputs waiting for the consensus driver: messages, payload reports. Senders wait for
/// room, so a slow driver slows the network's reading rather than growing memory.
const DRIVER_QUEUE: usize = 4_096;
/// Executed blocks queued for each subscriber; the commit stage waits beyond (a few
/// blocks of slack keep a subscriber's hiccup off the commit path).
const EVENT_QUEUE: usize = 64;

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

/// Runs a validator until `stop` resolves, or until one of its tasks fails: then it
/// returns an error that names the task.
pub async fn run_until(
    config: NodeConfig,
    stop: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let mut node = start(config).await?;
    let outcome = tokio::select! {
        r = stop => r,
        failure = node.failure() => Err(NodeError::TaskFailed {
            task: failure.task,
            reason: failure.error.to_string(),
        }),
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
    supervisor: Supervisor,
}

/// Opens (or creates) the validator's store. A restore that a state sync left unfinished
/// stays in `Recovery::restoring` for the next sync to resume or abort.
fn open_store(config: &NodeConfig) -> Result<(Storage, Recovery)> {
    let mut storage_config = if config.storage.small_caches {
        StorageConfig::small()
    } else {
        StorageConfig::default()
    };
    storage_config.sync_commits = config.storage.sync_commits;
    storage_config.snapshot_interval =
        Some(config.storage.snapshot_interval_blocks).filter(|&i| i > 0);
    storage_config.snapshots_kept = config.storage.snapshots_kept;
    storage_config.batch_grace_heights = crate::pruner::BATCH_GRACE_HEIGHTS;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Write {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(Storage::open(&config.data_dir, storage_config)?)
}

/// Ties the store to this genesis file: refuses a store that recorded another genesis
/// file's hash. A store without one records this file's at once, before a state sync or
/// anything else writes to it: an empty store, or one written by a build from before the
/// hash was kept, which is first checked by its genesis block if it still holds one (a
/// store restored from a snapshot holds none, and cannot be checked).
fn check_chain_identity(
    config: &NodeConfig,
    genesis_file: &GenesisFile,
    storage: &Storage,
    recovery: &Recovery,
    genesis_hash: &Hash32,
) -> Result<()> {
    match storage.genesis_identity()? {
        Some(recorded) if recorded == *genesis_hash => Ok(()),
        Some(recorded) => Err(NodeError::Other(format!(
            "{} holds another chain's data: it was written under a genesis file of hash \
             {recorded}, and {} has hash {genesis_hash} (`ordo genesis hash`); set the \
             config's `genesis` to that chain's file, or give this chain an empty data folder",
            config.data_dir.display(),
            config.genesis.display()
        ))),
        None => {
            let written = recovery.last_executed.is_some() || recovery.restoring.is_some();
            if written {
                if storage.block_hash_at(0)?.is_some() {
                    if !holds_genesis(genesis_file, storage)? {
                        return Err(another_genesis(config));
                    }
                } else {
                    warn!(
                        "the store was restored from a snapshot by an earlier build: it cannot \
                         be checked against the genesis file, whose hash it records now"
                    );
                }
            }
            Ok(storage.record_genesis_identity(genesis_hash)?)
        }
    }
}

/// Whether the store's genesis block and state root are this genesis file's.
fn holds_genesis(genesis_file: &GenesisFile, storage: &Storage) -> Result<bool> {
    let initial = genesis(&genesis_file.state_spec())?;
    let genesis_id = Block::genesis(genesis_file.epoch).id();
    Ok(storage.state_root_at(0)? == Some(initial.state_root)
        && storage.block_hash_at(0)? == Some(genesis_id))
}

fn another_genesis(config: &NodeConfig) -> NodeError {
    NodeError::Other(format!(
        "{} holds another chain's data (its genesis differs from {})",
        config.data_dir.display(),
        config.genesis.display()
    ))
}

/// The executed state the validator starts from: genesis written on an empty store,
/// otherwise what storage recovered (after checking it is this chain's).
fn prepare_state(
    config: &NodeConfig,
    genesis_file: &GenesisFile,
    storage: &Storage,
    mut recovery: Recovery,
) -> Result<(ExecutedTip, StateAccumulator)> {
    if let Some(progress) = &recovery.restoring {
        // No snapshot could be finished at this start: the chain is replayed from
        // genesis rather than run on part of a snapshot.
        warn!(
            height = progress.manifest.height,
            applied = progress.applied.len(),
            "an unfinished snapshot restore is aborted; the chain is replayed from genesis"
        );
        storage.abort_restore()?;
        recovery.restoring = None;
    }
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
            skipped: Vec::new(),
        };
        storage.commit_executed(&commit)?;
        return Ok((
            ExecutedTip {
                height: 0,
                state_root: initial.state_root,
                timestamp_ms: 0,
            },
            initial.accumulator,
        ));
    };
    let stored_genesis = storage.state_root_at(0)?;
    // A store restored from a snapshot holds nothing below it: the f + 1 validators of
    // this genesis that offered the snapshot vouch for the chain instead.
    let restored = recovery.pruned_below > 0 && storage.block_hash_at(0)?.is_none();
    if !restored
        && (stored_genesis != Some(initial.state_root)
            || storage.block_hash_at(0)? != Some(genesis_id))
    {
        return Err(another_genesis(config));
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
        ExecutedTip {
            height: last_executed,
            state_root: recovery.state_root,
            timestamp_ms,
        },
        recovery.accumulator,
    ))
}

/// `genesis` bounds each proposal's payload: its block gas limit, and the transaction bound
/// unless the chain orders payloads without executing them.
fn consensus_config(
    config: &NodeConfig,
    n: usize,
    genesis: &GenesisFile,
) -> ordo_consensus::Config {
    let mut c = ordo_consensus::Config::new(n);
    c.max_payload_gas = genesis.block_gas_limit;
    if !genesis.ordering_only {
        c.max_payload_txs = config.consensus.max_block_txs;
    }
    c.base_timeout_ms = config.consensus.base_timeout_ms;
    c.max_timeout_exponent = config.consensus.max_timeout_exponent;
    c.max_batch_delay_ms = config.consensus.max_batch_delay_ms;
    c.max_payload = config.consensus.max_payload;
    c.block_retention = config.consensus.block_retention;
    c.sync_batch = config.consensus.sync_batch;
    c.leader_policy = match config.consensus.leader_policy {
        LeaderPolicyName::RoundRobin => LeaderPolicy::RoundRobin,
        LeaderPolicyName::Reputation => LeaderPolicy::reputation(n),
    };
    c
}

/// The replica as storage left it: safety data and the recent committed chain.
fn restore_replica(
    config: &NodeConfig,
    genesis: &GenesisFile,
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
    // Down from the last committed block by parent hash (a store restored from a
    // snapshot holds the blocks below it by hash only, not by height).
    let mut tail = Vec::new();
    let mut next = storage.block_hash_at(last_committed)?;
    while let Some(hash) = next.take() {
        if tail.len() as u64 > RESTORE_TAIL {
            break;
        }
        let Some(bytes) = storage.block(&hash)? else {
            break;
        };
        let block = codec::decode::<Block, MAX_MESSAGE_BYTES>(&bytes).map_err(|e| {
            NodeError::Other(format!(
                "committed block {} does not decode: {e}",
                hash.short()
            ))
        })?;
        if block.round > 0 {
            next = Some(block.parent());
        }
        tail.push(block);
    }
    tail.reverse();
    info!(
        last_voted_round = safety.last_voted_round,
        high_qc = %safety.high_qc,
        last_committed,
        "consensus restored"
    );
    let cfg = consensus_config(config, committee.size(), genesis);
    Ok((
        Replica::restore(cfg, committee, key, safety, tail),
        last_committed + 1,
    ))
}

/// Starts every part of a validator, each under the supervisor, and returns once the RPC
/// listens.
pub async fn start(config: NodeConfig) -> Result<RunningNode> {
    // Read once: the hash is of the bytes parsed.
    let genesis_bytes = std::fs::read(&config.genesis).map_err(|source| NodeError::Read {
        path: config.genesis.clone(),
        source,
    })?;
    let genesis_file = GenesisFile::from_bytes(&config.genesis, &genesis_bytes)?;
    // What operators compare (`ordo genesis hash`), in the log of every start; the store
    // records it as the identity of the chain it holds.
    let genesis_hash = crate::genesis::file_hash(&genesis_bytes);
    info!(hash = %genesis_hash, chain = genesis_file.chain_id, "genesis loaded");
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
    let (storage, recovery) = open_store(&config)?;
    check_chain_identity(&config, &genesis_file, &storage, &recovery, &genesis_hash)?;
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

    let identity = ordo_network::network_keypair_from_seed(network_key.seed());
    let net_config = NetworkConfig::new(identity, config.network.listen.clone(), net_committee);
    let (network, mut inbound) = ordo_network::start(net_config).await?;
    info!(
        peer_id = %network.peer_id(),
        listen = %network.listen_addr(),
        validator = ?network.local_index(),
        "network listening"
    );

    // Present from the start, at 0 until a restore sets them (the dashboard's panel).
    metrics::gauge!("ordo_statesync_restored_height").set(0.0);
    metrics::gauge!("ordo_statesync_chunks").set(0.0);
    metrics::gauge!("ordo_statesync_chunks_applied").set(0.0);
    // A store that has executed nothing joins from a snapshot when peers offer one; so
    // does one whose peers pruned what it lacks, emptied first (its votes kept).
    let trust = consensus_committee.max_faulty() + 1;
    let resync = if config.storage.state_sync
        && consensus_committee.size() > 1
        && recovery.last_executed.is_some()
        && !genesis_file.ordering_only
    {
        // Peers that ask the same meanwhile (all restarted at once) hear `Busy` at once.
        crate::snapshots::answering_while(
            &mut inbound.requests,
            storage.clone(),
            crate::statesync::pruned_behind(
                &network,
                &consensus_committee,
                &storage,
                trust,
                Duration::from_millis(config.storage.state_sync_wait_ms),
            ),
        )
        .await??
    } else {
        false
    };
    let (storage, recovery) = if resync {
        warn!("peers pruned the blocks this validator lacks: emptying its store to restore a snapshot");
        storage.mark_for_resync()?;
        drop(storage);
        open_store(&config)?
    } else {
        (storage, recovery)
    };
    let recovery = if config.storage.state_sync
        && recovery.last_executed.is_none()
        && !genesis_file.ordering_only
    {
        // Only the window's batches pass through it, dropped with it after the sync.
        let fetched = ordo_network::BatchStoreConfig {
            max_bytes: 256 << 20,
            ..Default::default()
        };
        let fetcher = Batches::new(
            Arc::new(ordo_network::BatchStore::new(fetched)),
            storage.clone(),
            network.clone(),
            genesis_file.ordering_only,
        );
        let wait = Duration::from_millis(config.storage.state_sync_wait_ms);
        // Its progress shows on the metrics port meanwhile.
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let sync_metrics = match config.metrics.listen {
            Some(addr) => {
                let listener = rpc::bind(addr).await?;
                let router = rpc::sync_metrics_router(prometheus.clone());
                Some(tokio::spawn(rpc::serve(listener, router, async move {
                    let _ = metrics_stopped.await;
                })))
            }
            None => None,
        };
        // And on the RPC port, for `ordo status`.
        let progress = Arc::new(crate::statesync::Progress::default());
        let (status_stop, status_stopped) = tokio::sync::oneshot::channel::<()>();
        let sync_status = tokio::spawn(rpc::serve(
            rpc::bind(config.rpc.listen).await?,
            rpc::sync_status_router(genesis_file.chain_id, progress.clone()),
            async move {
                let _ = status_stopped.await;
            },
        ));
        // Peers syncing at the same time (a new chain: every store is empty) get this
        // node's answer at once rather than waiting out a timeout.
        let synced = crate::snapshots::answering_while(
            &mut inbound.requests,
            storage.clone(),
            crate::statesync::run(
                &network,
                &consensus_committee,
                &storage,
                &fetcher,
                trust,
                wait,
                &progress,
            ),
        )
        .await?;
        let _ = metrics_stop.send(());
        let _ = status_stop.send(());
        if let Some(server) = sync_metrics {
            // The port is bound again below, by the validator's own metrics server.
            let _ = server.await;
        }
        let _ = sync_status.await;
        match synced? {
            Some(restored) => restored,
            None if resync => {
                return Err(NodeError::Other(
                    "peers pruned the blocks after this validator's last commit and offer \
                     no snapshot alike; its store is empty now: start it again once more \
                     than f peers run (it then restores their snapshot)"
                        .into(),
                ))
            }
            None => recovery,
        }
    } else {
        recovery
    };
    let (tip, accumulator) = prepare_state(&config, &genesis_file, &storage, recovery)?;
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
    let (mut replica, next_height) = restore_replica(
        &config,
        &genesis_file,
        &storage,
        consensus_committee,
        key.clone(),
    )?;
    // Blocks proposed after the restart may carry roots of heights executed before it: the
    // replica asks for them (`Action::LoadRoots`) when it needs them.
    replica.restore_executed(tip.height);

    let (committed_tx, _) = watch::channel(next_height - 1);
    let (executed_tx, _) = watch::channel(tip);
    let shared = Arc::new(Shared {
        chain_id: genesis_file.chain_id,
        storage: storage.clone(),
        committed: committed_tx,
        executed: executed_tx,
        round: AtomicU64::new(0),
        max_lag: config.execution.max_lag_blocks,
        certified_round: AtomicU64::new(0),
        committed_round: AtomicU64::new(0),
        catch_up_blocks: AtomicU64::new(0),
    });

    let mut mempool_config = MempoolConfig::new(genesis_file.chain_id);
    mempool_config.max_transactions = config.mempool.max_transactions;
    mempool_config.max_per_sender = config.mempool.max_per_sender;
    mempool_config.nonce_window = config.mempool.nonce_window;
    let mempool = Arc::new(Mempool::new(mempool_config));
    let diss_config = DisseminationConfig {
        max_batch_txs: config.mempool.max_batch_txs,
        max_batch_gas: genesis_file.block_gas_limit,
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

    let mut supervisor = Supervisor::new();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (driver_tx, driver_rx) = mpsc::channel::<DriverInput>(DRIVER_QUEUE);
    let batches = Batches::new(
        dissemination.store().clone(),
        storage.clone(),
        network.clone(),
        genesis_file.ordering_only,
    );
    #[cfg(feature = "byzantine")]
    if let Some(section) = &config.byzantine {
        batches.set_withhold(section.has(crate::config::Behaviour::WithholdBatches));
    }
    if let Some(handle) = prometheus.clone() {
        // Histograms accumulate until drained; the recorder leaves draining to its owner.
        supervisor.spawn("metrics-upkeep", async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        });
    }

    let snapshot_server = crate::snapshots::SnapshotServer::new(storage.clone());
    #[cfg(feature = "byzantine")]
    let snapshot_server = snapshot_server.corrupting(
        config
            .byzantine
            .as_ref()
            .is_some_and(|s| s.has(crate::config::Behaviour::CorruptSnapshotChunks)),
    );

    // Block sync: a server thread for peers' requests, a task for the replica's.
    let (block_sync, block_server) = BlockSync::new(
        storage.clone(),
        Block::genesis(genesis_file.epoch).id(),
        network.clone(),
        driver_tx.clone(),
    );
    supervisor
        .spawn_thread("block-server", move || block_server.run())
        .map_err(|e| NodeError::Other(format!("cannot start the block server: {e}")))?;
    supervisor.spawn("block-fetch", block_sync.clone().fetch_loop());
    supervisor.spawn(
        "peer-requests",
        batches
            .clone()
            .serve(inbound.requests, block_sync.clone(), snapshot_server),
    );

    // Events of executed blocks, each subscriber owning what it derives from them.
    let mut events = Publisher::default();
    let index = Arc::new(TxIndex::default());
    supervisor.spawn(
        "tx-index",
        crate::tx_index::follow(index.clone(), events.subscribe("tx-index", EVENT_QUEUE)),
    );
    let (roots_view_tx, roots_view) = watch::channel(RootsView::default());
    let (remote_roots_tx, remote_roots_rx) = mpsc::channel(crate::roots::REMOTE_QUEUE);
    supervisor.spawn(
        "roots",
        crate::roots::run(
            RootTracker::new(quorum, Some(key.public())),
            events.subscribe("roots", EVENT_QUEUE),
            remote_roots_rx,
            network.clone(),
            driver_tx.clone(),
            roots_view_tx,
        ),
    );
    if config.storage.retain_blocks > 0 {
        supervisor.spawn(
            "pruner",
            crate::pruner::run(
                storage.clone(),
                config.storage.retain_blocks,
                config.storage.snapshot_interval_blocks > 0,
                events.subscribe("pruner", EVENT_QUEUE),
            ),
        );
    }
    let mut executed_batches = events.subscribe("batch-store", EVENT_QUEUE);
    let store = dissemination.store().clone();
    supervisor.spawn("batch-store-cleanup", async move {
        while let Some(block) = executed_batches.recv().await {
            store.remove(&block.digests);
        }
        Err(TaskError::closed("the executed-block events"))
    });

    supervisor.spawn(
        "inbound-consensus",
        inbound_consensus(
            inbound.consensus,
            network.clone(),
            remote_roots_tx,
            driver_tx.clone(),
        ),
    );
    // The dissemination layer's own tasks (batch and payload makers, receiver, quorum
    // waiter, batch server) run on the runtime beside these; their ends come here.
    let mut ended = outputs.ended;
    let mut stop = shutdown_rx.clone();
    supervisor.spawn("dissemination", async move {
        let first = tokio::select! {
            biased;
            _ = stop.changed() => return Ok(()),
            end = ended.recv() => end,
        };
        Err(dissemination_failure(first_cause(first, &mut ended).await))
    });
    let mut expired = outputs.expired;
    supervisor.spawn("expired-transactions", async move {
        // Expired transactions are answered from the index's expiry; only counted here.
        while let Some(hashes) = expired.recv().await {
            metrics::counter!("ordo_node_expired_transactions_total")
                .increment(hashes.len() as u64);
        }
        Err(TaskError::closed("the mempool's expiry notices"))
    });

    // The payload owner: the one sender of payload availability to consensus.
    let consensus_pool = consensus_config(
        &config,
        network.committee().validators().len(),
        &genesis_file,
    )
    .max_pool;
    let (committed_batches_tx, committed_batches_rx) =
        mpsc::channel(crate::payload::COMMITTED_QUEUE);
    let (proposals_tx, proposals_rx) = mpsc::channel(crate::payload::PROPOSAL_QUEUE);
    let members: Vec<ordo_types::PublicKey> = network
        .committee()
        .validators()
        .iter()
        .map(|v| v.consensus_key)
        .collect();
    let admission_config = AdmissionConfig {
        latency_budget_ms: config.mempool.latency_budget_ms,
        min_limit: config.mempool.min_in_flight,
        max_limit: config.mempool.max_transactions as u64,
    };
    let gate = Arc::new(IngressGate::new(&admission_config));
    supervisor.spawn(
        "payload",
        crate::payload::run(
            PayloadOrder::new(dissemination.first_seq(), members, consensus_pool),
            PayloadInputs {
                own_proofs: outputs.proofs,
                stored: outputs.stored,
                committed: committed_batches_rx,
                proposals: proposals_rx,
                committed_height: shared.committed.subscribe(),
                executed: shared.executed.subscribe(),
                max_lag: config.execution.max_lag_blocks,
                me: key.public(),
                admission: Admission::new(admission_config),
                gate: gate.clone(),
            },
            batches.clone(),
            driver_tx.clone(),
        ),
    );

    let threads = if config.execution.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        config.execution.threads
    };
    let executor = Arc::new(ParallelExecutor::new(
        genesis_file.chain_config(),
        ParallelOptions::new(threads),
    )?);
    Pipeline {
        shared: shared.clone(),
        batches: batches.clone(),
        executor,
        accumulator,
        committed_batches: committed_batches_tx,
        events,
    }
    .spawn(&mut supervisor, shutdown_rx.clone())
    .map_err(|e| NodeError::Other(format!("cannot start the pipeline: {e}")))?;

    let driver = Driver {
        replica,
        network: network.clone(),
        shared: shared.clone(),
        next_height,
        block_sync,
        fetch_payload: proposals_tx,
        stop_voting: false,
        loaded_roots: Vec::new(),
        #[cfg(feature = "byzantine")]
        byzantine: misbehaviour,
    };
    let driver_shutdown = shutdown_rx.clone();
    supervisor
        .spawn_thread("consensus", move || driver.run(driver_rx, driver_shutdown))
        .map_err(|e| NodeError::Other(format!("cannot start consensus: {e}")))?;

    let rpc_state = Arc::new(RpcState {
        shared: shared.clone(),
        index,
        roots: roots_view,
        mempool,
        gate,
        network: network.clone(),
        dissemination: dissemination.clone(),
        ordering_only: genesis_file.ordering_only,
        chain: genesis_file.chain_config(),
        prometheus,
        max_body_bytes: config.rpc.max_body_bytes,
        max_wait_ms: config.rpc.max_wait_ms,
        concurrency: Arc::new(Semaphore::new(config.rpc.max_concurrency)),
        fault_injection: config.rpc.fault_injection,
    });
    let listener = rpc::bind(config.rpc.listen).await?;
    let rpc_addr = listener
        .local_addr()
        .map_err(|e| NodeError::Other(e.to_string()))?;
    let router = rpc::router(rpc_state.clone());
    supervisor.spawn("rpc", serve(listener, router, shutdown_rx.clone()));
    if let Some(addr) = config.metrics.listen {
        let listener = rpc::bind(addr).await?;
        // Metrics and health only: the RPC's submission and admin routes stay on its port.
        let router = rpc::metrics_router(rpc_state);
        supervisor.spawn("metrics", serve(listener, router, shutdown_rx.clone()));
    }
    info!(rpc = %rpc_addr, executed = tip.height, committed = next_height - 1, "validator running");
    Ok(RunningNode {
        shared,
        network,
        rpc_addr,
        dissemination,
        shutdown: shutdown_tx,
        supervisor,
    })
}

/// Serves an HTTP router until the shutdown signal.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> std::result::Result<(), TaskError> {
    let stopped = async move {
        let _ = stop.changed().await;
    };
    rpc::serve(listener, router, stopped)
        .await
        .map_err(|e| TaskError::Invariant(format!("HTTP server stopped: {e}")))
}

/// The end to name, given the first reported: one task's end ends others (a panicking
/// quorum waiter closes the channel the receiver feeds), so after a plain end a panic
/// reported within [`crate::supervisor::CASCADE_GRACE`] is named instead.
async fn first_cause(
    first: Option<TaskEnded>,
    ended: &mut mpsc::UnboundedReceiver<TaskEnded>,
) -> Option<TaskEnded> {
    if !matches!(&first, Some(e) if e.panic.is_none()) {
        return first;
    }
    let grace = tokio::time::sleep(crate::supervisor::CASCADE_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = &mut grace => return first,
            more = ended.recv() => match more {
                Some(e) if e.panic.is_some() => return Some(e),
                Some(_) => {}
                None => return first,
            },
        }
    }
}

/// What a dissemination task's end means while the validator runs: always a failure.
fn dissemination_failure(end: Option<TaskEnded>) -> TaskError {
    match end {
        Some(TaskEnded {
            task,
            panic: Some(message),
        }) => TaskError::Panicked(format!("{task}: {message}")),
        Some(TaskEnded { task, panic: None }) => {
            TaskError::Invariant(format!("the dissemination task {task} ended"))
        }
        None => TaskError::closed("the dissemination layer's task reports"),
    }
}

impl RunningNode {
    /// Waits until one of the validator's tasks ends (which is always a failure).
    pub async fn failure(&mut self) -> Failure {
        self.supervisor.failure().await
    }

    /// Stops every task: RPC, consensus, dissemination, the pipeline (after the block in
    /// hand), then the network; storage closes when the last handle drops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.dissemination.shutdown().await;
        self.supervisor.shutdown().await;
        self.network.shutdown().await;
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
    mut inbound: mpsc::Receiver<(PublicKey, Vec<u8>)>,
    network: NetworkHandle,
    roots: mpsc::Sender<(PublicKey, u64, Hash32)>,
    driver: mpsc::Sender<DriverInput>,
) -> std::result::Result<(), TaskError> {
    while let Some((from, bytes)) = inbound.recv().await {
        match NodeMessage::decode(&bytes) {
            Err(e) => {
                metrics::counter!("ordo_node_bad_messages_total").increment(1);
                warn!(%from, error = %e, "undecodable consensus frame");
                network.report_bad_message(&from);
            }
            Ok(NodeMessage::StateRoot { height, root }) => {
                if roots.try_send((from, height, root)).is_err() {
                    metrics::counter!("ordo_node_state_roots_dropped_total").increment(1);
                }
            }
            // Requests travel on the sync protocol, where the answer can only come from
            // the peer asked and never queues ahead of votes.
            Ok(NodeMessage::Consensus(
                Message::BlockRequest { .. } | Message::CatchUpRequest { .. },
            )) => {
                metrics::counter!("ordo_node_bad_messages_total").increment(1);
            }
            Ok(NodeMessage::Consensus(message)) => {
                driver
                    .send(DriverInput::Message { from, message })
                    .await
                    .map_err(|_| TaskError::closed("the consensus driver"))?;
            }
        }
    }
    Err(TaskError::closed("the network's consensus stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(task: &'static str, panic: Option<&str>) -> TaskEnded {
        TaskEnded {
            task,
            panic: panic.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn a_panic_after_a_plain_end_is_named_as_the_cause() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(end("batch-server", None)).unwrap();
        tx.send(end("quorum-waiter", Some("a bug"))).unwrap();
        let cause = first_cause(Some(end("batch-receiver", None)), &mut rx).await;
        assert_eq!(cause, Some(end("quorum-waiter", Some("a bug"))));
        // A panic reported first is named at once; a plain end alone, once the reports end.
        let first = Some(end("batch-maker", Some("another bug")));
        assert_eq!(first_cause(first.clone(), &mut rx).await, first);
        drop(tx);
        let plain = Some(end("batch-receiver", None));
        assert_eq!(first_cause(plain.clone(), &mut rx).await, plain);
    }

    fn config(dir: &std::path::Path) -> NodeConfig {
        let text = "data_dir = \"data\"\ngenesis = \"genesis.json\"\n\
            validator_key = \"validator.key\"\nnetwork_key = \"network.key\"\n\n\
            [network]\nlisten = \"/ip4/127.0.0.1/tcp/7000\"\n\n[storage]\nsmall_caches = true\n";
        let mut config = NodeConfig::parse(text).expect("a valid config");
        config.data_dir = dir.join("data");
        config.genesis = dir.join("genesis.json");
        config
    }

    /// An empty store records the genesis hash before anything is written to it, keeps it
    /// across an emptying for a resync (which leaves it holding no genesis block), and
    /// refuses another.
    #[test]
    fn a_store_written_under_one_genesis_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let genesis_file = crate::genesis::sample();
        let (ours, theirs) = (Hash32([1; 32]), Hash32([2; 32]));
        {
            let (storage, recovery) = open_store(&config).unwrap();
            check_chain_identity(&config, &genesis_file, &storage, &recovery, &ours).unwrap();
            assert_eq!(
                storage.genesis_identity().unwrap(),
                Some(ours),
                "recorded at once"
            );
            prepare_state(&config, &genesis_file, &storage, recovery).unwrap();
            storage.mark_for_resync().unwrap();
        }
        let (storage, recovery) = open_store(&config).unwrap();
        assert_eq!(recovery.last_executed, None, "emptied for a resync");
        assert_eq!(storage.block_hash_at(0).unwrap(), None);
        let error =
            check_chain_identity(&config, &genesis_file, &storage, &recovery, &theirs).unwrap_err();
        assert!(
            error.to_string().contains("another chain's data"),
            "{error}"
        );
        check_chain_identity(&config, &genesis_file, &storage, &recovery, &ours).unwrap();
    }

    /// A store written by a build from before the hash was kept is checked by its genesis
    /// block, then records the hash.
    #[test]
    fn a_store_from_before_the_hash_is_checked_by_its_genesis_block() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let ours = crate::genesis::sample();
        let mut theirs = crate::genesis::sample();
        theirs.accounts[0].balance += 1;
        {
            let (storage, recovery) = open_store(&config).unwrap();
            prepare_state(&config, &ours, &storage, recovery).unwrap();
            assert_eq!(storage.genesis_identity().unwrap(), None);
        }
        let (storage, recovery) = open_store(&config).unwrap();
        let hash = Hash32([3; 32]);
        let error = check_chain_identity(&config, &theirs, &storage, &recovery, &hash).unwrap_err();
        assert!(
            error.to_string().contains("another chain's data"),
            "{error}"
        );
        assert_eq!(
            storage.genesis_identity().unwrap(),
            None,
            "nothing recorded"
        );
        check_chain_identity(&config, &ours, &storage, &recovery, &hash).unwrap();
        assert_eq!(storage.genesis_identity().unwrap(), Some(hash));
    }
}
