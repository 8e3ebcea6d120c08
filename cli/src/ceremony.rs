//! The genesis ceremony: a network of validators on separate hosts, made without any
//! operator handing its private keys to anyone.
//!
//! 1. Each operator, on its own host, runs `ordo keys validator`: [`create_validator`]
//!    writes the validator's consensus and network keys (mode 0600, never overwritten), a
//!    config beside them, and its [`Contribution`]: the public keys and the address where
//!    peers reach the host, signed by both keys, so that a contribution whose keys were
//!    swapped or mistyped on the way is refused.
//! 2. An organizer collects the contributions and runs `ordo genesis build`:
//!    [`build_genesis`] checks each one and makes the genesis file, whose
//!    [`ordo_node::genesis::file_hash`] it prints.
//! 3. Each operator puts the genesis file beside its config, checks its hash (`ordo
//!    genesis hash FILE --expect HASH`) and starts `ordo run --config config.toml`.
//!
//! `ordo testnet init --hosts` runs the same steps for N hosts into one folder.
//!
//! Invariant: a validator folder holds relative paths only (its config names `data`,
//! `genesis.json` and the key files beside it), so it can be copied anywhere.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use ordo_node::config::{
    ConsensusSection, ExecutionSection, MempoolSection, MetricsSection, NetworkSection, NodeConfig,
    RpcSection, StorageSection,
};
use ordo_node::genesis::{GenesisAccount, GenesisFile, GenesisValidator, GENESIS_VERSION};
use ordo_types::{keyfile, Address, ChainId, Hash32, KeyPair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

/// The contribution format this build writes and reads.
pub const CONTRIBUTION_VERSION: u32 = 1;
/// Where a validator's peers reach it unless told otherwise.
pub const DEFAULT_P2P_PORT: u16 = 7000;
/// Ethereum tools' usual JSON-RPC port.
pub const DEFAULT_RPC_PORT: u16 = 8545;
/// Prometheus's exporters' usual port range.
pub const DEFAULT_METRICS_PORT: u16 = 9100;

/// Files of a validator folder.
pub const CONFIG_FILE: &str = "config.toml";
pub const CONTRIBUTION_FILE: &str = "contribution.json";
pub const GENESIS_FILE: &str = "genesis.json";
const VALIDATOR_KEY_FILE: &str = "validator.key";
const NETWORK_KEY_FILE: &str = "network.key";

const CONTRIBUTION_DOMAIN: &[u8] = b"ordo/genesis-contribution\0";

#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("{0}")]
    Usage(String),
    /// A contribution that cannot join a genesis; `from` names where it came from.
    #[error("contribution {from}: {reason}")]
    Contribution { from: String, reason: String },
    #[error("genesis: {field}: {reason}")]
    Genesis { field: String, reason: String },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(transparent)]
    Key(#[from] ordo_types::Error),
    #[error(transparent)]
    Node(#[from] ordo_node::NodeError),
}

pub type Result<T> = std::result::Result<T, CeremonyError>;

/// What an operator hands the organizer: public, and signed by both of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    pub version: u32,
    pub name: String,
    pub consensus_key: PublicKey,
    pub network_key: PublicKey,
    /// Where the other validators dial this one.
    #[serde(with = "ordo_node::config::as_string")]
    pub address: Multiaddr,
    /// The consensus key's signature of the fields above.
    pub consensus_signature: Signature,
    /// The network key's signature of the same.
    pub network_signature: Signature,
}

impl Contribution {
    fn new(name: String, consensus: &KeyPair, network: &KeyPair, address: Multiaddr) -> Self {
        let mut c = Contribution {
            version: CONTRIBUTION_VERSION,
            name,
            consensus_key: consensus.public(),
            network_key: network.public(),
            address,
            consensus_signature: Signature([0; 64]),
            network_signature: Signature([0; 64]),
        };
        let message = c.message();
        c.consensus_signature = consensus.sign(message.as_bytes());
        c.network_signature = network.sign(message.as_bytes());
        c
    }

    /// What both keys sign.
    fn message(&self) -> Hash32 {
        Hash32::digest_parts(
            CONTRIBUTION_DOMAIN,
            &[
                &self.version.to_le_bytes(),
                self.name.as_bytes(),
                &[0],
                &self.consensus_key.0,
                &self.network_key.0,
                self.address.to_string().as_bytes(),
            ],
        )
    }

