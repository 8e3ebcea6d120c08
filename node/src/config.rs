//! A validator's configuration file (TOML): where its data, keys and genesis are, what it
//! listens on, and its tunables.
//!
//! Invariant: a [`NodeConfig`] returned by [`NodeConfig::load`] has every path absolute
//! (relative paths are resolved against the config file's folder) and every address
//! parsed; a bad file is refused with the dotted name of the offending field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};

use crate::error::{NodeError, Result};

/// One validator's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The RocksDB folder; created if missing.
    pub data_dir: PathBuf,
    /// The genesis file (JSON or TOML).
    pub genesis: PathBuf,
    /// The validator's consensus key file (signs votes, proposals, batch acks).
    pub validator_key: PathBuf,
    /// The validator's libp2p identity key file.
    pub network_key: PathBuf,
    pub network: NetworkSection,
    #[serde(default)]
    pub rpc: RpcSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub consensus: ConsensusSection,
    #[serde(default)]
    pub execution: ExecutionSection,
    #[serde(default)]
    pub mempool: MempoolSection,
    #[serde(default)]
    pub storage: StorageSection,
    /// Deliberate misbehaviour, for fault tests only: honoured only by a build with the
    /// `byzantine` feature, refused by any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byzantine: Option<ByzantineSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/7000`.
    #[serde(with = "as_string")]
    pub listen: Multiaddr,
    /// Addresses that replace a validator's genesis address (by consensus key).
    #[serde(default)]
    pub peers: Vec<PeerOverride>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerOverride {
    pub consensus_key: ordo_types::PublicKey,
    #[serde(with = "as_string")]
    pub address: Multiaddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    /// HTTP listen address; loopback unless the operator says otherwise.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Longest long-poll wait a client may ask for, in milliseconds.
    pub max_wait_ms: u64,
    /// Requests served at the same time; more get `busy`.
    pub max_concurrency: usize,
    /// Serves the fault-injection endpoints `POST /v1/admin/partition` (drop traffic to and
    /// from chosen validators) and `POST /v1/admin/link-delay` (delay what this validator
    /// sends). For fault tests and benchmarks only: off by default, and refused unless
    /// `listen` and `metrics.listen` are loopback addresses.
    pub fault_injection: bool,
    /// Lets `listen` be an address other hosts reach. The RPC takes transactions and
    /// serves reads without authentication, so a validator refuses a non-loopback `listen`
    /// unless this says the operator means it (behind a firewall, or a proxy that
    /// authenticates and rate-limits clients).
    pub allow_public: bool,
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 8545)),
            max_body_bytes: 8 << 20,
            max_wait_ms: 30_000,
            max_concurrency: 1024,
            fault_injection: false,
            allow_public: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Prometheus exposition (`/metrics`, and `/health`) address; `None` serves them on the
    /// RPC port only. This port serves nothing else. Like `rpc.listen`, it must be loopback
    /// on a validator with `rpc.fault_injection`.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaderPolicyName {
    RoundRobin,
    Reputation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    pub base_timeout_ms: u64,
    /// The round timeout doubles per round without a QC, at most this many times. Kept
    /// low: with a crashed validator, long back-off stalls the chain far longer than the
    /// crash itself.
    pub max_timeout_exponent: u32,
    pub max_batch_delay_ms: u64,
    pub max_payload: usize,
    /// Most transactions in one block (whole batches: one larger batch still goes alone),
    /// so that a block executes well within a round even when a backlog builds up. Not
    /// applied on an ordering-only chain, which executes nothing.
    pub max_block_txs: u64,
    pub leader_policy: LeaderPolicyName,
    /// Committed blocks kept in memory to serve laggards.
    pub block_retention: usize,
    /// Most blocks asked for in one block-sync request (at most 128, what a peer serves).
    /// A replica more rounds behind its peers than this catches up forward from its last
    /// commit, one answer at a time, instead of walking back from the tip.
    pub sync_batch: u16,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            base_timeout_ms: 1_000,
            max_timeout_exponent: 1,
            max_batch_delay_ms: 200,
            max_payload: 1_024,
            max_block_txs: 10_000,
            leader_policy: LeaderPolicyName::Reputation,
            block_retention: 4_096,
            sync_batch: 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionSection {
    /// Executor worker threads; 0 means one per core.
    pub threads: usize,
    /// When execution is this many blocks behind consensus, ingress refuses new
    /// transactions (`busy`) and the validator stops offering its own batches.
    pub max_lag_blocks: u64,
}

