//! Generates the files of an N-validator network on 127.0.0.1: keys (mode 0600), one
//! genesis with a funded dev account and deterministic benchmark accounts, and one config
//! per validator with ports taken from a base (or given one by one).
//!
//! Layout under the network's folder:
//! ```text
//! genesis.json  dev.key
//! v0/config.toml  v0/validator.key  v0/network.key  v0/data/  (v0/node.log by convention)
//! v1/...
//! ```
//! Invariant: the consensus and network keys in genesis are those of the key files next to
//! each config, and every validator's config names the same genesis file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ordo_node::config::{
    ConsensusSection, ExecutionSection, MempoolSection, MetricsSection, NetworkSection, NodeConfig,
    RpcSection, StorageSection,
};
use ordo_node::genesis::{GenesisAccount, GenesisFile, GenesisPool, GenesisValidator};
use ordo_node::{NodeError, Result};
use ordo_types::ethereum::eip1559_of;
use ordo_types::{
    keyfile, Address, Amount, EthKey, Hash32, KeyPair, Payload, SignedTransaction, Transaction,
};

/// The three ports of one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorPorts {
    pub p2p: u16,
    pub rpc: u16,
    pub metrics: u16,
}

impl ValidatorPorts {
    /// Validator `index`'s ports counted from `base`: p2p, rpc, metrics in a row.
    pub fn from_base(base: u16, index: usize) -> Self {
        let first = base + 3 * index as u16;
        ValidatorPorts {
            p2p: first,
            rpc: first + 1,
            metrics: first + 2,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct LocalnetSpec {
    pub validators: usize,
    pub chain_id: u64,
    /// Ports from this base, three per validator, unless `ports` is given.
    pub port_base: u16,
    pub ports: Option<Vec<ValidatorPorts>>,
    pub dev_balance: Amount,
    /// Accounts whose keys are [`bench_key`]`(chain_id, i)`, each funded with
    /// `bench_balance`.
    pub bench_accounts: u32,
    pub bench_balance: Amount,
    pub pools: u32,
    pub collections: u32,
    /// Generate an ordering-only network (see [`GenesisFile::ordering_only`]).
    pub ordering_only: bool,
    /// The genesis's block gas limit.
    pub block_gas_limit: u64,
}

impl Default for LocalnetSpec {
    fn default() -> Self {
        LocalnetSpec {
            validators: 4,
            chain_id: 1337,
            port_base: 7100,
            ports: None,
            // A billion coins of 10^18 base units: more than a u64 holds.
            dev_balance: 1_000_000_000 * 1_000_000_000_000_000_000,
            bench_accounts: 1_000,
            bench_balance: 1_000_000_000_000,
            pools: 4,
            collections: 4,
            ordering_only: false,
            block_gas_limit: ordo_node::genesis::DEFAULT_BLOCK_GAS_LIMIT,
        }
    }
}

/// One generated validator.
#[derive(Debug, Clone)]
pub struct LocalValidator {
    pub index: usize,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub config: NodeConfig,
    pub peer_id: String,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
    /// Where a supervisor should send the validator's output.
    pub log_path: PathBuf,
}

/// A generated network.
#[derive(Debug, Clone)]
pub struct Localnet {
    pub dir: PathBuf,
    pub genesis_path: PathBuf,
    pub genesis: GenesisFile,
    pub dev_key_path: PathBuf,
    pub validators: Vec<LocalValidator>,
}

/// Where `ordo testnet` keeps the local testnet unless told otherwise: `$ORDO_TESTNET_DIR`,
/// else `$HOME/.ordo/testnet`, else `.ordo/testnet` under the working directory.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORDO_TESTNET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".ordo").join("testnet"),
        None => PathBuf::from(".ordo").join("testnet"),
    }
}

/// The deterministic key of benchmark account `i` on chain `chain_id`.
pub fn bench_key(chain_id: u64, i: u32) -> KeyPair {
    let seed = Hash32::digest_parts(
        b"ordo/bench-account\0",
        &[&chain_id.to_le_bytes(), &i.to_le_bytes()],
    );
    KeyPair::from_seed(seed.0)
}

/// The deterministic secp256k1 key of benchmark account `i`'s Ethereum twin on chain
/// `chain_id` (funded beside it, for `ordo bench --tx-format eth`).
pub fn bench_eth_key(chain_id: u64, i: u32) -> EthKey {
    let seed = Hash32::digest_parts(
        b"ordo/bench-eth-account\0",
        &[&chain_id.to_le_bytes(), &i.to_le_bytes()],
    );
    EthKey::from_seed(&seed.0)
}

/// Which transactions a benchmark signs: Ordo's own (ed25519) or Ethereum's (EIP-1559,
/// secp256k1, the sender recovered by every validator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxFormat {
    #[default]
    Ordo,
    Eth,
}

