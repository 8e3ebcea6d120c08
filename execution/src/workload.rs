//! Block generators for the benchmark and tests: a genesis state and blocks of valid
//! transactions of one payload kind, with senders drawn uniformly at random.
//!
//! Contract workloads (`Erc20`, `Amm`, `Nft`, `DefiMix`) deploy the example contracts and fund and
//! approve their senders in setup blocks, executed before the fixture is handed out; the
//! fixture's state and `parent` accumulator are those after setup.
//!
//! Transactions are not signed (the signature is zero): executors take transactions whose
//! signatures the pipeline has already verified.

use ordo_types::{
    Address, Amount, OrdoTransaction, Payload, PublicKey, Signature, SignedTransaction,
    StateAccumulator, SwapDirection, Transaction,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::contracts::{
    add_liquidity, approve_all, call_data, collection_init_code, create_address, pair_init_code,
    token_init_code, Word,
};
use crate::error::{ExecutionError, Result};
use crate::executor::Executor;
use crate::genesis::{genesis, Genesis, GenesisSpec};
use crate::memory::MemoryState;
use crate::sequential::SequentialExecutor;
use crate::state::Pool;
use crate::vm::{BlockContext, ChainConfig};

/// Senders of swap and mint blocks, whose contention is set by pools and collections.
pub const HOT_KEY_SENDERS: usize = 10_000;
/// Every generated account's genesis balance: ample for any benchmark, and small enough
/// that 20,000 of them stay within the supply bound genesis enforces.
pub const GENESIS_BALANCE: Amount = 1 << 46;
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
    /// ERC-20 `transfer`s of one token among the fixture's accounts.
    Erc20,
    /// Swaps on the fixture's AMM pairs (the `Pair` example over two tokens); each sender
    /// trades on one pair, so the pair count sets the contention.
    Amm,
    /// `mint()` calls on the fixture's ERC-721 collections.
    Nft,
    /// In ten transactions: four ERC-20 transfers (of the AMM's first token), three AMM
    /// swaps, two NFT mints and one native transfer; pairs and collections both number
    /// the fixture's targets.
    DefiMix,
}

/// Gas limit of a generated contract call: ample for each workload's call (an AMM swap,
/// the heaviest, uses about 90,000).
const CALL_GAS: u64 = 200_000;
/// Senders of AMM blocks at least: each trades on pair `sender % pairs`.
const AMM_SENDERS: usize = 1_000;

/// A genesis state and a source of blocks that are valid against it in sequence.
pub struct Fixture {
    pub config: ChainConfig,
    pub genesis: Genesis,
    pub state: MemoryState,
    /// The accumulator of `state` (the genesis one, unless setup blocks ran).
    pub parent: StateAccumulator,
    /// Setup blocks executed so far; generated blocks follow them.
    height: u64,
    /// The ERC-20 that transfers move (erc20; the AMM's first token in defi-mix).
    token: Address,
    /// The AMM's two tokens and its pairs; sender `s` trades on pair `s % pairs`.
    tokens: [Address; 2],
    pairs: Vec<Address>,
    collections: Vec<Address>,
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
        fee_sink: Address([0xfe; 20]),
        // Generated blocks hold up to tens of thousands of contract calls.
        block_gas_limit: 100 * crate::vm::DEFAULT_BLOCK_GAS_LIMIT,
    }
}