impl Default for ExecutionSection {
    fn default() -> Self {
        ExecutionSection {
            threads: 0,
            max_lag_blocks: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    pub max_transactions: usize,
    pub max_per_sender: usize,
    pub nonce_window: u64,
    pub max_batch_txs: usize,
    pub max_batch_delay_ms: u64,
    /// Ingress admits what commits in about this many milliseconds at the rate this
    /// validator measures, and refuses the rest `busy` before checking it: the wait it
    /// aims at for admitted transactions under overload.
    pub latency_budget_ms: u64,
    /// Ingress admits at least this many transactions in flight (in the mempool or in
    /// own batches not committed yet), whatever the measured rate: enough for a cold
    /// validator to take a useful load while it measures.
    pub min_in_flight: u64,
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection {
            max_transactions: 200_000,
            max_per_sender: 1_024,
            nonce_window: 1_024,
            max_batch_txs: 4_000,
            max_batch_delay_ms: 20,
            // Under twice the closed-loop capacity (2 cores, night of 6 December, 60 s):
            // p99 652 ms (ordering only) and 765 ms (transfers) against 873 to 1,171 and
            // 930 at 300, for a few per cent of a closed loop that keeps more in flight
            // than the budget allows (README, Overload).
            latency_budget_ms: 200,
            min_in_flight: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Fsync every executed block before acknowledging it.
    pub sync_commits: bool,
    /// Small caches, for tests and local networks of many processes.
    pub small_caches: bool,
    /// A state snapshot is written after every height that is a multiple of this (0:
    /// never), for peers that sync from snapshots; every validator of a chain should use
    /// the same interval, so that they snapshot the same heights. 10,000 blocks are a
    /// few minutes of a loaded local testnet.
    pub snapshot_interval_blocks: u64,
    /// Snapshots kept on disk (at least one); the oldest is deleted once a newer one is
    /// complete.
    pub snapshots_kept: usize,
    /// A validator whose store has executed nothing (new, or wiped) restores the newest
    /// snapshot that more than f peers offer alike, instead of replaying the chain.
    pub state_sync: bool,
    /// How long a validator with an empty store waits for f + 1 peers before it gives up
    /// on state sync and replays the chain.
    pub state_sync_wait_ms: u64,
    /// History kept, in blocks below the executed height (0: all of it): older blocks,
    /// certificates, batches, transaction index entries and receipts are pruned, and a
    /// request for them is answered "pruned; oldest height is H". What a peer needs to
    /// restore the oldest snapshot kept (the 256 blocks below it and every block after)
    /// is kept whatever this says. 20,000 blocks are about 9 minutes of a loaded local
    /// testnet (37 blocks a second); at least 512.
    pub retain_blocks: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            sync_commits: true,
            small_caches: false,
            snapshot_interval_blocks: 10_000,
            snapshots_kept: 2,
            state_sync: true,
            state_sync_wait_ms: 5_000,
            retain_blocks: 20_000,
        }
    }
}

/// What a Byzantine validator does wrong (`[byzantine] behaviours = [...]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineSection {
    pub behaviours: Vec<Behaviour>,
}

/// One misbehaviour; see `node/src/byzantine.rs` for what each one sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// As leader, sends two different signed proposals for one round.
    Equivocate,
    /// Signs and sends votes for two different blocks in one round.
    DoubleVote,
    /// Disseminates copies of its batches with a corrupted transaction signature.
    InvalidSignatures,
    /// Pushes its batches to one peer only and serves no batch to anyone.
    WithholdBatches,
    /// Replays its old rounds' consensus messages to everyone.
    StaleMessages,
    /// Sends consensus frames above the protocol's size limit.
    OversizedMessages,
    /// Serves its snapshots' chunks with one byte changed.
    CorruptSnapshotChunks,
}

impl ByzantineSection {
    pub fn has(&self, b: Behaviour) -> bool {
        self.behaviours.contains(&b)
    }
}

