//! The payload maker: coalesces the opaque payloads of concurrent submissions
//! (ordering-only networks) into batches.
//!
//! Every batch costs the same fixed work however small it is: a push to each peer, a
//! store and a signed acknowledgement at each of them, the acknowledgements' checks at its
//! author. Made one per submission, as they were, the batches followed the clients'
//! request pattern: 4 lanes a validator at 50,000 payloads/s made about 370 batches a second
//! per validator of 34 payloads each, and their fixed work held two cores busy.
//!
//! Invariants ([`Coalescer`], without I/O or clock):
//! - a submission's chunk is never split: it joins the open batch when it fits
//!   ([`OpaqueLimits`]), otherwise the open batch is cut first;
//! - the open batch is cut when full, and otherwise as soon as [`OpaqueLimits::interval`]
//!   has passed since the last cut, at once when it has already passed: below one batch
//!   per interval nothing waits, above it each validator cuts about one batch per interval;
//! - a submission's payloads are split into chunks that each fit a batch
//!   ([`split`]); a chunk's payloads count as unproven from the moment it is queued
//!   ([`Unproven`]) until dissemination counts them itself (the batch is handed on), so
//!   admission control sees them even if their submitter goes away meanwhile;
//! - a submission is answered when its chunks have been handed to dissemination (which
//!   holds them back while too many of our batches lack a proof).

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::batch::BatchBody;
use crate::batch_maker::BatchSink;
use crate::quorum_waiter::Unproven;

/// Bytes counted for a payload besides its contents (its length prefix in the batch).
pub(crate) const PAYLOAD_OVERHEAD: usize = 8;

/// Where to say that a chunk is in a batch (or why not), and its count while it waits.
pub(crate) type Waiter = (oneshot::Sender<Result<(), String>>, Unproven);

/// Part of one submission's payloads, and where to say that they are in a batch.
pub(crate) struct Chunk {
    pub payloads: Vec<Vec<u8>>,
    pub done: oneshot::Sender<Result<(), String>>,
    pub queued: Unproven,
}

/// Splits one submission's payloads, in order, into chunks that each fit a batch; the
/// length of a payload that alone is larger than a batch may be, if there is one.
pub(crate) fn split(
    payloads: Vec<Vec<u8>>,
    limits: &OpaqueLimits,
) -> Result<Vec<Vec<Vec<u8>>>, usize> {
    let mut chunks: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut bytes = 0;
    for payload in payloads {
        let size = payload.len() + PAYLOAD_OVERHEAD;
        if size > limits.max_bytes {
            return Err(payload.len());
        }
        match chunks.last_mut() {
            Some(chunk)
                if chunk.len() < limits.max_payloads && bytes + size <= limits.max_bytes =>
            {
                bytes += size;
                chunk.push(payload);
            }
            _ => {
                bytes = size;
                chunks.push(vec![payload]);
            }
        }
    }
    Ok(chunks)
}

/// When the open batch is cut.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpaqueLimits {
    /// A batch this large (payload bytes and their overhead) is cut at once.
    pub cut_bytes: usize,
    /// No batch grows past this many bytes (the batch message's bound); a chunk that would
    /// take it further goes into the next batch.
    pub max_bytes: usize,
    pub max_payloads: usize,
    /// The least time between two cuts of batches that are not full.
    pub interval: Duration,
}

/// The open batch and the rule for cutting it.
pub(crate) struct Coalescer {
    limits: OpaqueLimits,
    payloads: Vec<Vec<u8>>,
    bytes: usize,
    waiters: Vec<Waiter>,
    last_cut: Option<Instant>,
}

/// A cut batch's payloads and the submissions to answer once it is handed on.
pub(crate) struct Cut {
    pub payloads: Vec<Vec<u8>>,
    pub waiters: Vec<Waiter>,
}

impl Coalescer {
    pub(crate) fn new(limits: OpaqueLimits) -> Self {
        Coalescer {
            limits,
            payloads: Vec::new(),
            bytes: 0,
            waiters: Vec::new(),
            last_cut: None,
        }
    }

    fn chunk_bytes(payloads: &[Vec<u8>]) -> usize {
        payloads.iter().map(|p| p.len() + PAYLOAD_OVERHEAD).sum()
    }

