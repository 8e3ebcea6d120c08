//! The command line: every command, flag and help text of `ordo`.
//!
//! A usage error is reported like any other failure: with `--json`, as the one JSON
//! document on stdout (see `output.rs`), with exit status 2. That is why [`Cli`] implements
//! clap's `Parser` by hand instead of deriving it: `parse_from` is clap's own except for
//! that case.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// The exit statuses, for scripts; the numbers live in `commands::errors`.
const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  other failure (key file, unexpected answer, missing ordo-testnet binary)
  2  bad command-line input
  3  no node answers at the RPC address, or there is no local testnet
  4  the node refused the request (its reason code is in the message)
  5  the transaction was committed but its execution failed (fee paid, nonce used)
  6  the transaction expired before it was committed
  7  the transaction is still pending after the wait
  8  the node does not know the transaction
  9  the transaction was included but not executed (e.g. its nonce was already used):
     nothing changed and no fee was paid; send it again";

#[derive(Debug, Args)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true, display_order = 900)]
    pub json: bool,

    /// The node to talk to, e.g. http://127.0.0.1:7101 or 127.0.0.1:7101
    /// [default: validator 0 of the local testnet].
    #[arg(long, global = true, value_name = "URL", display_order = 901)]
    pub rpc: Option<String>,

    /// The local testnet's folder, for the default RPC address and dev key
    /// [default: $ORDO_TESTNET_DIR, else ~/.ordo/testnet].
    #[arg(long, global = true, value_name = "DIR", display_order = 902)]
    pub testnet_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What `#[command(...)]` on a derived `Parser` would set.
fn ordo_command() -> clap::Command {
    clap::Command::new("ordo")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Ordo: a Byzantine-fault-tolerant blockchain node (HotStuff consensus, parallel execution, RocksDB)")
        .propagate_version(true)
        .after_help(EXIT_CODES)
}

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        Self::augment_args(ordo_command())
    }

    fn command_for_update() -> clap::Command {
        Self::augment_args_for_update(ordo_command())
    }
}

impl Parser for Cli {
    /// clap's `parse_from`, except that with `--json` a usage error is one JSON document on
    /// stdout rather than clap's text; help and version print as usual.
    fn parse_from<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        use clap::error::ErrorKind;
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(e)
                if args.iter().any(|a| a == "--json")
                    && !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) =>
            {
                let out = crate::output::Output::new(true);
                let reason = match e.kind() {
                    // clap prints the whole help for these; its first line is no reason.
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    | ErrorKind::MissingSubcommand => {
                        "no command given (see `ordo --help`)".to_string()
                    }
                    _ => usage_error_line(&e.render().to_string()),
                };
                out.fail(&anyhow::anyhow!(reason), Some("bad_input"), 2);
                std::process::exit(2);
            }
            Err(e) => e.exit(),
        }
    }
}

