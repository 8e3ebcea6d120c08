//! The genesis file: the chain's identity, its validators and its initial state.
//!
//! JSON (`.json`) or TOML (any other extension). Invariant: a [`GenesisFile`] returned by
//! [`GenesisFile::load`] or [`GenesisFile::validate`] has at least one validator, no
//! repeated consensus key, network key, account, pool or collection, network keys that
//! are valid ed25519 points, and a total supply (balances and pools' coin reserves) within
//! 2^128 - 1; so the committees and the initial state built from it cannot fail. Every validator must load byte-identical genesis data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libp2p::Multiaddr;
use ordo_execution::{ChainConfig, GenesisSpec, Pool};
use ordo_types::{Address, Amount, ChainId, Hash32, PublicKey};
use serde::{Deserialize, Serialize};

use crate::config::{as_string, from_toml, missing_field, one_line};
use crate::error::{NodeError, Result};

/// The genesis format this build reads and writes; a file of another version is refused
/// rather than read wrongly.
pub const GENESIS_VERSION: u32 = 1;

/// Domain of [`file_hash`].
const GENESIS_HASH_DOMAIN: &[u8] = b"ordo/genesis-file\0";

/// The hash operators compare before they start: of the file's bytes exactly, so that two
/// validators with the same hash load byte-identical genesis data.
pub fn file_hash(bytes: &[u8]) -> Hash32 {
    Hash32::digest(GENESIS_HASH_DOMAIN, bytes)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// The format's version ([`GENESIS_VERSION`]; a file without one is of version 1).
    #[serde(default = "genesis_version")]
    pub version: u32,
    pub chain_id: ChainId,
    /// The consensus epoch the chain starts in.
    #[serde(default = "one")]
    pub epoch: u64,
    /// Native coin charged per gas unit.
    #[serde(default = "one")]
    pub gas_price: u64,
    /// The account that collects fees.
    pub fee_sink: Address,
    /// The most gas a block's contract transactions may ask for together; beyond it they
    /// fail uncharged (`block_gas_exhausted`).
    #[serde(default = "default_block_gas_limit")]
    pub block_gas_limit: u64,
    pub validators: Vec<GenesisValidator>,
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    #[serde(default)]
    pub pools: Vec<GenesisPool>,
    #[serde(default)]
    pub collections: Vec<u32>,
    /// Ordering-only mode (for measuring consensus alone): validators order opaque
    /// payloads without checking signatures or executing anything. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordering_only: bool,
}

fn one() -> u64 {
    1
}

/// A file from before versions: version 1, whatever this build writes.
fn genesis_version() -> u32 {
    1
}

pub use ordo_execution::DEFAULT_BLOCK_GAS_LIMIT;