    /// Adds a submission's chunk; returns the open batch cut to make room for it, if it
    /// did not fit.
    pub(crate) fn push(&mut self, chunk: Chunk, now: Instant) -> Option<Cut> {
        let bytes = Self::chunk_bytes(&chunk.payloads);
        let fits = self.payloads.len() + chunk.payloads.len() <= self.limits.max_payloads
            && self.bytes + bytes <= self.limits.max_bytes;
        let cut = if self.payloads.is_empty() || fits {
            None
        } else {
            Some(self.cut(now))
        };
        self.bytes += bytes;
        self.payloads.extend(chunk.payloads);
        self.waiters.push((chunk.done, chunk.queued));
        cut
    }

    /// The open batch has reached its cut size or payload count.
    pub(crate) fn full(&self) -> bool {
        self.bytes >= self.limits.cut_bytes || self.payloads.len() >= self.limits.max_payloads
    }

    /// When the open batch must be cut: `None` while it is empty; a time at or before
    /// `now` means at once.
    pub(crate) fn due(&self, now: Instant) -> Option<Instant> {
        if self.payloads.is_empty() {
            return None;
        }
        if self.full() {
            return Some(now);
        }
        Some(self.last_cut.map_or(now, |at| at + self.limits.interval))
    }

    /// Closes the open batch (which may be empty).
    pub(crate) fn cut(&mut self, now: Instant) -> Cut {
        self.last_cut = Some(now);
        self.bytes = 0;
        Cut {
            payloads: std::mem::take(&mut self.payloads),
            waiters: std::mem::take(&mut self.waiters),
        }
    }
}

/// The task around a [`Coalescer`].
pub(crate) struct PayloadMaker<S> {
    pub sink: S,
    pub limits: OpaqueLimits,
}

