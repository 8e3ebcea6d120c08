//! Ordo's validator network over libp2p, the mempool, and batch dissemination with proofs
//! of availability.
//!
//! - [`start`] an endpoint from a [`NetworkConfig`] (identity, listen address, [`Committee`]
//!   from genesis); it returns a [`NetworkHandle`] (send to one validator, broadcast to all,
//!   request, stats, shutdown) and the [`Inbound`] channels: consensus bytes, batch
//!   messages, batch requests and opaque requests. Consensus messages are opaque bytes here;
//!   only validators are served; every queue and frame is bounded.
//! - [`Mempool`]: verified transactions with caps (count, bytes, per sender), a nonce
//!   window, deduplication and expiry.
//! - [`Dissemination::spawn`]: batch maker, opaque payload maker, receiver (verifies every
//!   signature on the bulk pool, stores, acknowledges), quorum waiter (f + 1 acks into a
//!   [`ProofOfAvailability`]), batch server and [`Dissemination::fetch`] of missing batches.
//!
//! Wiring in a node, in short:
//!
//! ```ignore
//! let (net, inbound) = ordo_network::start(NetworkConfig::new(net_key, listen, committee)).await?;
//! let mempool = Arc::new(Mempool::new(MempoolConfig::new(chain_id)));
//! let (dissemination, outputs) = Dissemination::spawn(
//!     DisseminationConfig::default(), consensus_key, net.clone(),
//!     /* batches in */ inbound.batches, /* batch requests in */ inbound.batch_requests,
//!     mempool.clone(),
//! );
//! // inbound.consensus: (sender, bytes) for the consensus driver; net.send_consensus /
//! // net.broadcast_consensus to answer. inbound.requests: block requests to answer.
//! // outputs.proofs: proofs of availability for the leader's next block;
//! // outputs.expired: hashes of expired transactions for the RPC's status answers.
//! // dissemination.fetch(&proof) for each batch of a committed block; store().remove(..)
//! // once the block is persisted.
//! ```

mod batch;
mod batch_maker;
mod batch_store;
#[cfg(feature = "byzantine")]
pub mod byzantine;
mod committee;
mod dissemination;
mod error;
mod framing;
mod mempool;
mod network;
mod payload_maker;
mod protocol;
mod quorum_waiter;
mod send_queue;
mod stats;
mod verify;

pub use batch::{Batch, BatchAck, BatchBody, BatchInfo, BatchMessage, ProofOfAvailability};
pub use batch_store::{BatchStore, BatchStoreConfig};
pub use committee::{network_keypair_from_seed, network_public_key, Committee, ValidatorInfo};
pub use dissemination::{
    Dissemination, DisseminationConfig, DisseminationOutputs, OpaqueReceipt, TaskEnded,
};
pub use error::{Error, MempoolCap};
/// The frame reader over a byte slice, for the fuzz targets (`ordo_node::fuzz_targets`).
#[doc(hidden)]
pub use framing::{read_frames_from, write_frames_to_vec};
pub use mempool::{Mempool, MempoolConfig, Taken};
pub use network::{
    start, Inbound, InboundRequest, LinkDelay, NetworkConfig, NetworkHandle, MAX_LINK_DELAY,
    MAX_REQUESTS_IN_FLIGHT_PER_PEER,
};
pub use protocol::{
    Protocol, Request, Response, MAX_BATCH_MESSAGE_BYTES, MAX_CONSENSUS_MESSAGE_BYTES,
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
pub use quorum_waiter::{AvailableBatch, Unproven};
pub use stats::{DisseminationSnapshot, StatsSnapshot};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
