//! The inbound side: one accept loop per protocol, a reader per peer on each long-lived
//! protocol, a server per sync request, and the [`Inbound`] channels they route to
//! (consensus bytes, batch messages, batch requests, opaque requests).
//!
//! Invariants:
//! - Inbound streams from a peer outside the committee are dropped, a second line behind
//!   the swarm's allow list.
//! - A peer that sends a frame over the limit or bytes that do not decode is counted and
//!   banned through the swarm driver: disconnected and refused for a while.
//! - Memory stays bounded: one reader per peer and long-lived protocol, at most
//!   [`MAX_CONCURRENT_REQUESTS`] requests served at once, frames bounded by their
//!   protocol's limit, and bounded channels that apply back-pressure to the stream they
//!   read from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p_stream::Control;
use ordo_types::{codec, PublicKey};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::config::NetworkConfig;
use super::filter::PeerFilter;
use super::swarm::Command;
use crate::batch::BatchMessage;
use crate::committee::Committee;
use crate::error::Error;
use crate::framing::{read_frame, write_frame, FrameError};
use crate::protocol::{
    Protocol, Request, Response, MAX_BATCH_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
use crate::stats::NetworkStats;

/// Sync requests served at the same time; further request streams are dropped.
const MAX_CONCURRENT_REQUESTS: usize = 256;

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
    // One reader per peer on a long-lived protocol: a peer opens a new stream only after
    // giving up on the old one, so the old reader is stale and must not hold memory.
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
        if protocol == Protocol::Sync && readers.len() >= MAX_CONCURRENT_REQUESTS {
            debug!(
                peer = index,
                "too many requests in progress; stream dropped"
            );
            continue;
        }
        let ctx = ctx.clone();
        let handle = readers.spawn(async move {
            match protocol {
                Protocol::Sync => serve_request(index, stream, &ctx).await,
                _ => read_stream(protocol, index, stream, &ctx).await,
            }
        });
        if protocol != Protocol::Sync {
            if let Some(old) = current.insert(index, handle) {
                old.abort();
            }
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

async fn serve_request(index: usize, mut stream: libp2p::Stream, ctx: &InboundCtx) {
    let Some(from) = ctx.committee.get(index).map(|v| v.consensus_key) else {
        return;
    };
    let mut buf = Vec::new();
    match timeout(
        ctx.request_timeout,
        read_frame(&mut stream, MAX_REQUEST_BYTES, &mut buf),
    )
    .await
    {
        Ok(Ok(true)) => {}
        Ok(Err(e @ FrameError::TooLarge { .. })) => {
            return misbehaved(ctx, index, Protocol::Sync, &e)
        }
        _ => return,
    }
    ctx.stats.bytes_in(Protocol::Sync, buf.len() + 4);
    if ctx.filter.blocks(index) {
        return;
    }
    let request = match codec::decode::<Request, MAX_REQUEST_BYTES>(&buf) {
        Ok(r) => r,
        Err(e) => return misbehaved(ctx, index, Protocol::Sync, &e),
    };
    let (reply, answer) = oneshot::channel();
    let route = match request {
        Request::Batch(_) => &ctx.batch_requests,
        Request::Opaque(_) => &ctx.requests,
    };
    // A full queue means we are overloaded: say so rather than wait.
    let response = match route.try_send(InboundRequest {
        from,
        request,
        reply,
    }) {
        Ok(()) => timeout(ctx.request_timeout, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Response::Busy),
        Err(_) => Response::Busy,
    };
    let bytes = codec::encode(&response);
    if bytes.len() > MAX_RESPONSE_BYTES {
        warn!(
            peer = index,
            len = bytes.len(),
            "response over the limit not sent"
        );
        return;
    }
    if let Ok(Ok(())) = timeout(ctx.write_timeout, write_frame(&mut stream, &bytes)).await {
        ctx.stats.bytes_out(Protocol::Sync, bytes.len() + 4);
        let _ = stream.close().await;
    }
}
