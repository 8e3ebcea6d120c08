//! The consensus driver: the one thread that owns the [`Replica`].
//!
//! It feeds the replica messages, payload availability and timer ticks, and carries out
//! the actions in the order given: `Persist` is fsynced through storage before the next
//! action runs (so no vote, timeout or proposal leaves before the safety data that
//! authorises it is durable), sends go to the network's bounded per-peer queues (never
//! blocking), and committed blocks are recorded in storage at consecutive heights and
//! published to the execution pipeline through a watch: consensus never waits on
//! execution. Block requests, the blocks to serve them from, and payload to fetch go to
//! their owners off this thread ([`crate::block_sync`], [`crate::payload`]) through
//! channels that drop rather than wait.
//!
//! Invariant: once a storage write fails, the driver stops carrying out actions and ends
//! with the error (its supervisor stops the validator).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ordo_consensus::{Action, Event, ExecutedRoot, Message, Replica};
use ordo_network::NetworkHandle;
use ordo_storage::Storage;
use ordo_types::{codec, now_ms, Hash32, KeyPair, PublicKey};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info};

use crate::block_sync::BlockSync;
use crate::driver_input::DriverInput;
use crate::shared::Shared;
use crate::supervisor::TaskError;
use crate::wire::{NodeMessage, NodeRequest};

pub struct Driver {
    pub replica: Replica<KeyPair>,
    pub network: NetworkHandle,
    pub shared: Arc<Shared>,
    /// Height the next committed block gets.
    pub next_height: u64,
    pub block_sync: BlockSync,
    /// Payload of proposals that passed the replica's checks, for the payload owner:
    /// (proposer, digests).
    pub fetch_payload: mpsc::Sender<(PublicKey, Vec<Hash32>)>,
    /// Set once our state diverged from a quorum's.
    pub stop_voting: bool,
    /// Our roots read back for the replica (`Action::LoadRoots`), not yet fed to it; empty
    /// at start.
    pub loaded_roots: Vec<(u64, ExecutedRoot)>,
    /// Deliberate misbehaviour on the outbound path (fault tests only).
    #[cfg(feature = "byzantine")]
    pub byzantine: Option<crate::byzantine::Misbehaviour>,
}

