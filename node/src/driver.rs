//! The consensus driver: the one thread that owns the [`Replica`].
//!
//! It feeds the replica messages, payload availability and timer ticks, and carries out
//! the actions in the order given: `Persist` is fsynced through storage before the next
//! action runs (so no vote, timeout or proposal leaves before the safety data that
//! authorises it is durable), sends go to the network's bounded per-peer queues (never
//! blocking), and committed blocks are recorded in storage at consecutive heights and
//! published to the execution pipeline through a watch: consensus never waits on
//! execution. Block requests, the blocks to serve them from, and payload to fetch go to
//! their owners off this thread ([`crate::block_sync`], [`crate::batches`]) through
//! channels that drop rather than wait.
//!
//! Invariant: once a storage write fails, the driver stops carrying out actions.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ordo_consensus::{Action, Event, Message, Replica};
use ordo_network::NetworkHandle;
use ordo_types::{codec, Hash32, KeyPair, PublicKey};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info};

use crate::block_sync::BlockSync;
use crate::shared::Shared;
use crate::wire::NodeMessage;

/// What the node feeds the driver.
#[allow(clippy::large_enum_variant)]
pub enum DriverInput {
    Message { from: PublicKey, message: Message },
    Payload(Vec<Hash32>),
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct Driver {
    pub replica: Replica<KeyPair>,
    pub network: NetworkHandle,
    pub shared: Arc<Shared>,
    /// Height the next committed block gets.
    pub next_height: u64,
    pub block_sync: BlockSync,
    /// Payload of proposals that passed the replica's checks, to fetch: (proposer, digests).
    pub fetch_payload: mpsc::Sender<(PublicKey, Vec<Hash32>)>,
    /// Deliberate misbehaviour on the outbound path (fault tests only).
    #[cfg(feature = "byzantine")]
    pub byzantine: Option<crate::byzantine::Misbehaviour>,
}

impl Driver {
    /// Runs the driver on its own thread until `shutdown` fires or the input closes.
    pub fn spawn(
        self,
        inputs: mpsc::Receiver<DriverInput>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ordo-consensus".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        self.shared.set_fatal(format!("consensus runtime: {e}"));
                        return;
                    }
                };
                runtime.block_on(self.run(inputs, shutdown));
            })
    }

    async fn run(
        mut self,
        mut inputs: mpsc::Receiver<DriverInput>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut deadline: Option<Instant> = None;
        let actions = self.replica.start(now_ms());
        if !self.execute(actions, &mut deadline) {
            return;
        }
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
                    None => break,
                    Some(DriverInput::Message { from, message }) => {
                        self.replica.handle(now_ms(), Event::Message { from, message })
                    }
                    Some(DriverInput::Payload(digests)) => {
                        self.replica.handle(now_ms(), Event::PayloadReady(digests))
                    }
                },
                _ = sleep => {
                    deadline = None;
                    self.replica.handle(now_ms(), Event::Tick)
                }
            };
            if !self.execute(actions, &mut deadline) {
                break;
            }
            self.shared
                .round
                .store(self.replica.round(), Ordering::Relaxed);
            self.shared
                .certified_round
                .store(self.replica.high_qc().round, Ordering::Relaxed);
            self.shared
                .committed_round
                .store(self.replica.committed_root().0, Ordering::Relaxed);
            metrics::gauge!("ordo_node_round").set(self.replica.round() as f64);
        }
        debug!("consensus driver stopped");
    }

    /// Carries out `actions` in order; false after a fatal storage error.
    fn execute(&mut self, actions: Vec<Action>, deadline: &mut Option<Instant>) -> bool {
        for action in actions {
            match action {
                Action::Persist(safety) => {
                    if let Err(e) = self.shared.storage.write_safety_data(&safety.to_bytes()) {
                        self.shared.set_fatal(format!("writing safety data: {e}"));
                        return false;
                    }
                }
                Action::Send {
                    to,
                    message:
                        Message::BlockRequest {
                            block_id,
                            above_round,
                            max,
                        },
                } => self.block_sync.request(to, block_id, above_round, max),
                Action::Send { to, message } => {
                    if matches!(message, Message::Vote(_))
                        && self.shared.stop_voting.load(Ordering::Relaxed)
                    {
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
                        let recorded = self.shared.storage.record_committed(
                            height,
                            &id,
                            Some(&codec::encode(block)),
                            Some(&codec::encode(qc)),
                        );
                        if let Err(e) = recorded {
                            error!(height, block = %block, error = %e, "cannot record a committed block");
                            self.shared
                                .set_fatal(format!("recording committed block {height}: {e}"));
                            return false;
                        }
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
        true
    }
}