impl NodeConfig {
    /// Reads, parses and resolves a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|(field, reason)| NodeError::Config {
            path: path.to_path_buf(),
            field,
            reason,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        for p in [
            &mut config.data_dir,
            &mut config.genesis,
            &mut config.validator_key,
            &mut config.network_key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses TOML; on failure returns (dotted field, reason).
    pub fn parse(text: &str) -> std::result::Result<Self, (String, String)> {
        let config: NodeConfig = from_toml(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), (String, String)> {
        let bad = |field: &str, reason: &str| Err((field.to_string(), reason.to_string()));
        if self.consensus.base_timeout_ms == 0 {
            return bad("consensus.base_timeout_ms", "must be above 0");
        }
        if !(1..=crate::block_sync::MAX_SYNC_BLOCKS)
            .contains(&usize::from(self.consensus.sync_batch))
        {
            return bad(
                "consensus.sync_batch",
                &format!("must be 1 to {}", crate::block_sync::MAX_SYNC_BLOCKS),
            );
        }
        if self.storage.snapshots_kept == 0 {
            return bad("storage.snapshots_kept", "must be at least 1");
        }
        if (1..crate::pruner::MIN_RETAIN_BLOCKS).contains(&self.storage.retain_blocks) {
            return bad(
                "storage.retain_blocks",
                &format!(
                    "must be 0 (keep everything) or at least {}: the duplicate rule reads the \
                     last 256 heights",
                    crate::pruner::MIN_RETAIN_BLOCKS
                ),
            );
        }
        if self.consensus.max_payload == 0 {
            return bad("consensus.max_payload", "must be above 0");
        }
        if self.consensus.max_block_txs == 0 {
            return bad("consensus.max_block_txs", "must be above 0");
        }
        if self.execution.max_lag_blocks == 0 {
            return bad("execution.max_lag_blocks", "must be above 0");
        }
        if self.mempool.max_batch_txs == 0 {
            return bad("mempool.max_batch_txs", "must be above 0");
        }
        if self.mempool.latency_budget_ms == 0 {
            return bad("mempool.latency_budget_ms", "must be above 0");
        }
        if self.mempool.min_in_flight == 0 {
            return bad(
                "mempool.min_in_flight",
                "must be above 0: nothing would ever be admitted",
            );
        }
        if self.rpc.max_body_bytes < 1024 {
            return bad("rpc.max_body_bytes", "must be at least 1024");
        }
        if !self.rpc.listen.ip().is_loopback()
            && !self.rpc.allow_public
            && !self.rpc.fault_injection
        {
            return bad(
                "rpc.listen",
                "is not a loopback address: the RPC takes transactions without \
                 authentication, so serving it beyond this host needs rpc.allow_public = true",
            );
        }
        if self.rpc.fault_injection && !self.rpc.listen.ip().is_loopback() {
            return bad(
                "rpc.fault_injection",
                "needs a loopback rpc.listen address: it lets any caller cut the validator off",
            );
        }
        // A validator built for fault tests keeps every HTTP listener on loopback, the
        // metrics port too (which once served the admin endpoint as well).
        if let Some(metrics) = self.metrics.listen {
            if self.rpc.fault_injection && !metrics.ip().is_loopback() {
                return bad(
                    "metrics.listen",
                    "must be a loopback address on a validator with rpc.fault_injection, \
                     as rpc.listen must",
                );
            }
        }
        if let Some(b) = &self.byzantine {
            if !cfg!(feature = "byzantine") {
                return bad(
                    "byzantine",
                    "this build of ordo lacks the `byzantine` feature, so it cannot \
                     misbehave on purpose (build with `--features ordo-cli/byzantine`)",
                );
            }
            if b.behaviours.is_empty() {
                return bad("byzantine.behaviours", "name at least one behaviour");
            }
        }
        Ok(())
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config serialises")
    }

    /// Writes the config to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()).map_err(|source| NodeError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// serde names a missing field only in its message: ``missing field `x` ``.
/// Deserialises TOML; on failure returns (dotted field, reason), so that errors name the
/// field even when the field is missing altogether.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> std::result::Result<T, (String, String)> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let field = if field == "." {
            missing_field(&inner.to_string()).unwrap_or(field)
        } else {
            field
        };
        (field, one_line(inner.message()))
    })
}

