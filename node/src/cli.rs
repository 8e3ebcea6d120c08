//! The command line: every command, flag and help text of `ordo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ordo",
    version,
    about = "Ordo: a Byzantine-fault-tolerant blockchain node (HotStuff consensus, parallel execution, RocksDB)",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect ed25519 key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run a validator until SIGTERM or Ctrl-C.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The validator's TOML config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it to a file readable only by you (mode 0600).
    New(KeysNewArgs),
    /// Print the public key and address of a key file (never the secret).
    Show(KeysShowArgs),
}

#[derive(Debug, Args)]
pub struct KeysNewArgs {
    /// Where to write the key; an existing file is never overwritten.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeysShowArgs {
    /// The key file to read.
    #[arg(value_name = "FILE")]
    pub path: PathBuf,
}