    /// Checks the version, the name and both signatures; the reason names what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        check_name(&self.name)?;
        if self.version != CONTRIBUTION_VERSION {
            return Err(format!(
                "version {} is not one this build reads ({CONTRIBUTION_VERSION})",
                self.version
            ));
        }
        let message = self.message();
        self.consensus_key
            .verify(message.as_bytes(), &self.consensus_signature)
            .map_err(|_| {
                "consensus_signature does not verify: the consensus key or another field \
                 is not what its validator signed"
                    .to_string()
            })?;
        self.network_key
            .verify(message.as_bytes(), &self.network_signature)
            .map_err(|_| {
                "network_signature does not verify: the network key or another field is \
                 not what its validator signed"
                    .to_string()
            })
    }

    /// Reads and checks a contribution file.
    pub fn load(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CeremonyError::Contribution {
            from: source.clone(),
            reason: e.to_string(),
        })?;
        let c: Contribution =
            serde_json::from_str(&text).map_err(|e| CeremonyError::Contribution {
                from: source.clone(),
                reason: e.to_string(),
            })?;
        c.check().map_err(|reason| CeremonyError::Contribution {
            from: source,
            reason,
        })?;
        Ok(c)
    }
}

/// A validator's name: printable, without control characters (the signed message ends the
/// name with a NUL byte), at most [`MAX_NAME_BYTES`].
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(format!(
            "name {name:?} must be 1 to {MAX_NAME_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

/// A name longer than any host name.
const MAX_NAME_BYTES: usize = 255;

/// Where a validator listens and is reached.
#[derive(Debug, Clone)]
pub struct ValidatorPlan {
    /// The validator's folder: created if missing; key files already there are never
    /// overwritten.
    pub dir: PathBuf,
    /// The genesis's name for it.
    pub name: String,
    /// The host's address as peers dial it: an IPv4 or IPv6 address, or a DNS name.
    pub host: String,
    pub p2p_port: u16,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
    /// Allow a non-loopback RPC (see the config's `rpc.allow_public`).
    pub public_rpc: bool,
}

/// The address peers dial for `host` (IP or DNS name) at `port`.
pub fn peer_address(host: &str, port: u16) -> Result<Multiaddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let text = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("/ip4/{ip}/tcp/{port}"),
        Ok(IpAddr::V6(ip)) => format!("/ip6/{ip}/tcp/{port}"),
        Err(_) if valid_dns_name(host) => format!("/dns/{host}/tcp/{port}"),
        Err(_) => {
            return Err(CeremonyError::Usage(format!(
                "host {host:?} is neither an IP address nor a DNS name"
            )))
        }
    };
    text.parse()
        .map_err(|e| CeremonyError::Usage(format!("host {host:?}: {e}")))
}

/// Letters, digits, hyphens and dots, in labels of 1 to 63 characters.
fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Generates a validator's keys, config and contribution into `plan.dir`; the
/// contribution is also returned.
pub fn create_validator(plan: &ValidatorPlan) -> Result<Contribution> {
    if !plan.rpc.ip().is_loopback() && !plan.public_rpc {
        return Err(CeremonyError::Usage(format!(
            "the RPC address {} is not a loopback address: the RPC takes transactions without \
             authentication, so serving it beyond this host needs --public-rpc",
            plan.rpc
        )));
    }
    let address = peer_address(&plan.host, plan.p2p_port)?;
    let listen: Multiaddr = match address.iter().next() {
        Some(libp2p::multiaddr::Protocol::Ip6(_)) => format!("/ip6/::/tcp/{}", plan.p2p_port),
        _ => format!("/ip4/0.0.0.0/tcp/{}", plan.p2p_port),
    }
    .parse()
    .expect("a valid listen address");
    std::fs::create_dir_all(&plan.dir).map_err(|e| CeremonyError::File {
        path: plan.dir.clone(),
        reason: e.to_string(),
    })?;
    let consensus_path = plan.dir.join(VALIDATOR_KEY_FILE);
    let network_path = plan.dir.join(NETWORK_KEY_FILE);
    // All or nothing: refuse before writing anything if any of the four files is there,
    // so that a refused run leaves no new key behind that a rerun would then refuse.
    for path in [&consensus_path, &network_path] {
        if path.exists() {
            return Err(ordo_types::Error::KeyFileExists { path: path.clone() }.into());
        }
    }
    for name in [CONFIG_FILE, CONTRIBUTION_FILE] {
        let path = plan.dir.join(name);
        if path.exists() {
            return Err(CeremonyError::File {
                path,
                reason:
                    "exists already; it is never overwritten (set up the validator in a new folder)"
                        .into(),
            });
        }
    }
    check_name(&plan.name).map_err(CeremonyError::Usage)?;
    let consensus = KeyPair::generate();
    let network = KeyPair::generate();
    keyfile::write(&consensus_path, &consensus)?;
    keyfile::write(&network_path, &network)?;

    let config = NodeConfig {
        data_dir: PathBuf::from("data"),
        genesis: PathBuf::from(GENESIS_FILE),
        validator_key: PathBuf::from(VALIDATOR_KEY_FILE),
        network_key: PathBuf::from(NETWORK_KEY_FILE),
        network: NetworkSection {
            listen,
            peers: Vec::new(),
        },
        rpc: RpcSection {
            listen: plan.rpc,
            allow_public: plan.public_rpc,
            ..RpcSection::default()
        },
        metrics: MetricsSection {
            listen: Some(plan.metrics),
        },
        consensus: ConsensusSection::default(),
        execution: ExecutionSection::default(),
        mempool: MempoolSection::default(),
        storage: StorageSection::default(),
        byzantine: None,
    };
    write_new(&plan.dir.join(CONFIG_FILE), &config.to_toml())?;
    let contribution = Contribution::new(plan.name.clone(), &consensus, &network, address);
    write_new(
        &plan.dir.join(CONTRIBUTION_FILE),
        &format!("{}\n", to_json(&contribution)),
    )?;
    Ok(contribution)
}