/// clap's first line without its `error: ` prefix, plus where to look for the usage.
fn usage_error_line(rendered: &str) -> String {
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("bad command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see `ordo --help`)")
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and inspect ed25519 key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The genesis ceremony's organizer: build a genesis file from the validators'
    /// contributions, or print a genesis file's hash.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Run a validator until SIGTERM or Ctrl-C.
    Run(RunArgs),
    /// Run a local multi-validator testnet: up, status, logs, down; or generate a network
    /// of several hosts: init (runs `ordo-testnet`).
    #[command(disable_help_flag = true)]
    Testnet(ExternalArgs),
    /// Measure end-to-end TPS and latency under load (runs `ordo-testnet`).
    #[command(disable_help_flag = true)]
    Bench(ExternalArgs),
    /// Run the fault suite on a temporary testnet: kills, pauses, wipes, partitions and a
    /// flood under load, then the safety checks (runs `ordo-testnet`).
    #[command(disable_help_flag = true)]
    Faults(ExternalArgs),
    /// Show an account's balance and next nonce.
    Account(AccountArgs),
    /// Send native coins; waits until the transfer is committed unless --no-wait.
    Transfer(TransferArgs),
    /// Trade against an AMM pool; waits until committed unless --no-wait.
    Swap(SwapArgs),
    /// Mint the next token of an NFT collection to the sender; waits unless --no-wait.
    Mint(MintArgs),
    /// Deploy, call and read EVM contracts (Solidity examples built in, or your own build).
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Show a transaction's status: pending, committed (height, result), expired or unknown.
    Tx(TxArgs),
    /// Show a committed block (the latest when no height is given).
    Block(BlockArgs),
    /// Show the node's heights, round, state root and peers.
    Status,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The validator's TOML config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments handed unchanged to the `ordo-testnet` binary.
#[derive(Debug, Args)]
pub struct ExternalArgs {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key and write it to a file readable only by you (mode 0600).
    New(KeysNewArgs),
    /// Print the public key and address of a key file (never the secret).
    Show(KeysShowArgs),
    /// Set up a validator on this host for a genesis ceremony: its consensus and network
    /// keys (mode 0600, never overwritten), its config, and its public contribution
    /// (printed, and written as contribution.json) for the organizer's `ordo genesis build`.
    /// Then put the genesis file in DIR as genesis.json, check its hash (`ordo genesis hash
    /// DIR/genesis.json --expect HASH`) and start `ordo run --config DIR/config.toml`.
    Validator(KeysValidatorArgs),
}

#[derive(Debug, Args)]
pub struct KeysValidatorArgs {
    /// The validator's folder (created if missing): keys, config.toml, contribution.json;
    /// the config names them relative to it, so the folder can move.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// This host's address as the other validators dial it: an IPv4 or IPv6 address, or
    /// a DNS name (resolved at every dial).
    #[arg(long)]
    pub host: String,
    /// The validator's name in the genesis [default: the host].
    #[arg(long)]
    pub name: Option<String>,
    /// The port peers dial; the validator listens on it on every interface.
    #[arg(long, value_name = "PORT", default_value_t = ordo_cli::ceremony::DEFAULT_P2P_PORT)]
    pub p2p_port: u16,
    /// Where the RPC (and the Ethereum JSON-RPC) listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8545")]
    pub rpc_listen: SocketAddr,
    /// Where the Prometheus metrics (/metrics) listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
    pub metrics_listen: SocketAddr,
    /// Allow a non-loopback --rpc-listen. The RPC takes transactions and serves reads without
    /// authentication: expose it only behind a firewall or an authenticating proxy.
    #[arg(long)]
    pub public_rpc: bool,
}

#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Build a genesis file from the validators' contributions (each checked: version,
    /// both keys' signatures, no validator twice) and print its hash.
    Build(GenesisBuildArgs),
    /// Print a genesis file's hash, the one every operator compares before starting; with
    /// --expect, fail unless it is that one.
    Hash(GenesisHashArgs),
}

#[derive(Debug, Args)]
pub struct GenesisBuildArgs {
    /// The chain's id (Ethereum transactions sign it too).
    #[arg(long, value_name = "ID")]
    pub chain_id: u64,
    /// A validator's contribution.json from `ordo keys validator` (repeat for each
    /// validator; the genesis lists them in this order).
    #[arg(long = "contribution", value_name = "FILE", required = true)]
    pub contributions: Vec<PathBuf>,
    /// Fund an account at genesis: ADDRESS=AMOUNT, the amount in base units (repeatable).
    #[arg(long = "fund", value_name = "ADDR=AMOUNT")]
    pub fund: Vec<String>,
    /// Also fund the ten standard development accounts (anvil's and Hardhat's, 10,000
    /// coins each). Their keys are public: for test networks only.
    #[arg(long)]
    pub dev_accounts: bool,
    /// Native coin charged per unit of gas.
    #[arg(long, value_name = "PRICE", default_value_t = 1)]
    pub gas_price: u64,
    /// The most gas (by gas limits) one block's contract transactions may ask for.
    #[arg(long, value_name = "GAS", default_value_t = ordo_node::genesis::DEFAULT_BLOCK_GAS_LIMIT)]
    pub block_gas_limit: u64,
    /// Where to write the genesis; an existing file is never overwritten.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct GenesisHashArgs {
    /// The genesis file.
    #[arg(value_name = "FILE")]
    pub path: PathBuf,
    /// The hash the organizer announced: exit 1 unless the file has it.
    #[arg(long, value_name = "HASH")]
    pub expect: Option<ordo_types::Hash32>,
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

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The account: an address (0x and 40 hex characters, as Ethereum tools write it) or a key file.
    #[arg(value_name = "ADDR")]
    pub address: String,
}

