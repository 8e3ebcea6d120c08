//! The inbound side: one accept loop per protocol, a reader per peer on each protocol (for
//! the sync protocol, a lane server answering many requests at once), and the [`Inbound`]
//! channels they route to (consensus bytes, batch messages, batch requests, opaque
//! requests).
//!
//! Invariants:
//! - Inbound streams from a peer outside the committee are dropped, a second line behind
//!   the swarm's allow list.
//! - A peer that sends a frame over the limit or bytes that do not decode is counted and
//!   banned through the swarm driver: disconnected and refused for a while.
//! - Memory stays bounded: one reader per peer and protocol, at most
//!   [`MAX_REQUESTS_IN_FLIGHT_PER_PEER`] requests in progress per peer, frames bounded by
//!   their protocol's limit, and bounded channels that apply back-pressure to the stream
//!   they read from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::poll_fn;
use futures::{AsyncWriteExt, StreamExt};
use libp2p_stream::Control;
use ordo_types::{codec, PublicKey};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::config::NetworkConfig;
use super::filter::PeerFilter;
use super::requests::{split_frame, tag_frame, ID_BYTES, MAX_REQUESTS_IN_FLIGHT_PER_PEER};
use super::swarm::Command;
use crate::batch::BatchMessage;
use crate::committee::Committee;
use crate::error::Error;
use crate::framing::{read_frame, write_frame, FrameError, FrameReader};
use crate::protocol::{
    Protocol, Request, Response, MAX_BATCH_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
use crate::stats::NetworkStats;

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

/// Opens the channels towards the node and spawns one accept loop per protocol onto
/// `tasks`; bad input is reported to the driver through `commands`.
pub(super) fn spawn(
    config: &NetworkConfig,
    stats: &Arc<NetworkStats>,
    commands: &mpsc::UnboundedSender<Command>,
    filter: &Arc<PeerFilter>,
    control: &mut Control,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Inbound, Error> {
    let (consensus_tx, consensus_rx) = mpsc::channel(config.inbound_queue);
    let (batches_tx, batches_rx) = mpsc::channel(config.batch_inbound_queue);
    let (batch_req_tx, batch_req_rx) = mpsc::channel(config.inbound_queue);
    let (req_tx, req_rx) = mpsc::channel(config.inbound_queue);
    let ctx = Arc::new(InboundCtx {
        committee: config.committee.clone(),
        stats: stats.clone(),
        commands: commands.clone(),
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
            shutdown.clone(),
        )));
    }
    Ok(Inbound {
        consensus: consensus_rx,
        batches: batches_rx,
        batch_requests: batch_req_rx,
        requests: req_rx,
    })
}

async fn accept_loop(
    protocol: Protocol,
    mut incoming: libp2p_stream::IncomingStreams,
    ctx: Arc<InboundCtx>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut readers = tokio::task::JoinSet::new();
    // One reader per peer and protocol (every protocol is long-lived, requests included):
    // a peer opens a new stream only after giving up on the old one, so the old reader is
    // stale and must not hold memory.
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
        let ctx = ctx.clone();
        let handle = readers.spawn(async move {
            match protocol {
                Protocol::Sync => serve_lane(index, stream, &ctx).await,
                _ => read_stream(protocol, index, stream, &ctx).await,
            }
        });
        if let Some(old) = current.insert(index, handle) {
            old.abort();
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
            Err(FrameError::Io(e)) => {
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

/// Serves one peer's request lane (see [`super::requests`]): each request frame is routed,
/// answered in its own task, and its answer written back tagged with the request's id, in
/// whatever order the answers finish. With [`MAX_REQUESTS_IN_FLIGHT_PER_PEER`] answers in
/// progress it stops reading, which holds the peer back instead of queueing without bound.
/// One task reads and writes the stream: a yamux stream polled from two tasks at once
/// loses wake-ups.
async fn serve_lane(index: usize, mut stream: libp2p::Stream, ctx: &Arc<InboundCtx>) {
    let Some(from) = ctx.committee.get(index).map(|v| v.consensus_key) else {
        return;
    };
    let (answers, mut finished) = mpsc::channel::<Vec<u8>>(MAX_REQUESTS_IN_FLIGHT_PER_PEER);
    let mut answering = tokio::task::JoinSet::new();
    let mut in_progress = 0usize;
    let mut requests = FrameReader::new(ID_BYTES + MAX_REQUEST_BYTES);
    let mut reading = true;
    while reading || in_progress > 0 {
        let event = tokio::select! {
            Some(answer) = finished.recv() => Ok(answer),
            frame = poll_fn(|cx| requests.poll_frame(&mut stream, cx)),
                if reading && in_progress < MAX_REQUESTS_IN_FLIGHT_PER_PEER => Err(frame),
        };
        let frame = match event {
            Ok(answer) => {
                in_progress -= 1;
                while answering.try_join_next().is_some() {}
                match timeout(ctx.write_timeout, write_frame(&mut stream, &answer)).await {
                    Ok(Ok(())) => ctx.stats.bytes_out(Protocol::Sync, answer.len() + 4),
                    _ => return,
                }
                continue;
            }
            Err(Ok(Some(frame))) => frame,
            Err(Ok(None)) | Err(Err(FrameError::Io(_))) => {
                // The answers in progress still go out.
                reading = false;
                continue;
            }
            Err(Err(e @ FrameError::TooLarge { .. })) => {
                return misbehaved(ctx, index, Protocol::Sync, &e)
            }
        };
        ctx.stats.bytes_in(Protocol::Sync, frame.len() + 4);
        // A partitioned peer's request is never answered, as across a real partition.
        if ctx.filter.blocks(index) {
            continue;
        }
        let Some((id, body)) = split_frame(&frame) else {
            return misbehaved(ctx, index, Protocol::Sync, &"a request without an id");
        };
        let request = match codec::decode::<Request, MAX_REQUEST_BYTES>(body) {
            Ok(r) => r,
            Err(e) => return misbehaved(ctx, index, Protocol::Sync, &e),
        };
        let (reply, answer) = oneshot::channel();
        let route = match request {
            Request::Batch(_) => &ctx.batch_requests,
            Request::Opaque(_) => &ctx.requests,
        };
        // A full queue means we are overloaded: say so rather than wait.
        let routed = route
            .try_send(InboundRequest {
                from,
                request,
                reply,
            })
            .is_ok();
        let answers = answers.clone();
        let wait = ctx.request_timeout;
        in_progress += 1;
        answering.spawn(async move {
            let response = if routed {
                timeout(wait, answer)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(Response::Busy)
            } else {
                Response::Busy
            };
            let mut bytes = codec::encode(&response);
            if bytes.len() > MAX_RESPONSE_BYTES {
                warn!(
                    peer = index,
                    len = bytes.len(),
                    "response over the limit not sent"
                );
                bytes = codec::encode(&Response::Busy);
            }
            // The lane keeps the receiver while any answer is in progress.
            let _ = answers.send(tag_frame(id, &bytes)).await;
        });
    }
    let _ = stream.close().await;
}