pub(crate) fn missing_field(message: &str) -> Option<String> {
    let start = message.find("missing field `")? + "missing field `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Serde through `Display` / `FromStr`, for multiaddresses (here, in genesis files and in
/// the ceremony's contributions).
pub mod as_string {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
data_dir = "data"
genesis = "../genesis.json"
validator_key = "validator.key"
network_key = "network.key"

[network]
listen = "/ip4/127.0.0.1/tcp/7000"
"#;

    #[test]
    fn minimal_config_takes_defaults() {
        let c = NodeConfig::parse(MINIMAL).unwrap();
        assert_eq!(c.rpc.listen.ip().to_string(), "127.0.0.1");
        assert_eq!(c.consensus, ConsensusSection::default());
        let again = NodeConfig::parse(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_the_field() {
        let (field, _) =
            NodeConfig::parse(&MINIMAL.replace("data_dir = \"data\"\n", "")).unwrap_err();
        assert_eq!(field, "data_dir");
        let (field, reason) =
            NodeConfig::parse(&MINIMAL.replace("/ip4/127.0.0.1/tcp/7000", "nonsense")).unwrap_err();
        assert_eq!(field, "network.listen", "{reason}");
        let (field, _) =
            NodeConfig::parse(&format!("{MINIMAL}\n[rpc]\nlisten = \"localhost\"\n")).unwrap_err();
        assert_eq!(field, "rpc.listen");
        let (field, reason) =
            NodeConfig::parse(&format!("{MINIMAL}\n[execution]\nthreds = 2\n")).unwrap_err();
        assert!(field.starts_with("execution"), "{field}: {reason}");
        assert!(reason.contains("threds"), "{reason}");
        let (field, _) =
            NodeConfig::parse(&format!("{MINIMAL}\n[consensus]\nbase_timeout_ms = 0\n"))
                .unwrap_err();
        assert_eq!(field, "consensus.base_timeout_ms");
    }

    #[test]
    fn the_loopback_rule_covers_the_metrics_listener() {
        let with = |rpc: &str, metrics: &str| {
            NodeConfig::parse(&format!(
                "{MINIMAL}\n[rpc]\nlisten = \"{rpc}\"\nfault_injection = true\n\
                 [metrics]\nlisten = \"{metrics}\"\n"
            ))
        };
        with("127.0.0.1:8545", "127.0.0.1:9100").unwrap();
        with("127.0.0.1:8545", "[::1]:9100").unwrap();
        let (field, reason) = with("127.0.0.1:8545", "0.0.0.0:9100").unwrap_err();
        assert_eq!(field, "metrics.listen", "{reason}");
        assert!(reason.contains("loopback"), "{reason}");
        let (field, _) = with("10.0.0.1:8545", "127.0.0.1:9100").unwrap_err();
        assert_eq!(field, "rpc.fault_injection");
        // Without the test-only endpoint, the operator may expose either port, as the
        // design allows ("unless the config says otherwise"): the RPC only when it says so.
        NodeConfig::parse(&format!(
            "{MINIMAL}\n[rpc]\nlisten = \"0.0.0.0:8545\"\nallow_public = true\n\
             [metrics]\nlisten = \"0.0.0.0:9100\"\n"
        ))
        .unwrap();
        let (field, reason) = NodeConfig::parse(&format!(
            "{MINIMAL}\n[rpc]\nlisten = \"0.0.0.0:8545\"\n[metrics]\nlisten = \"0.0.0.0:9100\"\n"
        ))
        .unwrap_err();
        assert_eq!(field, "rpc.listen");
        assert!(reason.contains("rpc.allow_public"), "{reason}");
    }

    #[test]
    fn byzantine_section_needs_the_feature() {
        let text = format!("{MINIMAL}\n[byzantine]\nbehaviours = [\"double_vote\"]\n");
        #[cfg(feature = "byzantine")]
        {
            let c = NodeConfig::parse(&text).unwrap();
            assert!(c.byzantine.unwrap().has(Behaviour::DoubleVote));
        }
        #[cfg(not(feature = "byzantine"))]
        {
            let (field, reason) = NodeConfig::parse(&text).unwrap_err();
            assert_eq!(field, "byzantine");
            assert!(reason.contains("feature"), "{reason}");
        }
        let (field, _) = NodeConfig::parse(&format!(
            "{MINIMAL}\n[byzantine]\nbehaviours = [\"be_nice\"]\n"
        ))
        .unwrap_err();
        assert!(field.starts_with("byzantine"), "{field}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let c = NodeConfig::load(&path).unwrap();
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert!(c.genesis.is_absolute());
        let err = NodeConfig::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(err.to_string().contains("none.toml"));
    }
}