impl<S: BatchSink> PayloadMaker<S> {
    pub(crate) async fn run(
        self,
        mut chunks: mpsc::Receiver<Chunk>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut open = Coalescer::new(self.limits);
        loop {
            let now = Instant::now();
            let due = open.due(now);
            if due.is_some_and(|at| at <= now) {
                let cut = open.cut(now);
                tokio::select! {
                    _ = self.hand_on(cut) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let wake = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = chunks.recv() => {
                    let Some(chunk) = chunk else { return };
                    let mut next = Some(chunk);
                    // Take in whatever else has arrived, so that a burst of submissions
                    // makes full batches rather than one for its first submission.
                    while let Some(chunk) = next {
                        let now = Instant::now();
                        // The chunk may close the open batch, fill the next one, or both.
                        let made_room = open.push(chunk, now);
                        let full = open.full().then(|| open.cut(now));
                        for cut in made_room.into_iter().chain(full) {
                            tokio::select! {
                                _ = self.hand_on(cut) => {}
                                _ = shutdown.changed() => return,
                            }
                        }
                        next = chunks.try_recv().ok();
                    }
                }
                _ = wake => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn hand_on(&self, cut: Cut) {
        if cut.payloads.is_empty() {
            return;
        }
        let answer = match self.sink.disseminate(BatchBody::Opaque(cut.payloads)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                warn!(error = %e, "payload batch not disseminated");
                Err(e.to_string())
            }
        };
        // Dissemination counts the items now (or they failed): their queued count goes
        // before the submitters hear of it.
        for (waiter, queued) in cut.waiters {
            drop(queued);
            // A submitter that went away has nothing to be told.
            let _ = waiter.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    const LIMITS: OpaqueLimits = OpaqueLimits {
        cut_bytes: 1_000,
        max_bytes: 2_000,
        max_payloads: 10,
        interval: Duration::from_millis(10),
    };

    fn chunk(n: usize, size: usize) -> (Chunk, oneshot::Receiver<Result<(), String>>) {
        counted_chunk(n, size, &Arc::default())
    }

    fn counted_chunk(
        n: usize,
        size: usize,
        count: &Arc<AtomicU64>,
    ) -> (Chunk, oneshot::Receiver<Result<(), String>>) {
        let (done, rx) = oneshot::channel();
        let payloads = (0..n).map(|i| vec![i as u8; size]).collect();
        let queued = Unproven::new(n as u64, count.clone());
        (
            Chunk {
                payloads,
                done,
                queued,
            },
            rx,
        )
    }

    /// A coalescer that has just cut a batch, and when.
    fn just_cut() -> (Coalescer, Instant) {
        let mut c = Coalescer::new(LIMITS);
        let t0 = Instant::now();
        c.push(chunk(1, 10).0, t0);
        c.cut(t0);
        (c, t0)
    }

    #[test]
    fn a_submission_is_split_in_order_into_chunks_that_fit() {
        let payloads: Vec<Vec<u8>> = (0..25u8).map(|i| vec![i; 92]).collect();
        // 100 bytes each with the overhead: 10 a chunk by count (20 would fit by bytes).
        let chunks = split(payloads.clone(), &LIMITS).unwrap();
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert_eq!(chunks.concat(), payloads, "in order, nothing lost");
        // 250 bytes a batch: two a chunk by bytes.
        let tight = OpaqueLimits {
            max_bytes: 250,
            ..LIMITS
        };
        let sizes: Vec<usize> = split(payloads, &tight)
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [vec![2; 12], vec![1]].concat());
        assert_eq!(split(vec![vec![0; 1_993]], &LIMITS), Err(1_993));
        assert!(split(Vec::new(), &LIMITS).unwrap().is_empty());
    }

    #[test]
    fn the_first_chunk_after_a_quiet_spell_is_cut_at_once() {
        let mut c = Coalescer::new(LIMITS);
        let t0 = Instant::now();
        assert_eq!(c.due(t0), None);
        assert!(c.push(chunk(2, 10).0, t0).is_none());
        assert_eq!(c.due(t0), Some(t0));
        let cut = c.cut(t0);
        assert_eq!((cut.payloads.len(), cut.waiters.len()), (2, 1));
        // A whole interval later, nothing waits either.
        let t1 = t0 + LIMITS.interval;
        c.push(chunk(1, 10).0, t1);
        assert_eq!(c.due(t1), Some(t1));
    }

    #[test]
    fn chunks_within_an_interval_of_the_last_cut_wait_for_it_together() {
        let (mut c, t0) = just_cut();
        let t1 = t0 + Duration::from_millis(3);
        c.push(chunk(2, 10).0, t1);
        c.push(chunk(3, 10).0, t1 + Duration::from_millis(2));
        assert_eq!(c.due(t1), Some(t0 + LIMITS.interval));
        let cut = c.cut(t0 + LIMITS.interval);
        assert_eq!((cut.payloads.len(), cut.waiters.len()), (5, 2));
        assert_eq!(c.due(t0 + LIMITS.interval), None);
    }

    #[test]
    fn a_full_batch_is_cut_at_once_and_a_chunk_is_never_split() {
        let (mut c, t0) = just_cut();
        // 600 + 8 bytes: not yet at the cut size, due at the interval.
        c.push(chunk(1, 600).0, t0);
        assert_eq!(c.due(t0), Some(t0 + LIMITS.interval));
        // Another 608 bytes fit under the maximum and reach the cut size.
        assert!(c.push(chunk(1, 600).0, t0).is_none());
        assert_eq!(c.due(t0), Some(t0));
        // 1,216 + 1,000 bytes would pass the maximum: the open batch goes first, whole.
        let cut = c.push(chunk(1, 992).0, t0).expect("cut to make room");
        assert_eq!((cut.payloads.len(), cut.waiters.len()), (2, 2));
        let cut = c.cut(t0);
        assert_eq!((cut.payloads.len(), cut.payloads[0].len()), (1, 992));
        // The payload count bounds a batch too.
        c.push(chunk(6, 1).0, t0);
        let cut = c.push(chunk(6, 1).0, t0).expect("cut by count");
        assert_eq!(cut.payloads.len(), 6);
        c.push(chunk(4, 1).0, t0);
        assert_eq!(c.due(t0), Some(t0), "10 payloads fill a batch");
    }

    /// Records the batches it is handed; fails the first one.
    #[derive(Clone, Default)]
    struct Recorder(Arc<parking_lot::Mutex<Vec<usize>>>);

    impl BatchSink for Recorder {
        async fn disseminate(
            &self,
            body: BatchBody,
        ) -> Result<crate::batch::BatchInfo, crate::error::Error> {
            let mut seen = self.0.lock();
            seen.push(body.len());
            if seen.len() == 1 {
                return Err(crate::error::Error::Shutdown);
            }
            Ok(crate::batch::BatchInfo {
                author: ordo_types::KeyPair::from_seed([1; 32]).public(),
                seq: seen.len() as u64,
                digest: ordo_types::Hash32::ZERO,
                num_txs: body.len() as u32,
                bytes: 0,
                gas: 0,
            })
        }
    }

    /// Through the task: the first submission goes out at once; two more within the
    /// interval share the next batch, and neither is answered before it is handed on.
    #[tokio::test]
    async fn submissions_within_an_interval_share_a_batch() {
        let sink = Recorder::default();
        let limits = OpaqueLimits {
            interval: Duration::from_secs(1),
            ..LIMITS
        };
        let (tx, rx) = mpsc::channel(16);
        let (_stop, stop) = watch::channel(false);
        let task = tokio::spawn(
            PayloadMaker {
                sink: sink.clone(),
                limits,
            }
            .run(rx, stop),
        );
        let bound = Duration::from_secs(30);
        let count = Arc::new(AtomicU64::new(0));

        let t0 = Instant::now();
        let (a, a_done) = counted_chunk(1, 10, &count);
        tx.send(a).await.unwrap();
        let answer = tokio::time::timeout(bound, a_done)
            .await
            .expect("bounded")
            .unwrap();
        assert!(answer.is_err(), "the sink's failure reaches the submitter");
        assert_eq!(*sink.0.lock(), vec![1]);
        assert_eq!(count.load(Ordering::Relaxed), 0);

        let (b, mut b_done) = counted_chunk(2, 10, &count);
        let (c, c_done) = counted_chunk(3, 10, &count);
        tx.send(b).await.unwrap();
        tx.send(c).await.unwrap();
        // A tenth of the interval: the maker has taken both in and cut nothing.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            b_done.try_recv().is_err(),
            "not answered before its batch is cut"
        );
        assert_eq!(count.load(Ordering::Relaxed), 5, "counted while they wait");
        let answer = tokio::time::timeout(bound, c_done)
            .await
            .expect("bounded")
            .unwrap();
        assert_eq!(answer, Ok(()));
        assert_eq!(b_done.try_recv(), Ok(Ok(())));
        // Cut at the interval after a's cut, which came after t0.
        assert!(t0.elapsed() >= limits.interval, "cut at the interval");
        assert_eq!(*sink.0.lock(), vec![1, 5]);
        assert_eq!(count.load(Ordering::Relaxed), 0, "handed on: counted there");

        drop(tx);
        tokio::time::timeout(bound, task)
            .await
            .expect("ends with its queue")
            .unwrap();
    }

    /// Queues one-payload chunks of `sizes` before the maker runs, lets it hand them all
    /// on, and returns the payload counts of the batches it made.
    async fn batches_of_a_burst(sizes: &[usize]) -> Vec<usize> {
        let sink = Recorder::default();
        let (tx, rx) = mpsc::channel(16);
        let mut answers = Vec::new();
        for &size in sizes {
            let (c, done) = chunk(1, size);
            tx.send(c).await.unwrap();
            answers.push(done);
        }
        let (_stop, stop) = watch::channel(false);
        let maker = PayloadMaker {
            sink: sink.clone(),
            limits: LIMITS,
        };
        let task = tokio::spawn(maker.run(rx, stop));
        let bound = Duration::from_secs(30);
        for done in answers {
            let answer = tokio::time::timeout(bound, done).await;
            answer.expect("bounded").expect("answered").ok();
        }
        drop(tx);
        tokio::time::timeout(bound, task)
            .await
            .expect("ends")
            .unwrap();
        let batches = sink.0.lock().clone();
        batches
    }

    /// Chunks queued before the maker runs fill batches up to the cut size, not up to the
    /// largest batch allowed: 408 bytes a chunk, the third reaches the 1,000-byte cut size.
    #[tokio::test]
    async fn a_burst_is_cut_at_the_cut_size() {
        assert_eq!(batches_of_a_burst(&[400; 6]).await, vec![3, 3]);
    }

    /// A chunk that does not fit the open batch closes it, and is cut at once itself when
    /// it fills the next one.
    #[tokio::test]
    async fn a_chunk_that_fills_the_next_batch_is_cut_too() {
        assert_eq!(batches_of_a_burst(&[900, 1_200, 400]).await, vec![1, 1, 1]);
    }

    #[test]
    fn a_chunk_larger_than_a_batch_goes_alone() {
        let mut c = Coalescer::new(LIMITS);
        let t0 = Instant::now();
        assert!(c.push(chunk(20, 1).0, t0).is_none());
        assert_eq!(c.due(t0), Some(t0));
        let cut = c.cut(t0);
        assert_eq!(cut.payloads.len(), 20);
    }
}