impl Fixture {
    /// `targets` is the number of accounts for transfers and compute, of pools for swaps
    /// and of collections for mints.
    pub fn new(workload: Workload, targets: usize, seed: u64) -> Result<Self> {
        let targets = targets.max(1);
        let accounts = match workload {
            Workload::Transfer | Workload::Compute { .. } | Workload::Erc20 => targets.max(2),
            Workload::Swap | Workload::Mint | Workload::Nft => HOT_KEY_SENDERS,
            Workload::Amm | Workload::DefiMix => (2 * targets).max(AMM_SENDERS),
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
        let mut fixture = Fixture {
            config: bench_config(),
            state: MemoryState::from_genesis(&genesis),
            parent: genesis.accumulator.clone(),
            genesis,
            height: 0,
            token: Address::default(),
            tokens: [Address::default(); 2],
            pairs: Vec::new(),
            collections: Vec::new(),
            workload,
            targets,
            nonces: vec![0; senders.len()],
            senders,
            addresses,
            rng: StdRng::seed_from_u64(seed),
        };
        fixture.set_up()?;
        Ok(fixture)
    }

    /// A transaction from sender `s` with its next nonce.
    fn signed(&mut self, s: usize, payload: Payload) -> SignedTransaction {
        let nonce = self.nonces[s];
        self.nonces[s] += 1;
        SignedTransaction::Ordo(OrdoTransaction {
            tx: Transaction {
                chain_id: self.config.chain_id,
                sender: self.senders[s],
                nonce,
                expiry: u64::MAX,
                payload,
            },
            signature: Signature([0; 64]),
        })
    }

    fn deploy(&mut self, s: usize, init_code: Vec<u8>) -> (SignedTransaction, Address) {
        let address = create_address(&self.addresses[s], self.nonces[s]);
        let tx = self.signed(
            s,
            Payload::Deploy {
                init_code,
                value: 0,
                gas_limit: 10_000_000,
            },
        );
        (tx, address)
    }

    fn call(&mut self, s: usize, to: Address, input: Vec<u8>) -> SignedTransaction {
        self.call_with_gas(s, to, input, CALL_GAS)
    }

    fn call_with_gas(
        &mut self,
        s: usize,
        to: Address,
        input: Vec<u8>,
        gas_limit: u64,
    ) -> SignedTransaction {
        self.signed(
            s,
            Payload::Call {
                to,
                input,
                value: 0,
                gas_limit,
            },
        )
    }

    /// Deploys and funds a contract workload's contracts; every setup transaction must
    /// succeed.
    fn set_up(&mut self) -> Result<()> {
        const OWNER: usize = 0;
        const FUNDS: u128 = 1 << 60;
        let mut txs = Vec::new();
        match self.workload {
            Workload::Erc20 => {
                let (deploy, token) = self.deploy(OWNER, token_init_code("Bench", "BEN", FUNDS));
                txs.push(deploy);
                for s in 1..self.senders.len() {
                    let to = self.addresses[s];
                    let mint = call_data(
                        "mint(address,uint256)",
                        &[Word::Address(to), Word::Uint(FUNDS)],
                    );
                    txs.push(self.call(OWNER, token, mint));
                }
                self.token = token;
            }
            Workload::Nft => self.set_up_collections(OWNER, &mut txs),
            Workload::Amm => self.set_up_amm(OWNER, FUNDS, &mut txs),
            Workload::DefiMix => {
                self.set_up_amm(OWNER, FUNDS, &mut txs);
                self.token = self.tokens[0];
                self.set_up_collections(OWNER, &mut txs);
            }
            _ => return Ok(()),
        }
        let block = self.context(self.height + 1);
        // Set-up is one block however large; only generated blocks meet the gas limit.
        let setup_config = ChainConfig {
            block_gas_limit: u64::MAX,
            ..self.config.clone()
        };
        let out = SequentialExecutor::new(setup_config).execute_block(
            &self.state,
            &block,
            &txs,
            &self.parent,
        )?;
        if let Some((i, r)) = out
            .receipts
            .iter()
            .enumerate()
            .find(|(_, r)| r.status != crate::receipt::TxStatus::Success)
        {
            return Err(ExecutionError::InvalidGenesis(format!(
                "setup transaction {i} of the {:?} workload failed: {r:?}",
                self.workload
            )));
        }
        self.state.apply(&out.write_set);
        self.parent = out.accumulator;
        self.height += 1;
        Ok(())
    }

    fn set_up_collections(&mut self, owner: usize, txs: &mut Vec<SignedTransaction>) {
        let init = collection_init_code();
        for _ in 0..self.targets {
            let (deploy, address) = self.deploy(owner, init.clone());
            txs.push(deploy);
            self.collections.push(address);
        }
    }

    /// Two tokens and a pair per target, with liquidity; every other sender holds both
    /// tokens and has approved its pair for them.
    fn set_up_amm(&mut self, owner: usize, funds: u128, txs: &mut Vec<SignedTransaction>) {
        let (deploy_a, a) = self.deploy(owner, token_init_code("A", "A", funds));
        let (deploy_b, b) = self.deploy(owner, token_init_code("B", "B", funds));
        txs.extend([deploy_a, deploy_b]);
        self.tokens = [a, b];
        for _ in 0..self.targets {
            let (deploy, address) = self.deploy(owner, pair_init_code(a, b));
            txs.push(deploy);
            self.pairs.push(address);
        }
        let per_pool = funds / (4 * self.targets as u128);
        for p in 0..self.targets {
            let pair = self.pairs[p];
            for token in [a, b] {
                txs.push(self.call(owner, token, approve_all(pair)));
            }
            let add = add_liquidity(per_pool, per_pool);
            txs.push(self.call_with_gas(owner, pair, add, 1_000_000));
        }
        for s in 1..self.senders.len() {
            let (to, pair) = (self.addresses[s], self.pairs[s % self.targets]);
            for token in [a, b] {
                let mint = call_data(
                    "mint(address,uint256)",
                    &[Word::Address(to), Word::Uint(1 << 50)],
                );
                txs.push(self.call(owner, token, mint));
                txs.push(self.call(s, token, approve_all(pair)));
            }
        }
    }

    /// The context of block `height` (height 1 is the first generated block, which
    /// follows any setup blocks).
    pub fn context(&self, height: u64) -> BlockContext {
        let height = height + self.height;
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
        let kind = match self.workload {
            Workload::DefiMix => match self.rng.gen_range(0..10) {
                0..=3 => Workload::Erc20,
                4..=6 => Workload::Amm,
                7..=8 => Workload::Nft,
                _ => Workload::Transfer,
            },
            kind => kind,
        };
        let payload = match kind {
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
            Workload::Erc20 => {
                let mut r = self.rng.gen_range(0..self.senders.len() - 1);
                if r >= s {
                    r += 1;
                }
                let amount = self.rng.gen_range(1..1_000);
                let data = call_data(
                    "transfer(address,uint256)",
                    &[Word::Address(self.addresses[r]), Word::Uint(amount)],
                );
                return self.call(s, self.token, data);
            }
            Workload::Amm => {
                let s = 1 + s % (self.senders.len() - 1);
                let pair = self.pairs[s % self.targets];
                let token_in = self.tokens[self.rng.gen_range(0..2)];
                let data = call_data(
                    "swap(address,uint256,uint256)",
                    &[
                        Word::Address(token_in),
                        Word::Uint(self.rng.gen_range(1..10_000)),
                        Word::Uint(0),
                    ],
                );
                return self.call(s, pair, data);
            }
            Workload::Nft => {
                let collection = self.collections[self.rng.gen_range(0..self.targets)];
                return self.call(s, collection, call_data("mint()", &[]));
            }
            Workload::DefiMix => unreachable!("a defi-mix item is one of its kinds"),
        };
        self.signed(s, payload)
    }
}
