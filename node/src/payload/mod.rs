//! The payload owner: the only sender of payload availability to consensus.
//!
//! ```text
//! own proofs (dissemination) ───────────┐
//! peers' pushed batches (dissemination) ├─▶ PayloadOrder (pure) ─▶ driver: Payload (ready,
//! committed batches (pipeline) ─────────┤        │                   proposable) and
//! consensus's FetchPayload (driver) ────┤        │                   PayloadAvailable (vote)
//! execution lag (committed/executed) ───┘        └─▶ lookups (Batches) ─▶ Fetched ─┘
//! ```
//!
//! The rules live in [`order`] and below, without I/O; this task only feeds them and
//! carries out what they say: it looks batches up through [`Batches`] (memory, disk,
//! peers), sends reports to the driver, and wakes itself when an own batch's hold runs
//! out. The lag comes from the chain tips' watches, not from polling.
//!
//! It also keeps the account of this validator's own work in flight for admission control
//! ([`crate::admission`]): it is the one task that sees both an own batch's proof and its
//! commit.
//!
//! Invariant: a proposer has at most [`MAX_LOOKUPS_PER_PROPOSER`] lookups in flight, so a
//! faulty leader cannot make this node start unbounded work; a lookup not started is
//! reported as not found, so it holds up nothing.

pub mod order;
mod own;
mod peers;
mod proposals;
mod sizes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ordo_network::{AvailableBatch, BatchInfo};
use ordo_types::{Hash32, PublicKey};
use tokio::sync::{mpsc, watch};
use tracing::debug;

use crate::admission::{Admission, IngressGate};
use crate::batches::{Batches, PUSH_GRACE};
use crate::driver_input::DriverInput;
use crate::shared::ExecutedTip;
use crate::supervisor::TaskError;
use order::{Input, Output, PayloadOrder};

/// Lookups in flight for one proposer's blocks: two full blocks' worth (1,024 digests
/// a block by default). An honest leader's next proposal comes a round later, when its
/// last one's lookups are long done.
pub const MAX_LOOKUPS_PER_PROPOSER: usize = 2_048;
/// Commit notices queued for the owner; a lost one costs nothing lasting (the next
/// commit of the same authors says as much).
pub const COMMITTED_QUEUE: usize = 4_096;
/// Checked proposals waiting for the owner: one a round arrives at most, so a backlog
/// means the owner is stuck; dropping then costs a vote, not memory.
pub const PROPOSAL_QUEUE: usize = 64;

/// What the owner reads.
pub struct PayloadInputs {
    /// Proofs of availability of this validator's batches.
    pub own_proofs: mpsc::Receiver<AvailableBatch>,
    /// Peers' batches pushed by their authors and stored here.
    pub stored: mpsc::Receiver<BatchInfo>,
    /// The batches of each committed block: (author, sequence number, digest).
    pub committed: mpsc::Receiver<Vec<(PublicKey, u64, Hash32)>>,
    /// Consensus's checked proposals' missing payload: (proposer, digests).
    pub proposals: mpsc::Receiver<(PublicKey, Vec<Hash32>)>,
    /// The chain tips, for the execution lag.
    pub committed_height: watch::Receiver<u64>,
    pub executed: watch::Receiver<ExecutedTip>,
    /// Execution may lag consensus by this many blocks before ready payload is held.
    pub max_lag: u64,
    /// This validator's key: its own batches among the committed ones.
    pub me: PublicKey,
    /// Own work in flight, and where ingress reads the figures.
    pub admission: Admission,
    pub gate: Arc<IngressGate>,
}

