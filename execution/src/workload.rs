//! Block generators for the benchmark and tests: a genesis state and blocks of valid
//! transactions of one payload kind, with senders drawn uniformly at random.
//!
//! Transactions are not signed (the signature is zero): executors take transactions whose
//! signatures the pipeline has already verified.

use ordo_types::{Address, PublicKey, Signature, SignedTransaction, SwapDirection, Transaction};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;
use crate::genesis::{genesis, Genesis, GenesisSpec};
use crate::memory::MemoryState;
use crate::state::Pool;
use crate::vm::{BlockContext, ChainConfig};

/// Senders of swap and mint blocks, whose contention is set by pools and collections.
pub const HOT_KEY_SENDERS: usize = 10_000;
/// Every generated account's genesis balance: ample for any benchmark.
pub const GENESIS_BALANCE: u64 = 1 << 50;
const POOL_RESERVE: u64 = 1 << 40;
const TIMESTAMP_MS: u64 = 1_700_000_000_000;

/// What a generated block does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Transfers between the fixture's accounts.
    Transfer,
    /// Swaps against the fixture's pools.
    Swap,
    /// Mints from the fixture's collections.
    Mint,
    /// Compute calls of `iterations` hashes each.
    Compute { iterations: u32 },
}

/// A genesis state and a source of blocks that are valid against it in sequence.
pub struct Fixture {
    pub config: ChainConfig,
    pub genesis: Genesis,
    pub state: MemoryState,
    workload: Workload,
    /// Pools, collections, or accounts (for transfers and compute).
    targets: usize,
    senders: Vec<PublicKey>,
    addresses: Vec<Address>,
    nonces: Vec<u64>,
    rng: StdRng,
}

/// A deterministic public key for account `i`. Never used to verify anything.
pub fn account_key(i: usize) -> PublicKey {
    PublicKey(*blake3::hash(&(i as u64).to_le_bytes()).as_bytes())
}

/// The chain parameters fixtures use.
pub fn bench_config() -> ChainConfig {
    ChainConfig {
        chain_id: 1,
        gas_price: 1,
        fee_sink: Address([0xfe; 32]),
    }
}

impl Fixture {
    /// `targets` is the number of accounts for transfers and compute, of pools for swaps
    /// and of collections for mints.
    pub fn new(workload: Workload, targets: usize, seed: u64) -> Result<Self> {
        let targets = targets.max(1);
        let accounts = match workload {
            Workload::Transfer | Workload::Compute { .. } => targets.max(2),
            Workload::Swap | Workload::Mint => HOT_KEY_SENDERS,
        };
        let senders: Vec<PublicKey> = (0..accounts).map(account_key).collect();
        let addresses: Vec<Address> = senders.iter().map(PublicKey::address).collect();
        let mut spec = GenesisSpec {
            accounts: addresses.iter().map(|a| (*a, GENESIS_BALANCE)).collect(),
            ..GenesisSpec::default()
        };
        match workload {
            Workload::Swap => {
                spec.pools = (0..targets as u32)
                    .map(|id| {
                        (
                            id,
                            Pool {
                                reserve_a: POOL_RESERVE,
                                reserve_b: POOL_RESERVE,
                            },
                        )
                    })
                    .collect()
            }
            Workload::Mint => spec.collections = (0..targets as u32).collect(),
            _ => {}
        }
        let genesis = genesis(&spec)?;
        Ok(Fixture {
            config: bench_config(),
            state: MemoryState::from_genesis(&genesis),
            genesis,
            workload,
            targets,
            nonces: vec![0; senders.len()],
            senders,
            addresses,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The context of block `height`.
    pub fn context(&self, height: u64) -> BlockContext {
        BlockContext {
            height,
            timestamp_ms: TIMESTAMP_MS + height * 1_000,
        }
    }

    /// The next block of `len` transactions; nonces continue from earlier blocks.
    pub fn block(&mut self, len: usize) -> Vec<SignedTransaction> {
        (0..len).map(|_| self.transaction()).collect()
    }

    fn transaction(&mut self) -> SignedTransaction {
        let s = self.rng.gen_range(0..self.senders.len());
        let payload = match self.workload {
            Workload::Transfer => {
                let mut r = self.rng.gen_range(0..self.senders.len() - 1);
                if r >= s {
                    r += 1;
                }
                ordo_types::Payload::Transfer {
                    to: self.addresses[r],
                    amount: self.rng.gen_range(1..1_000),
                }
            }
            Workload::Swap => ordo_types::Payload::Swap {
                pool: self.rng.gen_range(0..self.targets as u32),
                amount_in: self.rng.gen_range(1..10_000),
                min_out: 0,
                direction: SwapDirection::AToB,
            },
            Workload::Mint => ordo_types::Payload::Mint {
                collection: self.rng.gen_range(0..self.targets as u32),
            },
            Workload::Compute { iterations } => ordo_types::Payload::Compute { iterations },
        };
        let nonce = self.nonces[s];
        self.nonces[s] += 1;
        SignedTransaction {
            tx: Transaction {
                chain_id: self.config.chain_id,
                sender: self.senders[s],
                nonce,
                expiry: u64::MAX,
                payload,
            },
            signature: Signature([0; 64]),
        }
    }
}
