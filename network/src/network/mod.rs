//! The authenticated validator network: one libp2p swarm (TCP, noise, yamux) per endpoint.
//!
//! ```text
//! out: NetworkHandle ─ send, broadcast ─▶ per-peer queues ─▶ writers ─▶ peer streams
//!                    ─ request ─▶ a lane per peer: one stream, many requests ─▶ peer's lane
//!                    ─ ban, address ─▶ SwarmDriver: dials with back-off, bans, connections
//!                                        ▲ ban
//! in:  peer streams ─▶ accept loops ─▶ readers, lane servers ─▶ Inbound channels
//! ```
//!
//! - `config`: [`NetworkConfig`], the bounds and timeouts;
//! - `handle`: [`NetworkHandle`], the API;
//! - `swarm`: the task that owns the swarm: dialling, back-off, bans, connection tracking;
//! - `writer`: the per-peer send queues and their writer tasks;
//! - `requests`: the request lanes, one stream per peer carrying many requests at once;
//! - `inbound`: accept loops, frame readers, lane servers and [`Inbound`];
//! - `filter`: the test-only partition switch;
//! - `delay`: the injected link delay (wide-area conditions on one machine).
//!
//! Invariants:
//! - Only peers whose libp2p identity is in the committee get a connection: the allow list
//!   denies everyone else right after the noise handshake, and inbound streams from an
//!   unknown peer are dropped as a second line.
//! - Every other validator has one send queue per long-lived protocol, bounded in
//!   messages and in bytes and drained by its own writer task; enqueueing never waits, so
//!   a slow or dead peer loses its own messages (counted) and never delays anyone else or
//!   grows memory.
//! - A validator that is not connected is dialled again with exponential back-off, so a
//!   restarted validator is reconnected.
//! - A peer that sends a frame over the limit or bytes that do not decode is counted,
//!   disconnected and refused for a while.

mod config;
mod delay;
mod filter;
mod handle;
mod inbound;
mod requests;
mod swarm;
mod writer;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tracing::info;

pub use config::NetworkConfig;
pub use delay::{LinkDelay, MAX_LINK_DELAY};
pub use handle::NetworkHandle;
pub use inbound::{Inbound, InboundRequest};
pub use requests::MAX_REQUESTS_IN_FLIGHT_PER_PEER;

use crate::error::Error;
use crate::stats::NetworkStats;
use delay::LinkDelays;
use filter::PeerFilter;
use handle::Inner;
use requests::Lane;
use swarm::SwarmDriver;

/// Starts an endpoint: listens, dials the other validators and serves the protocols.
/// Returns once the listening address is known.
pub async fn start(config: NetworkConfig) -> Result<(NetworkHandle, Inbound), Error> {
    let committee = config.committee.clone();
    let peer_id = config.keypair.public().to_peer_id();
    let local_index = committee.index_of_peer(&peer_id);

    let (swarm, listen_addr) = swarm::listen(&config, local_index).await?;
    info!(%peer_id, %listen_addr, validator = ?local_index, "network listening");

    let stats = Arc::new(NetworkStats::new(committee.size()));
    let filter = Arc::new(PeerFilter::new(committee.size()));
    let delays = Arc::new(LinkDelays::new(committee.size(), local_index));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let (connected_tx, connected_rx) = watch::channel(HashSet::new());
    let mut control = swarm::control(&swarm);
    let mut tasks = Vec::new();

    let inbound = inbound::spawn(
        &config,
        &stats,
        &command_tx,
        &filter,
        &mut control,
        &shutdown_rx,
        &mut tasks,
    )?;
    let queues = writer::spawn(
        &config,
        local_index,
        &control,
        &stats,
        &delays,
        &shutdown_rx,
        &mut tasks,
    );
    let driver = SwarmDriver::new(swarm, &config, local_index, stats.clone(), connected_tx);
    tasks.push(tokio::spawn(driver.run(command_rx, shutdown_rx)));

    let lanes = committee
        .validators()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (Some(i) != local_index).then(|| Lane::new(v.peer_id, i, config.write_timeout))
        })
        .collect();
    let handle = NetworkHandle::new(Inner {
        committee,
        local_index,
        peer_id,
        listen_addr,
        queues,
        control: Mutex::new(control),
        commands: command_tx,
        stats,
        connected: connected_rx,
        shutdown: shutdown_tx,
        tasks: Mutex::new(tasks),
        request_timeout: config.request_timeout,
        lanes,
        filter,
        delays,
    });
    Ok((handle, inbound))
}
