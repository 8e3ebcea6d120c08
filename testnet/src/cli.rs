//! The `ordo testnet ...` and `ordo bench ...` command lines, parsed exactly as a user
//! types them after `ordo` (the `ordo` binary hands these commands over unchanged).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ordo",
    bin_name = "ordo",
    version,
    about = "Ordo local testnets and the end-to-end benchmark",
    long_about = None
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// An RPC endpoint for `bench` to load (repeatable), as `ordo --rpc URL bench`.
    #[arg(long, value_name = "URL")]
    pub rpc: Vec<String>,

    /// The local testnet's folder, as `ordo --testnet-dir DIR testnet up`
    /// [default: $ORDO_TESTNET_DIR, else ~/.ordo/testnet].
    #[arg(long, value_name = "DIR")]
    pub testnet_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run N validators on this machine: up, status, logs, down; or generate a network of
    /// several hosts: init.
    #[command(subcommand)]
    Testnet(TestnetCommand),
    /// Measure end-to-end throughput and latency under load.
    Bench(Box<BenchArgs>),
    /// Run the fault suite: kill, freeze, wipe, partition and flood validators of a
    /// temporary testnet under load, then check one chain, nothing lost, nothing applied
    /// twice, recovery and no panic. Exits 1 on any violation.
    Faults(FaultsArgs),
}

#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// The long form: 150 s of kill/restart churn, three pauses, 20-s partitions, a
    /// 30-s flood (about 6 minutes in all). Without it, the short form CI runs.
    #[arg(long)]
    pub long: bool,

    /// Validators of the temporary testnet (f = (n - 1) / 3 may be down at once).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 4)]
    pub validators: usize,

    /// Seed of the fault schedule and the load; the same seed gives the same schedule.
    #[arg(long, value_name = "N", default_value_t = 0x20261121)]
    pub seed: u64,

    /// Length of the kill/restart churn [default: 30s short, 150s long].
    #[arg(long, value_name = "DURATION", value_parser = ordo_testnet::bench::config::parse_duration)]
    pub churn: Option<std::time::Duration>,

    /// Keep the testnet's folder here for inspection (the validators are still stopped).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// First port of the testnet [default: a free block of ports].
    #[arg(long, value_name = "PORT")]
    pub port_base: Option<u16>,

    /// Write the JSON report to FILE (to standard output when no FILE is given).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,
}

#[derive(Debug, Args, Clone)]
pub struct DirArg {
    /// The testnet's folder [default: $ORDO_TESTNET_DIR, else ~/.ordo/testnet].
    #[arg(long, alias = "testnet-dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl DirArg {
    /// Takes the folder given before the command unless one is given after it.
    pub fn inherit(&mut self, dir: Option<PathBuf>) {
        self.dir = self.dir.take().or(dir);
    }
}