/// How a transaction is signed, sent and followed; shared by every submitting command.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The sender's key file [default: dev.key of the local testnet].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Return once the node accepts the transaction, without waiting for it to commit.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds until the transaction expires if no block has included it.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub expires_in: u64,
    /// The nonce to use [default: the account's next nonce, read from the node, with a
    /// fresh transaction if that read proves stale].
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The recipient: an address (0x and 40 hex characters) or a key file.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// How many coins to send, in base units (up to 2^128 - 1).
    #[arg(long, value_name = "N")]
    pub amount: u128,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Direction {
    /// Pay asset A (the native coin), receive asset B.
    AToB,
    /// Pay asset B, receive asset A (the native coin).
    BToA,
}

#[derive(Debug, Args)]
pub struct SwapArgs {
    /// The pool's id.
    #[arg(long, value_name = "ID")]
    pub pool: u32,
    /// How much to pay in.
    #[arg(long, value_name = "N")]
    pub amount_in: u64,
    /// The least to receive; the swap fails (and only the fee is paid) below it.
    #[arg(long, value_name = "N")]
    pub min_out: u64,
    /// Which way to trade.
    #[arg(long, value_enum)]
    pub direction: Direction,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Deploy a contract and wait until it is committed; prints its address.
    ///
    /// CONTRACT is a built-in example (Token, Pair, Collection, Dao, Counter,
    /// CounterFactory, Looper, MemoryHog, Recurser, SelfDestructor, Reverter, Thrower,
    /// Reenterer) or a build file
    /// (JSON with "abi" and "bytecode", as `contracts/build/*.json`). Constructor arguments
    /// follow, each parsed as the ABI's type: `ordo contract deploy Token Ordo ORD 1000000`.
    Deploy(ContractDeployArgs),
    /// Call a contract in a transaction and wait until it is committed.
    ///
    /// `ordo contract call 0xTOKEN 'transfer(address,uint256)' 0xTO 100`; add
    /// `returns (bool)` to the signature to decode what it returns, and --abi to decode its
    /// events and custom errors.
    Call(ContractCallArgs),
    /// Call a contract read-only against the node's latest executed state: no transaction,
    /// no fee, nothing changes.
    ///
    /// `ordo contract read 0xTOKEN 'balanceOf(address) returns (uint256)' 0xWHO`.
    Read(ContractReadArgs),
}

#[derive(Debug, Args)]
pub struct ContractDeployArgs {
    /// A built-in example's name or a build file (see `ordo contract deploy --help`).
    #[arg(value_name = "CONTRACT")]
    pub contract: String,
    /// Constructor arguments, in order (after `--` if one starts with `-`).
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
    /// Native coin sent with the deployment (the constructor must be payable).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub value: u128,
    /// Gas limit; the sender must hold this times the gas price, and pays for what is used.
    #[arg(long, value_name = "N", default_value_t = 3_000_000)]
    pub gas: u64,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

/// A function of a contract and its arguments, as `contract call` and `contract read`
/// take them.
#[derive(Debug, Args)]
pub struct ContractFunctionArgs {
    /// The contract's address.
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// The function: 'name(types)', optionally with 'returns (types)' (which `read`
    /// needs to decode what comes back).
    #[arg(value_name = "SIGNATURE")]
    pub signature: String,
    /// Arguments, in order, each parsed as its type (after `--` if one starts with `-`).
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContractCallArgs {
    #[command(flatten)]
    pub function: ContractFunctionArgs,
    /// Native coin sent with the call (the function must be payable).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub value: u128,
    /// Gas limit; the sender must hold this times the gas price, and pays for what is used.
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    pub gas: u64,
    /// An ABI to decode events and custom errors with: a built-in example or a build file.
    #[arg(long, value_name = "CONTRACT")]
    pub abi: Option<String>,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Args)]
pub struct ContractReadArgs {
    #[command(flatten)]
    pub function: ContractFunctionArgs,
    /// The caller (`msg.sender`) [default: the zero address].
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Gas limit of the call.
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub gas: u64,
    /// An ABI to decode custom errors with: a built-in example or a build file.
    #[arg(long, value_name = "CONTRACT")]
    pub abi: Option<String>,
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// The collection's id.
    #[arg(long, value_name = "ID")]
    pub collection: u32,
    #[command(flatten)]
    pub submit: SubmitArgs,
}

#[derive(Debug, Args)]
pub struct TxArgs {
    /// The transaction's hash (64 hex characters).
    #[arg(value_name = "HASH")]
    pub hash: String,
    /// Wait until the transaction is committed or expired.
    #[arg(long)]
    pub wait: bool,
    /// The longest to wait with --wait, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// The block's height [default: the latest committed block].
    #[arg(value_name = "HEIGHT")]
    pub height: Option<u64>,
}
