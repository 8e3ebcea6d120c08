//! Tunables of one replica. Every replica of a committee must use the same leader policy.

use crate::committee::{ed25519_verify, VerifyFn};
use crate::leader::LeaderPolicy;
use crate::messages::Round;

#[derive(Clone, Debug)]
pub struct Config {
    pub leader_policy: LeaderPolicy,
    /// Round timeout before back-off. A replica learns that its round succeeded from the
    /// next proposal, which an idle next leader holds back for `max_batch_delay_ms`, so
    /// this must exceed `2 * max_batch_delay_ms` plus three one-way network delays, or an
    /// idle chain times out.
    pub base_timeout_ms: u64,
    /// The timeout doubles for each round since the last QC, up to this many times.
    pub max_timeout_exponent: u32,
    /// How long a leader with nothing to order waits before proposing an empty block.
    /// This is what keeps an idle chain from spinning through empty rounds.
    pub max_batch_delay_ms: u64,
    /// Most payload digests in one block.
    pub max_payload: usize,
    /// Most transactions in one block, by the count reported with each digest, so that a
    /// block executes well within a round's timeout however far behind the proposer is.
    /// A single digest above it is still proposed alone.
    pub max_payload_txs: u64,
    /// Most gas the payload of one block takes, by the gas reported with each digest: the
    /// chain's block gas limit, so that what a leader proposes fits and no transaction
    /// fails for want of block gas. A single digest above it is still proposed alone.
    pub max_payload_gas: u64,
    /// Most digests waiting to be proposed; the oldest are dropped beyond it.
    pub max_pool: usize,
    /// Messages for rounds further ahead than this are rejected.
    pub max_rounds_ahead: Round,
    /// Committed blocks kept to serve laggards' block requests.
    pub block_retention: usize,
    /// Most blocks asked for, or served, per block request.
    pub sync_batch: u16,
    /// How far a proposal's timestamp may run ahead of the local clock.
    pub max_clock_skew_ms: u64,
    /// Vote only once every payload digest is reported available ([`crate::Event::PayloadReady`]).
    pub require_payload_available: bool,
    /// Signature batch verification; [`ed25519_verify`] in production.
    pub verify: VerifyFn,
}

impl Config {
    /// Production defaults for a committee of `n`.
    pub fn new(n: usize) -> Self {
        Self {
            leader_policy: LeaderPolicy::reputation(n),
            base_timeout_ms: 1_000,
            max_timeout_exponent: 6,
            max_batch_delay_ms: 250,
            max_payload: 1_024,
            max_payload_txs: u64::MAX,
            max_payload_gas: u64::MAX,
            max_pool: 16_384,
            max_rounds_ahead: 10_000,
            block_retention: 1_024,
            sync_batch: 128,
            max_clock_skew_ms: 5_000,
            require_payload_available: true,
            verify: ed25519_verify,
        }
    }
}