#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Generate (if needed) and start the validators, wait until they are ready.
    Up(UpArgs),
    /// Generate a network of one validator per host, for copying to the hosts: a folder
    /// per host (config, keys, genesis), made by the genesis ceremony's own steps. Start
    /// each with `ordo run --config HOST/config.toml` on its host.
    Init(InitArgs),
    /// Each validator's process and chain status.
    Status(StatusArgs),
    /// Print a validator's log (all validators' when no index is given).
    Logs(LogsArgs),
    /// Stop every validator (SIGTERM, then SIGKILL after a grace period). The chain's
    /// data stays: `up` resumes it.
    Down(DownArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The hosts, one validator each, as the others dial them: IP addresses or DNS names,
    /// comma-separated. Each gets a folder of that name.
    #[arg(
        long,
        value_name = "HOST,HOST,...",
        value_delimiter = ',',
        required = true
    )]
    pub hosts: Vec<String>,

    /// The folder to write (must be new or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The chain's id.
    #[arg(long, value_name = "ID", default_value_t = 1337)]
    pub chain_id: u64,

    /// The port each validator listens on for peers (every interface).
    #[arg(long, value_name = "PORT", default_value_t = ordo_cli::ceremony::DEFAULT_P2P_PORT)]
    pub p2p_port: u16,

    /// Each validator's RPC port.
    #[arg(long, value_name = "PORT", default_value_t = ordo_cli::ceremony::DEFAULT_RPC_PORT)]
    pub rpc_port: u16,

    /// Each validator's metrics port (Prometheus `/metrics`).
    #[arg(long, value_name = "PORT", default_value_t = ordo_cli::ceremony::DEFAULT_METRICS_PORT)]
    pub metrics_port: u16,

    /// Serve the RPC and metrics on every interface (`rpc.allow_public`), not on loopback
    /// only. The RPC takes transactions without authentication: keep such a network
    /// behind a firewall.
    #[arg(long)]
    pub public_rpc: bool,

    /// The block gas limit of the genesis.
    #[arg(long, value_name = "GAS", default_value_t = ordo_node::genesis::DEFAULT_BLOCK_GAS_LIMIT)]
    pub block_gas_limit: u64,

    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: DirArg,

    /// Number of validators of a new testnet [default: 4].
    #[arg(long, short = 'n', value_name = "N")]
    pub validators: Option<usize>,

    /// First port of a new testnet: validator i uses base+3i (p2p), +1 (RPC), +2 (metrics)
    /// [default: 7100].
    #[arg(long, value_name = "PORT")]
    pub port_base: Option<u16>,

    /// Stop and delete the existing testnet in the folder, then make a new one.
    #[arg(long)]
    pub reset: bool,

    /// Funded benchmark accounts in a new testnet's genesis [default: 10000].
    #[arg(long, value_name = "N")]
    pub accounts: Option<u32>,

    /// Make a new testnet that orders opaque payloads without executing them.
    #[arg(long)]
    pub ordering_only: bool,

    /// A new testnet's block gas limit: the most EVM gas (by gas limits) one block's
    /// contract transactions may ask for [default: 1000000000].
    #[arg(long, value_name = "GAS")]
    pub block_gas_limit: Option<u64>,

    /// Let a new testnet's validators take `POST /v1/admin/partition` on their (loopback)
    /// RPC port, to cut chosen validators off for fault tests. Off unless asked for.
    #[arg(long)]
    pub fault_injection: bool,

    /// Seconds to wait for every validator to answer and see its peers.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: DirArg,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub common: DirArg,

    /// The validator's index (0 is the first); all validators when absent.
    #[arg(value_name = "INDEX")]
    pub index: Option<usize>,

    /// How many of the last lines to print.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub lines: usize,

    /// Keep printing what the validators write until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub common: DirArg,

    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub grace: u64,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Bring a temporary testnet up for the run and down after it (also on Ctrl-C).
    #[arg(long)]
    pub local: bool,

    /// Validators of the --local testnet.
    #[arg(
        long,
        short = 'n',
        value_name = "N",
        default_value_t = 4,
        requires = "local"
    )]
    pub validators: usize,

    /// RPC endpoint to load (repeatable); default: the running validators of the local
    /// testnet (--dir).
    #[arg(long, value_name = "URL", conflicts_with = "local")]
    pub rpc: Vec<String>,

    /// The testnet folder to load (or, with --local, to keep the temporary testnet in).
    #[arg(long, alias = "testnet-dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// First port of the --local testnet [default: a free block of ports].
    #[arg(long, value_name = "PORT", requires = "local")]
    pub port_base: Option<u16>,

    /// Block gas limit of the --local testnet [default: 1000000000].
    #[arg(long, value_name = "GAS", requires = "local")]
    pub block_gas_limit: Option<u64>,

    /// Wide-area conditions on one machine: inject this round-trip time between every two
    /// validators of the --local testnet (each delays what it sends by half; e.g. 100ms).
    #[arg(long, value_name = "TIME", requires = "local", value_parser = ordo_testnet::bench::config::parse_duration)]
    pub rtt: Option<std::time::Duration>,

    /// Open loop: offer this many transactions per second, whatever the answers.
    #[arg(long, value_name = "TPS", conflicts_with = "max_in_flight")]
    pub rate: Option<f64>,

    /// Closed loop: keep at most this many transactions outstanding [default: 6500 when
    /// --rate is not given].
    #[arg(long, value_name = "K")]
    pub max_in_flight: Option<u64>,

    /// Open loop at each of these rates in turn (RATE,RATE,...), one whole run each
    /// (with --local, each on a fresh testnet unless --dir keeps one); prints committed
    /// rate, p50 and p99 per rate, and --plot draws the throughput-latency curve.
    #[arg(long, value_name = "RATES", value_parser = rates, conflicts_with_all = ["rate", "max_in_flight", "fault_at"])]
    pub sweep: Option<Rates>,

    /// Measured time, after the warm-up (30, 30s, 2m, 500ms).
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = duration)]
    pub duration: std::time::Duration,

    /// Time under load before measuring.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = duration)]
    pub warmup: std::time::Duration,

    /// Longest wait, after sending stops, for outstanding transactions.
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = duration)]
    pub drain: std::time::Duration,

    /// transfer, swap, mint, compute, mixed, or opaque (ordering-only payloads); or the
    /// contract workloads erc20 (token transfers), amm (swaps, one pair per pool of the
    /// genesis), nft (mints, one collection per genesis collection) and defi-mix (in ten:
    /// four token transfers, three swaps, two mints, one native transfer), whose
    /// contracts are deployed, and accounts funded, before the clock starts.
    #[arg(long, value_name = "KIND", default_value = "transfer")]
    pub workload: ordo_testnet::bench::Workload,

    /// Transaction format: ordo (ed25519, Ordo's own) or eth (EIP-1559 transactions signed
    /// with secp256k1 keys, each validator recovering every sender); eth runs transfer and
    /// the contract workloads.
    #[arg(long, value_name = "FORMAT", default_value = "ordo", value_parser = parse_tx_format)]
    pub tx_format: ordo_cli::localnet::TxFormat,

    /// Size of each opaque payload in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    pub tx_size: usize,

    /// Funded bench accounts to send from (each keeps its own nonce sequence).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub accounts: u32,

    /// Share (0 to 1) of transfers that go to the hot accounts.
    #[arg(long, value_name = "SHARE", conflicts_with = "zipf")]
    pub hot_share: Option<f64>,

    /// How many accounts are hot (with --hot-share).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub hot_accounts: u32,

    /// Draw transfer recipients from a Zipf law with this exponent (e.g. 1.0).
    #[arg(long, value_name = "S")]
    pub zipf: Option<f64>,

    /// Iterations of each compute transaction.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub compute_iterations: u32,

    /// Crash this many validators of the --local testnet (the last ones).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub faults: usize,

    /// Kill the faulty validators (SIGKILL) this far into the run instead of never
    /// starting them.
    #[arg(long, value_name = "TIME", value_parser = duration)]
    pub fault_at: Option<std::time::Duration>,

    /// Transactions per submission request.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub batch: usize,

    /// Sender threads per validator (each sends for its own share of the accounts).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub senders: usize,

    /// Closed loop: how many transactions to sign up front at most [default: enough for
    /// the run at a mean latency of 140 ms (60 ms ordering only), at most 3 million (6
    /// million opaque payloads)]
    #[arg(long, value_name = "N")]
    pub max_txs: Option<u64>,

    /// Seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Write the JSON report to FILE (to standard output when no FILE is given).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub json: Option<Option<PathBuf>>,

    /// Draw TPS and p50 latency per second as an SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// No live progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The offered rates of `--sweep`, in the order given.
#[derive(Clone, Debug)]
pub struct Rates(pub Vec<f64>);

fn rates(text: &str) -> Result<Rates, String> {
    ordo_testnet::bench::sweep::parse_rates(text).map(Rates)
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    ordo_testnet::bench::parse_duration(text)
}

fn parse_tx_format(text: &str) -> Result<ordo_cli::localnet::TxFormat, String> {
    match text {
        "ordo" => Ok(ordo_cli::localnet::TxFormat::Ordo),
        "eth" => Ok(ordo_cli::localnet::TxFormat::Eth),
        other => Err(format!(
            "unknown transaction format {other:?}: use ordo or eth"
        )),
    }
}
