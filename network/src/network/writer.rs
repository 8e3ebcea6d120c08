//! The per-peer writers: for every other validator, a consensus queue and a batch queue,
//! each drained onto its own stream by its own writer task, and an acknowledgement queue
//! that the batch writer drains first.
//!
//! Invariant: every queue is bounded in messages and in bytes ([`crate::send_queue`]) and
//! enqueueing never waits, so a slow or dead peer loses its own messages (counted) and
//! never delays anyone else or grows memory. Under an injected link delay
//! ([`super::delay`]) a writer holds at most [`MAX_IN_LINE`] messages and
//! [`MAX_LINE_BYTES`] beyond its queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use libp2p_stream::Control;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::config::NetworkConfig;
use super::delay::LinkDelays;
use crate::framing::write_frame;
use crate::protocol::Protocol;
use crate::send_queue::{self, QueueReceiver, QueueSender};
use crate::stats::{DropReason, NetworkStats};

/// Messages a writer holds while an injected delay runs: some seconds of a busy link...
const MAX_IN_LINE: usize = 65_536;
/// ...and their bytes: a full batch queue's worth several times over.
const MAX_LINE_BYTES: usize = 64 << 20;

/// The send queues of one validator.
pub(super) struct PeerQueues {
    consensus: QueueSender,
    batch: QueueSender,
    ack: QueueSender,
}

/// Which of a peer's queues a message joins.
#[derive(Clone, Copy)]
pub(super) enum Queue {
    Consensus,
    Batch,
    Ack,
}

impl Queue {
    pub(super) fn protocol(self) -> Protocol {
        match self {
            Queue::Consensus => Protocol::Consensus,
            Queue::Batch | Queue::Ack => Protocol::Batch,
        }
    }

    pub(super) fn of(self, queues: &PeerQueues) -> &QueueSender {
        match self {
            Queue::Consensus => &queues.consensus,
            Queue::Batch => &queues.batch,
            Queue::Ack => &queues.ack,
        }
    }
}

/// Spawns the writers of every validator but this one, onto `tasks`; returns their queues
/// by committee index, `None` at this endpoint's own.
pub(super) fn spawn(
    config: &NetworkConfig,
    local_index: Option<usize>,
    control: &Control,
    stats: &Arc<NetworkStats>,
    delays: &Arc<LinkDelays>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Vec<Option<PeerQueues>> {
    let committee = &config.committee;
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
                    delays: delays.clone(),
                    write_timeout: config.write_timeout,
                    backoff_min: config.dial_backoff_min,
                    backoff_max: config.dial_backoff_max,
                }
                .run(rx, priority, shutdown.clone()),
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
    queues
}

struct Writer {
    index: usize,
    peer: PeerId,
    protocol: Protocol,
    control: Control,
    stats: Arc<NetworkStats>,
    delays: Arc<LinkDelays>,
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
        // Messages held for an injected delay, with when each is due, in order.
        let mut line: VecDeque<(tokio::time::Instant, send_queue::Message)> = VecDeque::new();
        let mut line_bytes = 0usize;
        let mut rng = ordo_types::SeededRng::new(self.index as u64);
        loop {
            let due = line.front().map(|(at, _)| *at);
            let room = line.len() < MAX_IN_LINE && line_bytes < MAX_LINE_BYTES;
            let received = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                _ = sleep_until(due) => None,
                Some(m) = recv_if_any(&mut priority), if room => Some(m),
                m = queue.recv(), if room => match m { Some(m) => Some(m), None => break },
            };
            let message = match received {
                Some(m) => {
                    let delay = self.delays.of(self.index);
                    if delay.is_none() && line.is_empty() {
                        m
                    } else {
                        let jitter = rng.below(delay.jitter.as_micros() as u64 + 1);
                        let mut at = tokio::time::Instant::now()
                            + delay.one_way
                            + Duration::from_micros(jitter);
                        if let Some((last, _)) = line.back() {
                            at = at.max(*last);
                        }
                        line_bytes += m.len();
                        line.push_back((at, m));
                        continue;
                    }
                }
                None => match line.pop_front() {
                    Some((_, m)) => {
                        line_bytes -= m.len();
                        m
                    }
                    None => continue,
                },
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

/// Resolves at `at`; never without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next message of an optional queue; never resolves without one.
async fn recv_if_any(queue: &mut Option<QueueReceiver>) -> Option<send_queue::Message> {
    match queue {
        Some(q) => q.recv().await,
        None => std::future::pending().await,
    }
}