impl TxFormat {
    pub fn name(self) -> &'static str {
        match self {
            TxFormat::Ordo => "ordo",
            TxFormat::Eth => "eth",
        }
    }
}

/// The most an Ethereum benchmark transaction offers per unit of gas; the chain charges its
/// own (genesis) price, which must not be above it.
pub const BENCH_ETH_FEE_CAP: u128 = 1_000_000;

/// A benchmark account's key in one transaction format.
#[derive(Clone)]
pub enum BenchKey {
    Ordo(KeyPair),
    Eth(EthKey),
}

impl BenchKey {
    /// Benchmark account `i` of `chain_id` in `format`.
    pub fn new(chain_id: u64, i: u32, format: TxFormat) -> Self {
        match format {
            TxFormat::Ordo => BenchKey::Ordo(bench_key(chain_id, i)),
            TxFormat::Eth => BenchKey::Eth(bench_eth_key(chain_id, i)),
        }
    }

    pub fn address(&self) -> Address {
        match self {
            BenchKey::Ordo(k) => k.address(),
            BenchKey::Eth(k) => k.address(),
        }
    }

    /// Signs `payload`. As an Ethereum transaction (no expiry), a native transfer is a call
    /// with the amount as its value and no input, as wallets send one; `None` for the
    /// native payloads Ethereum has no form for (swap, mint, compute).
    pub fn sign(
        &self,
        chain_id: u64,
        nonce: u64,
        expiry: u64,
        payload: Payload,
    ) -> Option<SignedTransaction> {
        match self {
            BenchKey::Ordo(key) => Some(
                Transaction {
                    chain_id,
                    sender: key.public(),
                    nonce,
                    expiry,
                    payload,
                }
                .sign(key),
            ),
            BenchKey::Eth(key) => eip1559_of(chain_id, nonce, payload, BENCH_ETH_FEE_CAP)
                .map(|tx| key.sign(tx).into()),
        }
    }
}

