//! The requesting side of the sync protocol: one long-lived stream per peer (a lane) that
//! carries many requests at once, each frame tagged with the request's id, the answers
//! coming back in whatever order the peer finishes them.
//!
//! Why not a stream per request: libp2p-stream hands inbound streams to the accept loop
//! through a channel with room for one, and drops a stream that arrives while it is full.
//! A burst of requests (a proposal naming hundreds of batches a validator lacks) therefore
//! lost most of its streams at the server, each failing as "connection is closed"; a lane
//! is opened once and its frames are never dropped.
//!
//! Invariants:
//! - At most [`MAX_REQUESTS_IN_FLIGHT_PER_PEER`] requests to one peer are open at a time
//!   (the server serves as many per lane); later ones wait for a slot, and their timeout
//!   starts when they get one.
//! - Every request is answered exactly once: by its response, by the lane's failure, or
//!   by the caller's timeout (after which a late answer is dropped). Entries of callers
//!   that gave up are pruned, so a peer that never answers cannot grow the pending map
//!   beyond twice the slot count.
//! - A lane whose stream fails is replaced by a fresh stream on the next request; the
//!   requests pending on the failed one fail at once rather than at their timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::poll_fn;
use futures::AsyncWriteExt;
use libp2p::PeerId;
use libp2p_stream::Control;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::timeout;

use crate::framing::{write_frame, FrameError, FrameReader};
use crate::protocol::{Protocol, MAX_RESPONSE_BYTES};
use crate::stats::NetworkStats;

/// Requests open to one peer at a time. Every request shares the peer's one yamux
/// connection, and a server gives each lane this many answers in progress before it stops
/// reading more; 64 covers a round trip many times over at a batch fetch's pace.
pub const MAX_REQUESTS_IN_FLIGHT_PER_PEER: usize = 64;

/// The bytes in front of every frame on a lane: the request's id, little-endian.
pub(crate) const ID_BYTES: usize = 8;

/// Splits a lane frame into its request id and body; `None` if it is too short.
pub(crate) fn split_frame(frame: &[u8]) -> Option<(u64, &[u8])> {
    let id = u64::from_le_bytes(frame.get(..ID_BYTES)?.try_into().ok()?);
    Some((id, &frame[ID_BYTES..]))
}

/// A frame of `body` tagged with `id`.
pub(crate) fn tag_frame(id: u64, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ID_BYTES + body.len());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

type Answer = Result<Vec<u8>, String>;

/// One stream's requests awaiting an answer; `closed` once the stream failed, after which
/// nothing joins and everything pending has been failed.
#[derive(Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    closed: bool,
}

/// A lane's stream: its frames go out through the lane's task, so that a caller that gives
/// up never leaves half a frame on the stream.
struct OpenLane {
    frames: mpsc::Sender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
}

/// The lane to one peer.
pub(super) struct Lane {
    peer: PeerId,
    index: usize,
    write_timeout: Duration,
    slots: Semaphore,
    open: tokio::sync::Mutex<Option<Arc<OpenLane>>>,
    next_id: AtomicU64,
}

impl Lane {
    pub(super) fn new(peer: PeerId, index: usize, write_timeout: Duration) -> Self {
        Lane {
            peer,
            index,
            write_timeout,
            slots: Semaphore::new(MAX_REQUESTS_IN_FLIGHT_PER_PEER),
            open: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(0),
        }
    }

