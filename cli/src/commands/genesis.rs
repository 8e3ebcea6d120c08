//! `ordo keys validator` and `ordo genesis`: the commands of the genesis ceremony (see
//! `ordo_cli::ceremony` for its steps and rules).

use anyhow::{bail, Context, Result};
use ordo_cli::ceremony::{self, Contribution, GenesisPlan, ValidatorPlan, CONTRIBUTION_FILE};
use ordo_node::genesis::GenesisAccount;
use ordo_types::{Address, Amount};
use serde_json::json;

use crate::cli::{GenesisBuildArgs, GenesisHashArgs, KeysValidatorArgs};
use crate::output::Output;

pub fn validator(args: &KeysValidatorArgs, out: &Output) -> Result<()> {
    let plan = ValidatorPlan {
        dir: args.dir.clone(),
        name: args.name.clone().unwrap_or_else(|| args.host.clone()),
        host: args.host.clone(),
        p2p_port: args.p2p_port,
        rpc: args.rpc_listen,
        metrics: args.metrics_listen,
        public_rpc: args.public_rpc,
    };
    let contribution = ceremony::create_validator(&plan)?;
    let path = args.dir.join(CONTRIBUTION_FILE);
    let value = serde_json::to_value(&contribution)?;
    out.emit(json!({ "contribution": value, "path": path, "dir": args.dir }), || {
        format!(
            "validator {} set up in {} (keys mode 0600, config.toml)\n\
             contribution written to {} (send it to the organizer):\n{}\n\
             next: put the genesis in {}, check its hash with `ordo genesis hash FILE --expect HASH`, \
             then `ordo run --config {}`",
            contribution.name,
            args.dir.display(),
            path.display(),
            serde_json::to_string_pretty(&contribution).expect("serialises"),
            args.dir.join(ceremony::GENESIS_FILE).display(),
            args.dir.join(ceremony::CONFIG_FILE).display(),
        )
    });
    Ok(())
}

pub fn build(args: &GenesisBuildArgs, out: &Output) -> Result<()> {
    let contributions = args
        .contributions
        .iter()
        .map(|p| Ok((p.display().to_string(), Contribution::load(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut accounts = Vec::new();
    for entry in &args.fund {
        accounts.push(funding(entry)?);
    }
    if args.dev_accounts {
        accounts.extend(ordo_cli::dev_accounts::genesis_accounts());
    }
    let genesis = ceremony::build_genesis(&GenesisPlan {
        chain_id: args.chain_id,
        contributions,
        accounts,
        gas_price: args.gas_price,
        block_gas_limit: args.block_gas_limit,
    })?;
    let hash = ceremony::write_genesis(&args.out, &genesis)?;
    out.emit(
        json!({
            "path": args.out,
            "hash": hash,
            "chain_id": genesis.chain_id,
            "validators": genesis.validators.iter().map(|v| &v.name).collect::<Vec<_>>(),
        }),
        || {
            format!(
                "genesis of chain {} with {} validators written to {}\nhash {hash}\n\
                 send the file and this hash to every operator",
                genesis.chain_id,
                genesis.validators.len(),
                args.out.display()
            )
        },
    );
    Ok(())
}

pub fn hash(args: &GenesisHashArgs, out: &Output) -> Result<()> {
    let hash = ceremony::hash_of(&args.path)?;
    if let Some(expected) = args.expect {
        if hash != expected {
            bail!(
                "genesis hash differs: {} has {hash}, not {expected}; do not start with it",
                args.path.display()
            );
        }
    }
    out.emit(
        json!({ "path": args.path, "hash": hash, "matches": args.expect.map(|_| true) }),
        || match args.expect {
            Some(_) => format!("{hash}  {} (as expected)", args.path.display()),
            None => format!("{hash}  {}", args.path.display()),
        },
    );
    Ok(())
}

/// `ADDRESS=AMOUNT`.
fn funding(entry: &str) -> Result<GenesisAccount> {
    let (address, amount) = entry
        .split_once('=')
        .with_context(|| format!("--fund {entry:?}: expected ADDRESS=AMOUNT"))?;
    let address: Address = address
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--fund {entry:?}: address: {e}"))?;
    let balance: Amount = amount
        .trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("--fund {entry:?}: amount (base units): {e}"))?;
    Ok(GenesisAccount { address, balance })
}