/// The libp2p identity of a network key file (the same ed25519 seed).
pub fn network_identity(key: &KeyPair) -> libp2p::identity::Keypair {
    ordo_network::network_keypair_from_seed(key.seed())
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| NodeError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a new network into `dir` (created if missing; key files already there are never
/// overwritten, so generate into an empty folder).
pub fn generate(dir: &Path, spec: &LocalnetSpec) -> Result<Localnet> {
    if spec.validators == 0 {
        return Err(NodeError::Other(
            "a network needs at least one validator".into(),
        ));
    }
    if let Some(ports) = &spec.ports {
        if ports.len() != spec.validators {
            return Err(NodeError::Other(format!(
                "{} port triples for {} validators",
                ports.len(),
                spec.validators
            )));
        }
    } else if usize::from(spec.port_base) + 3 * spec.validators > usize::from(u16::MAX) {
        return Err(NodeError::Other(format!(
            "port base {} leaves no room for {} validators",
            spec.port_base, spec.validators
        )));
    }
    mkdir(dir)?;
    let dir = dir.canonicalize().map_err(|source| NodeError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let genesis_path = dir.join("genesis.json");
    let dev_key_path = dir.join("dev.key");
    let dev = KeyPair::generate();
    keyfile::write(&dev_key_path, &dev)?;

    let mut validators = Vec::new();
    let mut genesis_validators = Vec::new();
    for i in 0..spec.validators {
        let ports = spec
            .ports
            .as_ref()
            .map_or_else(|| ValidatorPorts::from_base(spec.port_base, i), |p| p[i]);
        let vdir = dir.join(format!("v{i}"));
        mkdir(&vdir)?;
        let consensus = KeyPair::generate();
        let network = KeyPair::generate();
        keyfile::write(&vdir.join("validator.key"), &consensus)?;
        keyfile::write(&vdir.join("network.key"), &network)?;
        let address: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", ports.p2p)
            .parse()
            .expect("a valid multiaddr");
        genesis_validators.push(GenesisValidator {
            name: format!("v{i}"),
            consensus_key: consensus.public(),
            network_key: network.public(),
            address: address.clone(),
        });
        let rpc = SocketAddr::from(([127, 0, 0, 1], ports.rpc));
        let metrics = SocketAddr::from(([127, 0, 0, 1], ports.metrics));
        let config = NodeConfig {
            data_dir: vdir.join("data"),
            genesis: genesis_path.clone(),
            validator_key: vdir.join("validator.key"),
            network_key: vdir.join("network.key"),
            network: NetworkSection {
                listen: address,
                peers: Vec::new(),
            },
            rpc: RpcSection {
                listen: rpc,
                ..RpcSection::default()
            },
            metrics: MetricsSection {
                listen: Some(metrics),
            },
            consensus: ConsensusSection::default(),
            execution: ExecutionSection::default(),
            mempool: MempoolSection::default(),
            storage: StorageSection::default(),
            byzantine: None,
        };
        let config_path = vdir.join("config.toml");
        config.write(&config_path)?;
        validators.push(LocalValidator {
            index: i,
            peer_id: network_identity(&network).public().to_peer_id().to_string(),
            log_path: vdir.join("node.log"),
            dir: vdir,
            config_path,
            config,
            rpc,
            metrics,
        });
    }

    let mut accounts = vec![GenesisAccount {
        address: dev.address(),
        balance: spec.dev_balance,
    }];
    // The ecosystem's development accounts, unless the network runs no transactions.
    if !spec.ordering_only {
        accounts.extend(crate::dev_accounts::genesis_accounts());
    }
    accounts.extend((0..spec.bench_accounts).map(|i| GenesisAccount {
        address: bench_key(spec.chain_id, i).address(),
        balance: spec.bench_balance,
    }));
    // Their Ethereum twins, for benchmarks that sign Ethereum transactions.
    if !spec.ordering_only {
        accounts.extend((0..spec.bench_accounts).map(|i| GenesisAccount {
            address: bench_eth_key(spec.chain_id, i).address(),
            balance: spec.bench_balance,
        }));
    }
    let genesis = GenesisFile {
        version: ordo_node::genesis::GENESIS_VERSION,
        chain_id: spec.chain_id,
        epoch: 1,
        gas_price: 1,
        fee_sink: crate::ceremony::fee_sink(spec.chain_id),
        block_gas_limit: spec.block_gas_limit,
        validators: genesis_validators,
        accounts,
        pools: (0..spec.pools)
            .map(|id| GenesisPool {
                id,
                reserve_a: 1_000_000_000_000,
                reserve_b: 1_000_000_000_000,
            })
            .collect(),
        collections: (0..spec.collections).collect(),
        ordering_only: spec.ordering_only,
    };
    genesis.write_json(&genesis_path)?;
    Ok(Localnet {
        dir,
        genesis_path,
        genesis,
        dev_key_path,
        validators,
    })
}

/// Reads a network generated earlier by [`generate`].
pub fn open(dir: &Path) -> Result<Localnet> {
    let genesis_path = dir.join("genesis.json");
    let genesis = GenesisFile::load(&genesis_path)?;
    let mut validators = Vec::new();
    for i in 0..genesis.validators.len() {
        let vdir = dir.join(format!("v{i}"));
        let config_path = vdir.join("config.toml");
        let config = NodeConfig::load(&config_path)?;
        let network = keyfile::read(&config.network_key)?;
        validators.push(LocalValidator {
            index: i,
            peer_id: network_identity(&network).public().to_peer_id().to_string(),
            log_path: vdir.join("node.log"),
            rpc: config.rpc.listen,
            metrics: config.metrics.listen.unwrap_or(config.rpc.listen),
            dir: vdir,
            config_path,
            config,
        });
    }
    Ok(Localnet {
        dir: dir.to_path_buf(),
        genesis_path,
        genesis,
        dev_key_path: dir.join("dev.key"),
        validators,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generates_a_consistent_network() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LocalnetSpec {
            validators: 4,
            bench_accounts: 10,
            port_base: 20_000,
            ..LocalnetSpec::default()
        };
        let net = generate(dir.path(), &spec).unwrap();
        assert_eq!(net.validators.len(), 4);
        // The dev key, the ten development accounts, ten bench accounts and their
        // Ethereum twins.
        assert_eq!(net.genesis.accounts.len(), 31);
        assert_eq!(
            net.genesis.accounts[30].address,
            bench_eth_key(spec.chain_id, 9).address()
        );
        for a in crate::dev_accounts::dev_accounts() {
            assert!(net.genesis.accounts.iter().any(|g| g.address == a.address));
        }
        assert_eq!(net.validators[1].rpc.port(), 20_004);
        for v in &net.validators {
            let mode = std::fs::metadata(&v.config.validator_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let key = keyfile::read(&v.config.validator_key).unwrap();
            assert_eq!(net.genesis.validators[v.index].consensus_key, key.public());
        }
        let reopened = open(&net.dir).unwrap();
        assert_eq!(reopened.genesis, net.genesis);
        assert_eq!(reopened.validators[3].config, net.validators[3].config);
        assert_eq!(reopened.validators[3].peer_id, net.validators[3].peer_id);
        assert_eq!(
            net.genesis.accounts[11].address,
            bench_key(spec.chain_id, 0).address()
        );
    }
}