/// What a genesis is built from.
#[derive(Debug, Clone)]
pub struct GenesisPlan {
    pub chain_id: ChainId,
    /// Each with where it came from, for errors.
    pub contributions: Vec<(String, Contribution)>,
    pub accounts: Vec<GenesisAccount>,
    pub gas_price: u64,
    pub block_gas_limit: u64,
}

/// Checks the contributions together and makes the genesis (validated as a node would
/// load it).
pub fn build_genesis(plan: &GenesisPlan) -> Result<GenesisFile> {
    if plan.contributions.is_empty() {
        return Err(CeremonyError::Usage(
            "a genesis needs at least one contribution (--contribution FILE)".into(),
        ));
    }
    for (i, (source, c)) in plan.contributions.iter().enumerate() {
        c.check().map_err(|reason| CeremonyError::Contribution {
            from: source.clone(),
            reason,
        })?;
        for (other_source, other) in &plan.contributions[..i] {
            let repeated = if other.consensus_key == c.consensus_key {
                Some("consensus key")
            } else if other.network_key == c.network_key {
                Some("network key")
            } else if other.name == c.name {
                Some("name")
            } else if other.address == c.address {
                Some("address")
            } else {
                None
            };
            if let Some(what) = repeated {
                return Err(CeremonyError::Contribution {
                    from: source.clone(),
                    reason: format!("repeats the {what} of {other_source}: a duplicate validator"),
                });
            }
        }
    }
    let genesis = GenesisFile {
        version: GENESIS_VERSION,
        chain_id: plan.chain_id,
        epoch: 1,
        gas_price: plan.gas_price,
        fee_sink: fee_sink(plan.chain_id),
        block_gas_limit: plan.block_gas_limit,
        validators: plan
            .contributions
            .iter()
            .map(|(_, c)| GenesisValidator {
                name: c.name.clone(),
                consensus_key: c.consensus_key,
                network_key: c.network_key,
                address: c.address.clone(),
            })
            .collect(),
        accounts: plan.accounts.clone(),
        pools: Vec::new(),
        collections: Vec::new(),
        ordering_only: false,
    };
    genesis
        .validate()
        .map_err(|(field, reason)| CeremonyError::Genesis { field, reason })?;
    Ok(genesis)
}

/// The account that collects a chain's fees: derived from its id, so no one holds its key.
pub fn fee_sink(chain_id: ChainId) -> Address {
    Address::from_digest(&Hash32::digest(b"ordo/fee-sink\0", &chain_id.to_le_bytes()))
}

/// Writes `genesis` to `path` (refusing to replace a file) and returns its hash.
pub fn write_genesis(path: &Path, genesis: &GenesisFile) -> Result<Hash32> {
    let text = genesis.to_json();
    write_new(path, &text)?;
    Ok(ordo_node::genesis::file_hash(text.as_bytes()))
}

