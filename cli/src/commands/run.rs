//! `ordo run`: one validator in the foreground, logging through `tracing` to stderr.

use anyhow::{Context, Result};
use ordo_node::NodeConfig;

use crate::cli::RunArgs;

pub fn run(args: &RunArgs) -> Result<()> {
    let config = NodeConfig::load(&args.config)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: log files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    // Signature checks run on `ordo_types::bulk`; the global rayon pool is left the
    // parallel loops inside them (Ethereum senders), below consensus's priority too;
    // named threads make a profile readable.
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("ordo-par-{i}"))
        .start_handler(|_| ordo_types::lower_thread_priority())
        .build_global()
        .context("cannot start the parallel-loop pool")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ordo-rt")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(ordo_node::run(config))?;
    Ok(())
}