fn default_block_gas_limit() -> u64 {
    DEFAULT_BLOCK_GAS_LIMIT
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    #[serde(default)]
    pub name: String,
    /// Signs proposals, votes and batch acknowledgements.
    pub consensus_key: PublicKey,
    /// The ed25519 public key of the validator's libp2p identity.
    pub network_key: PublicKey,
    /// Where the others dial it.
    #[serde(with = "as_string")]
    pub address: Multiaddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub address: Address,
    /// A decimal string (or a JSON integer up to 2^64 - 1): amounts are 128 bits wide.
    #[serde(with = "ordo_types::amount::decimal")]
    pub balance: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisPool {
    pub id: u32,
    pub reserve_a: u64,
    pub reserve_b: u64,
}

impl GenesisFile {
    /// Reads, parses and validates a genesis file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| NodeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses and validates `bytes`, read from the genesis file at `path`: JSON if its name
    /// ends in `.json`, TOML otherwise.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| NodeError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        let json = path.extension().is_some_and(|e| e == "json");
        let parsed = if json {
            Self::parse_json(text)
        } else {
            Self::parse_toml(text)
        };
        parsed.map_err(|(field, reason)| NodeError::Genesis {
            path: path.to_path_buf(),
            field,
            reason,
        })
    }

    pub fn parse_json(text: &str) -> std::result::Result<Self, (String, String)> {
        let mut de = serde_json::Deserializer::from_str(text);
        let g: GenesisFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let reason = one_line(&e.into_inner().to_string());
            let field = if field == "." {
                missing_field(&reason).unwrap_or(field)
            } else {
                field
            };
            (field, reason)
        })?;
        g.validate()?;
        Ok(g)
    }

    pub fn parse_toml(text: &str) -> std::result::Result<Self, (String, String)> {
        let g: GenesisFile = from_toml(text)?;
        g.validate()?;
        Ok(g)
    }

    /// Checks what serde cannot: see the module note.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let bad = |field: String, reason: &str| Err((field, reason.to_string()));
        if self.version != GENESIS_VERSION {
            return Err((
                "version".into(),
                format!(
                    "{} is not a genesis version this build reads ({GENESIS_VERSION})",
                    self.version
                ),
            ));
        }
        if self.validators.is_empty() {
            return bad("validators".into(), "at least one validator is required");
        }
        // Below one plain call's gas, no contract transaction could ever run.
        if self.block_gas_limit < 21_000 {
            return bad(
                "block_gas_limit".into(),
                "must be at least 21000, the gas of the simplest call",
            );
        }
        // Consensus numbers validators with a u16.
        if self.validators.len() > usize::from(u16::MAX) {
            return bad("validators".into(), "at most 65535 validators");
        }
        let mut consensus = HashSet::new();
        let mut network = HashSet::new();
        for (i, v) in self.validators.iter().enumerate() {
            if !consensus.insert(v.consensus_key) {
                return bad(format!("validators[{i}].consensus_key"), "listed twice");
            }
            if !network.insert(v.network_key) {
                return bad(format!("validators[{i}].network_key"), "listed twice");
            }
            if let Err(e) = ordo_network::ValidatorInfo::new(
                v.consensus_key,
                v.network_key.0,
                v.address.clone(),
            ) {
                return Err((format!("validators[{i}].network_key"), e.to_string()));
            }
        }
        // Every coin exists from genesis on (nothing mints), so a supply that fits an
        // `Amount` keeps every balance within one, the EVM's included.
        let too_much = "the total supply of the native coin would exceed 2^128 - 1";
        let mut supply: Amount = 0;
        let mut accounts = HashSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if !accounts.insert(a.address) {
                return bad(format!("accounts[{i}].address"), "listed twice");
            }
            let Some(sum) = supply.checked_add(a.balance) else {
                return bad(format!("accounts[{i}].balance"), too_much);
            };
            supply = sum;
        }
        let mut pools = HashSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            if !pools.insert(p.id) {
                return bad(format!("pools[{i}].id"), "listed twice");
            }
            let Some(sum) = supply.checked_add(Amount::from(p.reserve_a)) else {
                return bad(format!("pools[{i}].reserve_a"), too_much);
            };
            supply = sum;
        }
        let mut collections = HashSet::new();
        for (i, c) in self.collections.iter().enumerate() {
            if !collections.insert(*c) {
                return bad(format!("collections[{i}]"), "listed twice");
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serialises")
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()).map_err(|source| NodeError::Write {
            path: PathBuf::from(path),
            source,
        })
    }

    /// The initial state, for the executor.
    pub fn state_spec(&self) -> GenesisSpec {
        GenesisSpec {
            accounts: self
                .accounts
                .iter()
                .map(|a| (a.address, a.balance))
                .collect(),
            pools: self
                .pools
                .iter()
                .map(|p| {
                    (
                        p.id,
                        Pool {
                            reserve_a: p.reserve_a,
                            reserve_b: p.reserve_b,
                        },
                    )
                })
                .collect(),
            collections: self.collections.clone(),
        }
    }

    pub fn chain_config(&self) -> ChainConfig {
        ChainConfig {
            chain_id: self.chain_id,
            gas_price: self.gas_price,
            fee_sink: self.fee_sink,
            block_gas_limit: self.block_gas_limit,
        }
    }

    /// The validator set as consensus sees it, in genesis order.
    pub fn consensus_committee(&self) -> Result<ordo_consensus::Committee> {
        Ok(ordo_consensus::Committee::new(
            self.epoch,
            self.validators.iter().map(|v| v.consensus_key).collect(),
        )?)
    }

    /// The validator set as the network sees it, with `overrides` replacing addresses.
    pub fn network_committee(
        &self,
        overrides: &[(PublicKey, Multiaddr)],
    ) -> Result<Arc<ordo_network::Committee>> {
        // An override for a key the genesis lacks is a mistake (a stale or mistyped
        // config), not something to ignore while the real peer goes undialled.
        if let Some((i, (key, _))) = overrides
            .iter()
            .enumerate()
            .find(|(_, (k, _))| !self.validators.iter().any(|v| v.consensus_key == *k))
        {
            return Err(crate::error::NodeError::Other(format!(
                "network.peers[{i}].consensus_key {key} is no validator of the genesis"
            )));
        }
        let validators = self
            .validators
            .iter()
            .map(|v| {
                let address = overrides
                    .iter()
                    .find(|(k, _)| *k == v.consensus_key)
                    .map_or_else(|| v.address.clone(), |(_, a)| a.clone());
                ordo_network::ValidatorInfo::new(v.consensus_key, v.network_key.0, address)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Arc::new(ordo_network::Committee::new(
            self.chain_id,
            validators,
        )?))
    }
}