/// The hash of the genesis file at `path`, after checking that it loads.
pub fn hash_of(path: &Path) -> Result<Hash32> {
    GenesisFile::load(path)?;
    let bytes = std::fs::read(path).map_err(|e| CeremonyError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(ordo_node::genesis::file_hash(&bytes))
}

/// Creates `path` with `text`; an existing file is left alone and refused.
fn write_new(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CeremonyError::File {
            path: path.to_path_buf(),
            reason: match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    "exists already; it is never overwritten".into()
                }
                _ => e.to_string(),
            },
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| CeremonyError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn to_json(c: &Contribution) -> String {
    serde_json::to_string_pretty(c).expect("a contribution serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &Path, name: &str, host: &str) -> ValidatorPlan {
        ValidatorPlan {
            dir: dir.join(name),
            name: name.into(),
            host: host.into(),
            p2p_port: DEFAULT_P2P_PORT,
            rpc: SocketAddr::from(([127, 0, 0, 1], DEFAULT_RPC_PORT)),
            metrics: SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT)),
            public_rpc: false,
        }
    }

    fn genesis_plan(contributions: Vec<Contribution>) -> GenesisPlan {
        GenesisPlan {
            chain_id: 5,
            contributions: contributions
                .into_iter()
                .enumerate()
                .map(|(i, c)| (format!("c{i}.json"), c))
                .collect(),
            accounts: Vec::new(),
            gas_price: 1,
            block_gas_limit: ordo_node::genesis::DEFAULT_BLOCK_GAS_LIMIT,
        }
    }

    #[test]
    fn addresses_of_ips_and_names() {
        assert_eq!(
            peer_address("10.1.2.3", 7000).unwrap().to_string(),
            "/ip4/10.1.2.3/tcp/7000"
        );
        assert_eq!(
            peer_address("[fd00::1]", 7000).unwrap().to_string(),
            "/ip6/fd00::1/tcp/7000"
        );
        assert_eq!(
            peer_address("v0.example.org", 7001).unwrap().to_string(),
            "/dns/v0.example.org/tcp/7001"
        );
        assert!(peer_address("not a host", 7000).is_err());
        assert!(peer_address("", 7000).is_err());
    }

    #[test]
    fn a_ceremony_makes_a_genesis_that_loads_and_refuses_bad_contributions() {
        let tmp = tempfile::tempdir().unwrap();
        let contributions: Vec<Contribution> = (0..4)
            .map(|i| {
                create_validator(&plan(tmp.path(), &format!("v{i}"), &format!("10.0.0.{i}")))
                    .unwrap()
            })
            .collect();
        // What each folder holds: keys (0600), a config that loads, the contribution.
        let v0 = tmp.path().join("v0");
        assert_eq!(
            Contribution::load(&v0.join(CONTRIBUTION_FILE)).unwrap(),
            contributions[0]
        );
        let genesis = build_genesis(&genesis_plan(contributions.clone())).unwrap();
        let hash = write_genesis(&v0.join(GENESIS_FILE), &genesis).unwrap();
        assert_eq!(hash_of(&v0.join(GENESIS_FILE)).unwrap(), hash);
        let config = NodeConfig::load(&v0.join(CONFIG_FILE)).unwrap();
        assert_eq!(config.genesis, v0.join(GENESIS_FILE));
        assert_eq!(
            keyfile::read(&config.validator_key).unwrap().public(),
            genesis.validators[0].consensus_key
        );
        // Keys are never overwritten.
        let again = create_validator(&plan(tmp.path(), "v0", "10.0.0.9")).unwrap_err();
        assert!(again.to_string().contains("validator.key"), "{again}");

        // A contribution whose key was swapped on the way.
        let mut swapped = contributions.clone();
        swapped[2].consensus_key = KeyPair::generate().public();
        let err = build_genesis(&genesis_plan(swapped))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c2.json") && err.contains("consensus_signature"),
            "{err}"
        );
        // The same validator twice.
        let mut twice = contributions.clone();
        twice.push(contributions[1].clone());
        let err = build_genesis(&genesis_plan(twice)).unwrap_err().to_string();
        assert!(
            err.contains("c4.json")
                && err.contains("duplicate validator")
                && err.contains("c1.json"),
            "{err}"
        );
        // A folder with a config but no keys (keys deleted to start over) is refused
        // before any key is written, so the refusal leaves nothing behind.
        let stale = plan(tmp.path(), "v7", "10.0.0.7");
        std::fs::create_dir_all(&stale.dir).unwrap();
        std::fs::write(stale.dir.join(CONFIG_FILE), "").unwrap();
        let err = create_validator(&stale).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
        assert!(!stale.dir.join(VALIDATOR_KEY_FILE).exists());
        // A name the signed message could not tell apart.
        let mut nul = plan(tmp.path(), "v8", "10.0.0.8");
        nul.name = "v\u{0}8".into();
        assert!(create_validator(&nul)
            .unwrap_err()
            .to_string()
            .contains("control"));
        // A public RPC needs saying so.
        let mut public = plan(tmp.path(), "v9", "10.0.0.9");
        public.rpc = SocketAddr::from(([0, 0, 0, 0], DEFAULT_RPC_PORT));
        let err = create_validator(&public).unwrap_err().to_string();
        assert!(err.contains("--public-rpc"), "{err}");
    }
}