    /// Sends `request` (an encoded [`crate::Request`]) and returns the encoded response.
    /// `wait` bounds the exchange, not the wait for a slot.
    pub(super) async fn request(
        &self,
        control: &Control,
        stats: &Arc<NetworkStats>,
        request: &[u8],
        wait: Duration,
    ) -> Result<Vec<u8>, String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "shutting down".to_string())?;
        let exchange = async {
            let lane = self.lane(control, stats).await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            {
                let mut pending = lane.pending.lock();
                if pending.closed {
                    return Err("connection is closed".to_string());
                }
                if pending.waiting.len() >= 2 * MAX_REQUESTS_IN_FLIGHT_PER_PEER {
                    pending.waiting.retain(|_, waiter| !waiter.is_closed());
                }
                pending.waiting.insert(id, tx);
            }
            if lane.frames.send(tag_frame(id, request)).await.is_err() {
                return Err("connection is closed".to_string());
            }
            rx.await
                .unwrap_or_else(|_| Err("stream closed without an answer".into()))
        };
        timeout(wait, exchange)
            .await
            .map_err(|_| "timed out".to_string())?
    }

    /// The open lane, or a fresh one on a new stream with its reader running.
    async fn lane(
        &self,
        control: &Control,
        stats: &Arc<NetworkStats>,
    ) -> Result<Arc<OpenLane>, String> {
        let mut open = self.open.lock().await;
        if let Some(lane) = open.as_ref() {
            if !lane.pending.lock().closed {
                return Ok(lane.clone());
            }
        }
        let stream = control
            .clone()
            .open_stream(self.peer, Protocol::Sync.stream_protocol())
            .await
            .map_err(|e| e.to_string())?;
        let (frames, queue) = mpsc::channel(MAX_REQUESTS_IN_FLIGHT_PER_PEER);
        let lane = Arc::new(OpenLane {
            frames,
            pending: Default::default(),
        });
        tokio::spawn(run_lane(
            stream,
            queue,
            lane.pending.clone(),
            stats.clone(),
            self.write_timeout,
            self.index,
        ));
        *open = Some(lane.clone());
        Ok(lane)
    }
}

/// Drives one lane's stream: writes its requests and hands each answer to its request,
/// until the lane is dropped or the stream fails; then fails what is still pending, and
/// the next request opens a new lane. One task does both: a yamux stream polled from two
/// tasks at once loses wake-ups.
async fn run_lane(
    mut stream: libp2p::Stream,
    mut queue: mpsc::Receiver<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    stats: Arc<NetworkStats>,
    write_timeout: Duration,
    index: usize,
) {
    let mut answers = FrameReader::new(ID_BYTES + MAX_RESPONSE_BYTES);
    let why = loop {
        let event = tokio::select! {
            frame = queue.recv() => Event::Write(frame),
            answer = poll_fn(|cx| answers.poll_frame(&mut stream, cx)) => Event::Read(answer),
        };
        match event {
            Event::Write(None) => {
                let _ = stream.close().await;
                break "the lane was dropped".to_string();
            }
            Event::Write(Some(frame)) => {
                match timeout(write_timeout, write_frame(&mut stream, &frame)).await {
                    Ok(Ok(())) => stats.bytes_out(Protocol::Sync, frame.len() + 4),
                    Ok(Err(e)) => break e.to_string(),
                    Err(_) => break "write timed out".to_string(),
                }
            }
            Event::Read(Ok(Some(frame))) => {
                stats.bytes_in(Protocol::Sync, frame.len() + 4);
                let Some((id, body)) = split_frame(&frame) else {
                    stats.decode_error(index, Protocol::Sync);
                    break "an answer without an id".to_string();
                };
                // An answer nobody waits for is late (its request timed out): dropped.
                if let Some(waiter) = pending.lock().waiting.remove(&id) {
                    let _ = waiter.send(Ok(body.to_vec()));
                }
            }
            Event::Read(Ok(None)) => break "stream closed without an answer".to_string(),
            Event::Read(Err(e)) => break e.to_string(),
        }
    };
    fail_all(&pending, &why);
}

enum Event {
    Write(Option<Vec<u8>>),
    Read(Result<Option<Vec<u8>>, FrameError>),
}

fn fail_all(pending: &Mutex<Pending>, why: &str) {
    let mut pending = pending.lock();
    pending.closed = true;
    for (_, waiter) in pending.waiting.drain() {
        let _ = waiter.send(Err(why.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_keeps_its_id_and_body_and_a_short_one_has_none() {
        let frame = tag_frame(u64::MAX - 3, b"body");
        assert_eq!(split_frame(&frame), Some((u64::MAX - 3, &b"body"[..])));
        assert_eq!(split_frame(&tag_frame(7, b"")), Some((7, &b""[..])));
        assert_eq!(split_frame(&[1, 2, 3]), None);
    }
}
