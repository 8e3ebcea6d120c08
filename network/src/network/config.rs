//! How an endpoint runs: [`NetworkConfig`], with defaults sized for a validator.
//!
//! Invariant: every per-peer send queue and every channel towards the node is bounded by a
//! field here, in messages and, where messages can be large, in bytes; the byte bounds are
//! what cap memory when a peer stalls with batches queued.

use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity, Multiaddr};

use crate::committee::Committee;

/// How an endpoint runs; [`NetworkConfig::new`] gives workable defaults.
#[derive(Clone)]
pub struct NetworkConfig {
    /// This endpoint's libp2p identity.
    pub keypair: identity::Keypair,
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0` for a port chosen by the OS.
    pub listen_addr: Multiaddr,
    pub committee: Arc<Committee>,
    /// Consensus messages queued per peer before new ones are dropped...
    pub consensus_queue: usize,
    /// ...and the bytes they may hold.
    pub consensus_queue_bytes: usize,
    /// Batches queued per peer before new ones are dropped, and their bytes.
    pub batch_queue: usize,
    pub batch_queue_bytes: usize,
    /// Acknowledgements queued per peer; they go out before any queued batch.
    pub ack_queue: usize,
    /// Capacity of each channel towards the node and the dissemination layer...
    pub inbound_queue: usize,
    /// ...but received batch messages, which may be large, queue only this many.
    pub batch_inbound_queue: usize,
    /// A write that takes longer marks the peer's stream dead.
    pub write_timeout: Duration,
    pub request_timeout: Duration,
    pub dial_backoff_min: Duration,
    pub dial_backoff_max: Duration,
    /// How long a peer that sent garbage is refused.
    pub ban_duration: Duration,
}

impl NetworkConfig {
    pub fn new(
        keypair: identity::Keypair,
        listen_addr: Multiaddr,
        committee: Arc<Committee>,
    ) -> Self {
        NetworkConfig {
            keypair,
            listen_addr,
            committee,
            consensus_queue: 1024,
            // Four of the largest consensus frames; a round's traffic is a few KiB.
            consensus_queue_bytes: 16 << 20,
            batch_queue: 64,
            // Sixteen of the largest batches, some 400 of the usual ~150 KiB ones.
            batch_queue_bytes: 64 << 20,
            ack_queue: 1024,
            inbound_queue: 1024,
            batch_inbound_queue: 32,
            write_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            dial_backoff_min: Duration::from_millis(100),
            dial_backoff_max: Duration::from_secs(5),
            ban_duration: Duration::from_secs(30),
        }
    }
}
