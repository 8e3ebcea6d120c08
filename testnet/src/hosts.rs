//! `ordo testnet init --hosts`: the files of an N-host network in one folder, made by the
//! genesis ceremony's own steps (`ordo_cli::ceremony`), one folder per host ready to
//! copy there (in the spirit of `cometbft testnet --hostname-prefix`).
//!
//! ```text
//! OUT/genesis.json      the genesis (its hash is printed)
//! OUT/dev.key           a funded development key (test networks)
//! OUT/HOST/             per host: config.toml, validator.key, network.key (0600),
//!                       contribution.json, genesis.json (a copy)
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ordo_cli::ceremony::{self, Contribution, GenesisPlan, ValidatorPlan, GENESIS_FILE};
use ordo_cli::localnet::LocalnetSpec;
use ordo_node::genesis::GenesisAccount;
use ordo_types::{keyfile, Hash32, KeyPair};
use serde::Serialize;

use crate::error::{Result, TestnetError};

/// What `init` is asked for.
#[derive(Debug, Clone)]
pub struct HostsSpec {
    pub hosts: Vec<String>,
    pub out: PathBuf,
    pub chain_id: u64,
    pub p2p_port: u16,
    pub rpc_port: u16,
    pub metrics_port: u16,
    /// RPC and metrics on every interface (`rpc.allow_public`), else on loopback.
    pub public_rpc: bool,
    pub block_gas_limit: u64,
}

/// What `init` made.
#[derive(Debug, Clone, Serialize)]
pub struct HostsReport {
    pub out: PathBuf,
    pub chain_id: u64,
    pub genesis: PathBuf,
    pub genesis_hash: Hash32,
    pub dev_key: PathBuf,
    pub validators: Vec<HostValidator>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostValidator {
    pub host: String,
    pub dir: PathBuf,
    pub address: String,
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
}

pub fn init(spec: &HostsSpec) -> Result<HostsReport> {
    let usage = |m: String| Err(TestnetError::Usage(m));
    if spec.hosts.is_empty() {
        return usage("--hosts names no host".into());
    }
    // Every host checked before anything is written: a refused run leaves no folder.
    let mut seen = HashSet::new();
    for h in &spec.hosts {
        if h.is_empty() || h.contains('/') || h.starts_with('.') {
            return usage(format!("--hosts: {h:?} is no host name or address"));
        }
        let address = ceremony::peer_address(h, spec.p2p_port).map_err(ceremony_error)?;
        if !seen.insert(address.to_string()) {
            return usage(format!("--hosts names {h} twice"));
        }
    }
    if spec.out.exists()
        && std::fs::read_dir(&spec.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return usage(format!(
            "{} is not empty: init writes keys into a new folder only",
            spec.out.display()
        ));
    }
    let io = |what: &str, e: std::io::Error| TestnetError::io(what, e);
    std::fs::create_dir_all(&spec.out).map_err(|e| io("create the output folder", e))?;

    let bind = if spec.public_rpc {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let mut contributions: Vec<(String, Contribution)> = Vec::new();
    let mut validators = Vec::new();
    for host in &spec.hosts {
        let plan = ValidatorPlan {
            dir: spec.out.join(host),
            name: host.clone(),
            host: host.clone(),
            p2p_port: spec.p2p_port,
            rpc: SocketAddr::new(bind, spec.rpc_port),
            metrics: SocketAddr::new(bind, spec.metrics_port),
            public_rpc: spec.public_rpc,
        };
        let c = ceremony::create_validator(&plan).map_err(ceremony_error)?;
        validators.push(HostValidator {
            host: host.clone(),
            dir: plan.dir.clone(),
            address: c.address.to_string(),
            rpc: plan.rpc,
            metrics: plan.metrics,
        });
        contributions.push((host.clone(), c));
    }
    let dev_key = spec.out.join("dev.key");
    let dev = KeyPair::generate();
    keyfile::write(&dev_key, &dev).map_err(|e| TestnetError::Usage(e.to_string()))?;
    let mut accounts = vec![GenesisAccount {
        address: dev.address(),
        balance: LocalnetSpec::default().dev_balance,
    }];
    accounts.extend(ordo_cli::dev_accounts::genesis_accounts());
    let genesis = ceremony::build_genesis(&GenesisPlan {
        chain_id: spec.chain_id,
        contributions,
        accounts,
        gas_price: 1,
        block_gas_limit: spec.block_gas_limit,
    })
    .map_err(ceremony_error)?;
    let genesis_path = spec.out.join(GENESIS_FILE);
    let genesis_hash = ceremony::write_genesis(&genesis_path, &genesis).map_err(ceremony_error)?;
    for v in &validators {
        copy(&genesis_path, &v.dir.join(GENESIS_FILE))?;
    }
    Ok(HostsReport {
        out: spec.out.clone(),
        chain_id: spec.chain_id,
        genesis: genesis_path,
        genesis_hash,
        dev_key,
        validators,
    })
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| TestnetError::io("copy the genesis into a host's folder", e))
}

fn ceremony_error(e: ceremony::CeremonyError) -> TestnetError {
    TestnetError::Usage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(out: &Path, hosts: &[&str]) -> HostsSpec {
        HostsSpec {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            out: out.to_path_buf(),
            chain_id: 7,
            p2p_port: 7000,
            rpc_port: 8545,
            metrics_port: 9100,
            public_rpc: false,
            block_gas_limit: ordo_node::genesis::DEFAULT_BLOCK_GAS_LIMIT,
        }
    }

    #[test]
    fn bad_hosts_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("net");
        for hosts in [
            &["10.0.0.1", "bad_host"][..],
            &["10.0.0.1", "[10.0.0.1]"][..],
            &["10.0.0.1", ""][..],
        ] {
            let err = init(&spec(&out, hosts)).unwrap_err().to_string();
            assert!(!out.exists(), "{hosts:?} left {}: {err}", out.display());
        }
        let report = init(&spec(&out, &["10.0.0.1", "v1.example"])).unwrap();
        assert_eq!(report.validators.len(), 2);
        assert_eq!(report.validators[1].address, "/dns/v1.example/tcp/7000");
    }
}
