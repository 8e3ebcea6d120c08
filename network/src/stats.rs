//! Counters of one endpoint ([`NetworkStats`]) and of its dissemination layer
//! ([`DisseminationStats`]), kept both as `metrics` (for Prometheus, named
//! `ordo_network_*`) and as plain atomics readable through the handles, because one process
//! may run several endpoints (tests, benchmarks) and global metrics cannot tell them apart.
//!
//! Invariant: every counter only grows, except `connected_peers`.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, gauge};

use crate::protocol::Protocol;

/// Why an outbound message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    QueueFull,
    Unreachable,
    WriteFailed,
    /// Blocked by the test-only partition filter.
    Partitioned,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Unreachable => "unreachable",
            DropReason::WriteFailed => "write_failed",
            DropReason::Partitioned => "partitioned",
        }
    }
}

/// What an endpoint has seen.
#[derive(Debug)]
pub struct NetworkStats {
    /// Decode or framing errors, per validator index.
    decode_errors: Vec<AtomicU64>,
    /// Connections and streams refused because the peer is not a validator.
    refused: AtomicU64,
    /// Validators dropped for sending garbage.
    peers_dropped: AtomicU64,
    /// Outbound messages dropped, per validator index.
    sends_dropped: Vec<AtomicU64>,
    connected_peers: AtomicU64,
    bytes_in: [AtomicU64; Protocol::COUNT],
    bytes_out: [AtomicU64; Protocol::COUNT],
}

/// A copy of [`NetworkStats`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub decode_errors: Vec<u64>,
    pub refused: u64,
    pub peers_dropped: u64,
    /// Outbound messages dropped, per validator index.
    pub sends_dropped: Vec<u64>,
    pub connected_peers: u64,
    pub bytes_in: [u64; Protocol::COUNT],
    pub bytes_out: [u64; Protocol::COUNT],
}

impl NetworkStats {
    pub(crate) fn new(validators: usize) -> Self {
        NetworkStats {
            decode_errors: (0..validators).map(|_| AtomicU64::new(0)).collect(),
            refused: AtomicU64::new(0),
            peers_dropped: AtomicU64::new(0),
            sends_dropped: (0..validators).map(|_| AtomicU64::new(0)).collect(),
            connected_peers: AtomicU64::new(0),
            bytes_in: Default::default(),
            bytes_out: Default::default(),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            decode_errors: self.decode_errors.iter().map(load).collect(),
            refused: load(&self.refused),
            peers_dropped: load(&self.peers_dropped),
            sends_dropped: self.sends_dropped.iter().map(load).collect(),
            connected_peers: load(&self.connected_peers),
            bytes_in: std::array::from_fn(|i| load(&self.bytes_in[i])),
            bytes_out: std::array::from_fn(|i| load(&self.bytes_out[i])),
        }
    }

    pub(crate) fn decode_error(&self, peer: usize, protocol: Protocol) {
        if let Some(c) = self.decode_errors.get(peer) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        counter!("ordo_network_decode_errors_total",
            "peer" => peer.to_string(), "protocol" => protocol.label())
        .increment(1);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        counter!("ordo_network_refused_total").increment(1);
    }

    pub(crate) fn peer_dropped(&self) {
        self.peers_dropped.fetch_add(1, Ordering::Relaxed);
        counter!("ordo_network_peers_dropped_total").increment(1);
    }

    pub(crate) fn send_dropped(&self, peer: usize, protocol: Protocol, reason: DropReason) {
        if let Some(c) = self.sends_dropped.get(peer) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        counter!("ordo_network_send_dropped_total",
            "protocol" => protocol.label(), "reason" => reason.label())
        .increment(1);
    }

    pub(crate) fn set_connected(&self, n: usize) {
        self.connected_peers.store(n as u64, Ordering::Relaxed);
        gauge!("ordo_network_connected_peers").set(n as f64);
    }

    pub(crate) fn bytes_in(&self, protocol: Protocol, n: usize) {
        self.bytes_in[protocol as usize].fetch_add(n as u64, Ordering::Relaxed);
        counter!("ordo_network_bytes_in_total", "protocol" => protocol.label()).increment(n as u64);
    }

    pub(crate) fn bytes_out(&self, protocol: Protocol, n: usize) {
        self.bytes_out[protocol as usize].fetch_add(n as u64, Ordering::Relaxed);
        counter!("ordo_network_bytes_out_total", "protocol" => protocol.label())
            .increment(n as u64);
    }
}

/// Counters of one validator's dissemination layer.
#[derive(Debug, Default)]
pub struct DisseminationStats {
    batches_created: AtomicU64,
    batches_acknowledged: AtomicU64,
    batches_rejected: AtomicU64,
    proofs: AtomicU64,
    signatures_verified: AtomicU64,
    batches_fetched: AtomicU64,
}

/// A copy of [`DisseminationStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisseminationSnapshot {
    pub batches_created: u64,
    /// Acknowledgements this validator signed for others' batches.
    pub batches_acknowledged: u64,
    pub batches_rejected: u64,
    pub proofs: u64,
    /// Transaction signatures this validator has verified in received batches.
    pub signatures_verified: u64,
    pub batches_fetched: u64,
}

impl DisseminationStats {
    pub fn snapshot(&self) -> DisseminationSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DisseminationSnapshot {
            batches_created: l(&self.batches_created),
            batches_acknowledged: l(&self.batches_acknowledged),
            batches_rejected: l(&self.batches_rejected),
            proofs: l(&self.proofs),
            signatures_verified: l(&self.signatures_verified),
            batches_fetched: l(&self.batches_fetched),
        }
    }

    pub(crate) fn batch_created(&self) {
        self.batches_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn batch_acknowledged(&self) {
        self.batches_acknowledged.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn proof_formed(&self) {
        self.proofs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn signatures_verified(&self, n: usize) {
        self.signatures_verified
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn batch_fetched(&self) {
        self.batches_fetched.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        self.batches_rejected.fetch_add(1, Ordering::Relaxed);
        counter!("ordo_network_batches_rejected_total", "reason" => reason).increment(1);
    }
}