/// Runs the owner until its inputs or the driver close.
pub async fn run(
    mut order: PayloadOrder,
    mut inputs: PayloadInputs,
    batches: Arc<Batches>,
    driver: mpsc::Sender<DriverInput>,
) -> Result<(), TaskError> {
    let (fetched_tx, mut fetched) = mpsc::unbounded_channel::<(PublicKey, Hash32, bool)>();
    let mut lookups: HashMap<PublicKey, usize> = HashMap::new();
    let mut lagging = false;
    let mut sizes = sizes::SizeBook::default();
    loop {
        let sleep = async {
            match order.deadline() {
                Some(at) => {
                    let wait = at.saturating_sub(ordo_types::now_ms());
                    tokio::time::sleep(Duration::from_millis(wait)).await
                }
                None => std::future::pending().await,
            }
        };
        let mut proposer = None;
        // An own proof's items, counted as unproven until admission counts them as proven.
        let mut unproven = None;
        let input = tokio::select! {
            Some(p) = inputs.own_proofs.recv() => {
                metrics::histogram!("ordo_node_batch_availability_seconds")
                    .record(p.latency.as_secs_f64());
                let now = ordo_types::now_ms();
                let info = &p.proof.info;
                inputs.admission.proven(info.seq, u64::from(info.num_txs), now);
                sizes.learn(info.digest, u64::from(info.num_txs), info.gas);
                let input = Input::OwnProof { seq: info.seq, digest: info.digest };
                unproven = Some(p.unproven);
                input
            }
            Some(info) = inputs.stored.recv() => {
                sizes.learn(info.digest, u64::from(info.num_txs), info.gas);
                Input::PeerStored(info)
            }
            Some(batches) = inputs.committed.recv() => {
                let now = ordo_types::now_ms();
                for (author, seq, _) in &batches {
                    if *author == inputs.me {
                        inputs.admission.committed(*seq, now);
                    }
                }
                Input::Committed(batches)
            }
            Some((from, digests)) = inputs.proposals.recv() => {
                proposer = Some(from);
                Input::ProposalNamed(digests)
            }
            Some((from, digest, found)) = fetched.recv() => {
                if let Some(n) = lookups.get_mut(&from) {
                    *n = n.saturating_sub(1);
                }
                Input::Fetched { digest, found }
            }
            changed = inputs.committed_height.changed() => {
                if changed.is_err() { return Err(TaskError::closed("the committed height")) }
                match lag_changed(&mut lagging, &inputs) { Some(i) => i, None => continue }
            }
            changed = inputs.executed.changed() => {
                if changed.is_err() { return Err(TaskError::closed("the executed height")) }
                match lag_changed(&mut lagging, &inputs) { Some(i) => i, None => continue }
            }
            _ = sleep => Input::Tick,
            else => return Ok(()),
        };
        let now = ordo_types::now_ms();
        // After every input, not only own proofs and commits: the measured rate decays
        // while nothing of ours commits, and ingress must see the limit it gives now.
        inputs.gate.publish(&mut inputs.admission, now);
        drop(unproven);
        let mut out = order.handle(now, input);
        let ready = std::mem::take(&mut out.ready);
        if !ready.is_empty() {
            metrics::counter!("ordo_node_payload_ready_total").increment(ready.len() as u64);
            let ready = ready.into_iter().map(|d| sizes.ready(d)).collect();
            send(&driver, DriverInput::Payload(ready)).await?;
        }
        carry_out(
            out,
            proposer,
            &mut order,
            &mut lookups,
            &batches,
            &fetched_tx,
            &driver,
        )
        .await?;
    }
}

/// Recomputes whether execution lags; an input only when that changed.
fn lag_changed(lagging: &mut bool, inputs: &PayloadInputs) -> Option<Input> {
    let committed = *inputs.committed_height.borrow();
    let executed = inputs.executed.borrow().height;
    let now = committed.saturating_sub(executed) > inputs.max_lag;
    (now != *lagging).then(|| {
        *lagging = now;
        Input::Lagging(now)
    })
}

/// Carries out what the core said, past the ready digests (sent with their sizes by the
/// caller).
async fn carry_out(
    out: Output,
    proposer: Option<PublicKey>,
    order: &mut PayloadOrder,
    lookups: &mut HashMap<PublicKey, usize>,
    batches: &Arc<Batches>,
    fetched: &mpsc::UnboundedSender<(PublicKey, Hash32, bool)>,
    driver: &mpsc::Sender<DriverInput>,
) -> Result<(), TaskError> {
    let mut out = out;
    if out.dropped > 0 {
        metrics::counter!("ordo_node_payload_held_dropped_total").increment(out.dropped as u64);
    }
    if !out.fetch.is_empty() {
        let Some(proposer) = proposer else {
            return Err(TaskError::Invariant("lookups without a proposal".into()));
        };
        let in_flight = lookups.entry(proposer).or_default();
        let room = MAX_LOOKUPS_PER_PROPOSER.saturating_sub(*in_flight);
        let refused = out.fetch.split_off(room.min(out.fetch.len()));
        *in_flight += out.fetch.len();
        for digest in out.fetch.drain(..) {
            let batches = batches.clone();
            let report = LookupReport {
                to: fetched.clone(),
                proposer,
                digest,
                sent: false,
            };
            tokio::spawn(async move {
                let push_until = tokio::time::Instant::now() + PUSH_GRACE;
                let found = batches
                    .get_pushed(&digest, Some(proposer), push_until)
                    .await
                    .is_some();
                if !found {
                    debug!(batch = %digest.short(), "proposed batch not found");
                }
                report.send(found);
            });
        }
        if !refused.is_empty() {
            metrics::counter!("ordo_node_payload_fetches_capped_total")
                .increment(refused.len() as u64);
            for digest in refused {
                let more = order.handle(
                    ordo_types::now_ms(),
                    Input::Fetched {
                        digest,
                        found: false,
                    },
                );
                out.available.extend(more.available);
            }
        }
    }
    if !out.available.is_empty() {
        metrics::counter!("ordo_node_payload_available_total")
            .increment(out.available.len() as u64);
        send(driver, DriverInput::PayloadAvailable(out.available)).await?;
    }
    Ok(())
}

/// A lookup's outcome, sent however the lookup ends (a panic counts as not found), so
/// that the proposal's later digests are never held up by it.
struct LookupReport {
    to: mpsc::UnboundedSender<(PublicKey, Hash32, bool)>,
    proposer: PublicKey,
    digest: Hash32,
    sent: bool,
}

impl LookupReport {
    fn send(mut self, found: bool) {
        self.sent = true;
        let _ = self.to.send((self.proposer, self.digest, found));
    }
}

impl Drop for LookupReport {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.to.send((self.proposer, self.digest, false));
        }
    }
}

async fn send(driver: &mpsc::Sender<DriverInput>, input: DriverInput) -> Result<(), TaskError> {
    driver
        .send(input)
        .await
        .map_err(|_| TaskError::closed("the consensus driver"))
}
