//! `ordo run`: one validator in the foreground, logging through `tracing` to stderr.

use anyhow::{Context, Result};
use ordo_node::NodeConfig;

use crate::cli::RunArgs;

pub fn run(args: &RunArgs) -> Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ordo-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(ordo_node::run(config))?;
    Ok(())
}