impl Driver {
    /// Runs the driver (on the caller's thread, which it keeps) until `shutdown` fires or
    /// its input closes.
    pub fn run(
        self,
        inputs: mpsc::Receiver<DriverInput>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), TaskError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| TaskError::Invariant(format!("cannot start its runtime: {e}")))?;
        runtime.block_on(self.drive(inputs, shutdown))
    }

    async fn drive(
        mut self,
        mut inputs: mpsc::Receiver<DriverInput>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TaskError> {
        let mut deadline: Option<Instant> = None;
        let actions = self.replica.start(now_ms());
        self.carry_out(actions, &mut deadline)?;
        info!(round = self.replica.round(), "consensus started");
        loop {
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let actions = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                input = inputs.recv() => match input {
                    None => return Err(TaskError::closed("the driver's input")),
                    Some(DriverInput::Message { from, message }) => {
                        self.replica.handle(now_ms(), Event::Message { from, message })
                    }
                    Some(DriverInput::Payload(digests)) => {
                        self.replica.handle(now_ms(), Event::PayloadReady(digests))
                    }
                    Some(DriverInput::PayloadAvailable(digests)) => {
                        self.replica.handle(now_ms(), Event::PayloadAvailable(digests))
                    }
                    Some(DriverInput::Executed {
                        height,
                        block,
                        root,
                    }) => self.replica.handle(
                        now_ms(),
                        Event::Executed {
                            height,
                            block,
                            root,
                        },
                    ),
                    Some(DriverInput::PeersExecuted(height)) => {
                        self.replica.handle(now_ms(), Event::PeersExecuted { height })
                    }
                    Some(DriverInput::StopVoting) => {
                        self.stop_voting = true;
                        continue;
                    }
                },
                _ = sleep => {
                    deadline = None;
                    self.replica.handle(now_ms(), Event::Tick)
                }
            };
            self.carry_out(actions, &mut deadline)?;
            self.shared
                .round
                .store(self.replica.round(), Ordering::Relaxed);
            self.shared
                .certified_round
                .store(self.replica.high_qc().round, Ordering::Relaxed);
            self.shared
                .committed_round
                .store(self.replica.committed_root().0, Ordering::Relaxed);
            self.shared
                .catch_up_blocks
                .store(self.replica.stats().catch_up_blocks, Ordering::Relaxed);
            metrics::gauge!("ordo_node_round").set(self.replica.round() as f64);
        }
        debug!("consensus driver stopped");
        Ok(())
    }

    /// Carries out `actions` in order; stops at the first storage failure, so nothing
    /// leaves that the failed write should have preceded.
    /// Carries out `actions`, then feeds the replica the roots they loaded (and carries out
    /// what that returns, and so on).
    fn carry_out(
        &mut self,
        actions: Vec<Action>,
        deadline: &mut Option<Instant>,
    ) -> Result<(), TaskError> {
        self.execute(actions, deadline)?;
        while !self.loaded_roots.is_empty() {
            for (height, executed) in std::mem::take(&mut self.loaded_roots) {
                let more = self
                    .replica
                    .handle(now_ms(), Event::executed(height, executed));
                self.execute(more, deadline)?;
            }
        }
        Ok(())
    }

    fn execute(
        &mut self,
        actions: Vec<Action>,
        deadline: &mut Option<Instant>,
    ) -> Result<(), TaskError> {
        for action in actions {
            match action {
                Action::Persist(safety) => {
                    self.shared.storage.write_safety_data(&safety.to_bytes())?;
                }
                Action::Send {
                    to,
                    message:
                        Message::BlockRequest {
                            block_id,
                            above_round,
                            max,
                        },
                } => self.block_sync.request(
                    to,
                    NodeRequest::Blocks {
                        block_id,
                        above_round,
                        max,
                    },
                ),
                Action::Send {
                    to,
                    message: Message::CatchUpRequest { after, max },
                } => self
                    .block_sync
                    .request(to, NodeRequest::CommittedAfter { after, max }),
                Action::Send { to, message } => {
                    if matches!(message, Message::Vote(_)) && self.stop_voting {
                        metrics::counter!("ordo_node_votes_withheld_total").increment(1);
                        continue;
                    }
                    #[cfg(feature = "byzantine")]
                    if let Some(b) = &mut self.byzantine {
                        if b.on_send(&self.network, self.replica.round(), Some(&to), &message) {
                            continue;
                        }
                    }
                    let bytes = NodeMessage::Consensus(message).encode();
                    if let Err(e) = self.network.send_consensus(&to, bytes) {
                        debug!(error = %e, "consensus send dropped");
                    }
                }
                Action::Broadcast(message) => {
                    #[cfg(feature = "byzantine")]
                    if let Some(b) = &mut self.byzantine {
                        if b.on_send(&self.network, self.replica.round(), None, &message) {
                            continue;
                        }
                    }
                    self.network
                        .broadcast_consensus(NodeMessage::Consensus(message).encode());
                }
                Action::Commit { blocks, proof } => {
                    let started = std::time::Instant::now();
                    for (i, block) in blocks.iter().enumerate() {
                        // The QC that certifies block i is the next block's; the last one's
                        // commit proof is the QC that committed it.
                        let qc = blocks.get(i + 1).map_or(&proof, |next| &next.qc);
                        let height = self.next_height;
                        let id = block.id();
                        self.shared
                            .storage
                            .record_committed(
                                height,
                                &id,
                                Some(&codec::encode(block)),
                                Some(&codec::encode(qc)),
                            )
                            .inspect_err(|e| {
                                error!(height, block = %block, error = %e, "cannot record a committed block");
                            })?;
                        self.next_height += 1;
                        debug!(height, block = %block, "committed");
                    }
                    let height = self.next_height - 1;
                    self.shared.committed.send_replace(height);
                    metrics::gauge!("ordo_node_committed_height").set(height as f64);
                    metrics::histogram!("ordo_node_commit_record_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
                Action::KeepBlock(block) => self.block_sync.keep(block),
                Action::LoadRoots { from, count } => {
                    // A few reads of small keys: cheaper here than a round trip elsewhere.
                    // Fed to the replica after this list, whose order stays the replica's.
                    let roots = executed_roots(&self.shared.storage, from, count)?;
                    debug!(from, loaded = roots.len(), "our roots loaded for consensus");
                    self.loaded_roots.extend(roots);
                }
                Action::FetchPayload { proposer, digests } => {
                    if self.fetch_payload.try_send((proposer, digests)).is_err() {
                        metrics::counter!("ordo_node_payload_fetches_dropped_total").increment(1);
                    }
                }
                Action::SetTimer { deadline_ms } => {
                    let wait = deadline_ms.saturating_sub(now_ms());
                    *deadline = Some(Instant::now() + Duration::from_millis(wait));
                }
            }
        }
        Ok(())
    }
}

/// What we executed at heights `from` to `from + count - 1`, as far as the store holds
/// both the block and the root of each (it keeps them from the committed chain's
/// carried height up: see `crate::pruner`).
fn executed_roots(
    storage: &Storage,
    from: u64,
    count: u64,
) -> ordo_storage::Result<Vec<(u64, ExecutedRoot)>> {
    let mut roots = Vec::new();
    for height in from..from.saturating_add(count) {
        let (Some(block), Some(root)) = (
            storage.block_hash_at(height)?,
            storage.state_root_at(height)?,
        ) else {
            continue;
        };
        roots.push((height, ExecutedRoot { block, root }));
    }
    Ok(roots)
}
