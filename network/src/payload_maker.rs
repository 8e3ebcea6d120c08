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
//! - a submission is answered when its chunk has been handed to dissemination (which holds
//!   it back while too many of our batches lack a proof), so admission control counts its
//!   payloads until they are counted as unproven there.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::batch::BatchBody;
use crate::batch_maker::BatchSink;

/// Bytes counted for a payload besides its contents (its length prefix in the batch).
pub(crate) const PAYLOAD_OVERHEAD: usize = 8;

/// One submission's payloads and where to say that they are in a batch.
pub(crate) struct Chunk {
    pub payloads: Vec<Vec<u8>>,
    pub done: oneshot::Sender<Result<(), String>>,
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
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
    last_cut: Option<Instant>,
}

/// A cut batch's payloads and the submissions to answer once it is handed on.
pub(crate) struct Cut {
    pub payloads: Vec<Vec<u8>>,
    pub waiters: Vec<oneshot::Sender<Result<(), String>>>,
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
        self.waiters.push(chunk.done);
        cut
    }

    /// When the open batch must be cut: `None` while it is empty; a time at or before
    /// `now` means at once.
    pub(crate) fn due(&self, now: Instant) -> Option<Instant> {
        if self.payloads.is_empty() {
            return None;
        }
        if self.bytes >= self.limits.cut_bytes || self.payloads.len() >= self.limits.max_payloads {
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
                    // makes one batch rather than one for its first submission.
                    while let Some(chunk) = next {
                        if let Some(cut) = open.push(chunk, Instant::now()) {
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
        for waiter in cut.waiters {
            // A submitter that went away has nothing to be told.
            let _ = waiter.send(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: OpaqueLimits = OpaqueLimits {
        cut_bytes: 1_000,
        max_bytes: 2_000,
        max_payloads: 10,
        interval: Duration::from_millis(10),
    };

    fn chunk(n: usize, size: usize) -> (Chunk, oneshot::Receiver<Result<(), String>>) {
        let (done, rx) = oneshot::channel();
        let payloads = (0..n).map(|i| vec![i as u8; size]).collect();
        (Chunk { payloads, done }, rx)
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
        let mut c = Coalescer::new(LIMITS);
        let t0 = Instant::now();
        c.push(chunk(1, 10).0, t0);
        c.cut(t0);
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
        let mut c = Coalescer::new(LIMITS);
        let t0 = Instant::now();
        c.push(chunk(1, 10).0, t0);
        c.cut(t0);
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

    /// Records the batches it is handed.
    #[derive(Clone, Default)]
    struct Recorder(std::sync::Arc<parking_lot::Mutex<Vec<usize>>>);

    impl BatchSink for Recorder {
        async fn disseminate(
            &self,
            body: BatchBody,
        ) -> Result<crate::batch::BatchInfo, crate::error::Error> {
            self.0.lock().push(body.len());
            Err(crate::error::Error::Shutdown)
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

        let (a, a_done) = chunk(1, 10);
        tx.send(a).await.unwrap();
        let answer = tokio::time::timeout(bound, a_done)
            .await
            .expect("bounded")
            .unwrap();
        assert!(answer.is_err(), "the sink's failure reaches the submitter");
        assert_eq!(*sink.0.lock(), vec![1]);

        let sent = Instant::now();
        let (b, mut b_done) = chunk(2, 10);
        let (c, c_done) = chunk(3, 10);
        tx.send(b).await.unwrap();
        tx.send(c).await.unwrap();
        assert!(
            b_done.try_recv().is_err(),
            "not answered before its batch is cut"
        );
        tokio::time::timeout(bound, c_done)
            .await
            .expect("bounded")
            .unwrap()
            .unwrap_err();
        assert!(b_done.try_recv().is_ok());
        assert!(
            sent.elapsed() >= Duration::from_millis(900),
            "cut at the interval"
        );
        assert_eq!(*sink.0.lock(), vec![1, 5]);

        drop(tx);
        tokio::time::timeout(bound, task)
            .await
            .expect("ends with its queue")
            .unwrap();
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