/// A genesis of four validators, an account, a pool and a collection, for tests and the
/// fuzz targets' seeds.
#[cfg(any(test, feature = "fuzz"))]
pub(crate) fn sample() -> GenesisFile {
    use ordo_types::KeyPair;
    GenesisFile {
        version: GENESIS_VERSION,
        chain_id: 9,
        epoch: 1,
        gas_price: 1,
        fee_sink: Address([1; 20]),
        block_gas_limit: ordo_execution::DEFAULT_BLOCK_GAS_LIMIT,
        validators: (0..4u8)
            .map(|i| GenesisValidator {
                name: format!("v{i}"),
                consensus_key: KeyPair::from_seed([i + 1; 32]).public(),
                network_key: KeyPair::from_seed([i + 50; 32]).public(),
                address: "/ip4/127.0.0.1/tcp/7000".parse().unwrap(),
            })
            .collect(),
        accounts: vec![GenesisAccount {
            address: Address([2; 20]),
            // Wider than a u64: written and read back as a decimal string.
            balance: 10u128.pow(27),
        }],
        pools: vec![GenesisPool {
            id: 0,
            reserve_a: 10,
            reserve_b: 10,
        }],
        collections: vec![0],
        ordering_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_types::KeyPair;

    #[test]
    fn json_round_trip_and_committees() {
        let g = sample();
        let parsed = GenesisFile::parse_json(&g.to_json()).unwrap();
        assert_eq!(parsed, g);
        assert_eq!(g.consensus_committee().unwrap().size(), 4);
        assert_eq!(g.network_committee(&[]).unwrap().size(), 4);
        let toml_text = toml::to_string(&g).unwrap();
        assert_eq!(GenesisFile::parse_toml(&toml_text).unwrap(), g);
    }

    #[test]
    fn errors_name_the_field() {
        let mut g = sample();
        g.validators[2].consensus_key = g.validators[0].consensus_key;
        let (field, _) = GenesisFile::parse_json(&g.to_json()).unwrap_err();
        assert_eq!(field, "validators[2].consensus_key");

        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["accounts"][0]["balance"] = serde_json::json!("lots");
        let (field, _) = GenesisFile::parse_json(&v.to_string()).unwrap_err();
        assert_eq!(field, "accounts[0].balance");

        // Amounts are decimal strings; a JSON number above 2^64 was already rounded.
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["accounts"][0]["balance"] = serde_json::json!(1e20);
        let (field, _) = GenesisFile::parse_json(&v.to_string()).unwrap_err();
        assert_eq!(field, "accounts[0].balance");

        let mut g = sample();
        g.accounts.push(GenesisAccount {
            address: Address([3; 20]),
            balance: Amount::MAX,
        });
        let (field, reason) = GenesisFile::parse_json(&g.to_json()).unwrap_err();
        assert_eq!(field, "accounts[1].balance", "{reason}");

        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v.as_object_mut().unwrap().remove("chain_id");
        let (field, _) = GenesisFile::parse_json(&v.to_string()).unwrap_err();
        assert_eq!(field, "chain_id");

        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["validators"][1]["address"] = serde_json::json!("not an address");
        let (field, _) = GenesisFile::parse_json(&v.to_string()).unwrap_err();
        assert_eq!(field, "validators[1].address");

        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["version"] = serde_json::json!(2);
        let (field, reason) = GenesisFile::parse_json(&v.to_string()).unwrap_err();
        assert_eq!(field, "version", "{reason}");
        // A file from before versions is of version 1.
        v.as_object_mut().unwrap().remove("version");
        assert_eq!(GenesisFile::parse_json(&v.to_string()).unwrap(), sample());

        let unknown = KeyPair::from_seed([99; 32]).public();
        let address: Multiaddr = "/ip4/10.0.0.9/tcp/7000".parse().unwrap();
        let err = sample()
            .network_committee(&[(unknown, address)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("network.peers[0]"), "{err}");

        let mut g = sample();
        g.validators.clear();
        assert_eq!(
            GenesisFile::parse_json(&g.to_json()).unwrap_err().0,
            "validators"
        );
        // More validators than consensus can number would pass, and then no committee.
        let mut g = sample();
        g.validators = vec![g.validators[0].clone(); usize::from(u16::MAX) + 1];
        let (field, reason) = g.validate().unwrap_err();
        assert_eq!(field, "validators", "{reason}");
    }
}
