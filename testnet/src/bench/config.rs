//! What a benchmark run is asked to do, with the parsing of its textual knobs.

use ordo_cli::localnet::TxFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Result, TestnetError};

/// Where the load goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A temporary testnet brought up before the run and down after it.
    Local {
        validators: usize,
        /// Keep the testnet here instead of a temporary folder (it is still stopped).
        dir: Option<PathBuf>,
        port_base: Option<u16>,
        /// Of a new testnet; `None`: the genesis default.
        block_gas_limit: Option<u64>,
        /// A round-trip time injected between every two validators (each delays what it
        /// sends by half), for wide-area figures on one machine.
        rtt: Option<Duration>,
    },
    /// The running validators of the testnet in this folder.
    Testnet { dir: PathBuf },
    /// These RPC endpoints (validators of one network).
    Rpc(Vec<SocketAddr>),
}

/// How the offered load is paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Transactions are due at a fixed rate (per second) whatever the answers.
    Open { rate: f64 },
    /// At most this many transactions are outstanding (sent, not yet committed).
    Closed { max_in_flight: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Transfer,
    Swap,
    Mint,
    Compute,
    /// Transfer, swap, mint and compute in turn.
    Mixed,
    /// Random payloads of `--tx-size` bytes on an ordering-only network.
    Opaque,
    /// ERC-20 `transfer`s of one token (the `Token` example) among the accounts.
    Erc20,
    /// Swaps on `Pair` examples over two tokens, one pair per pool of the network; each
    /// account trades on one pair.
    Amm,
    /// `mint()` on `Collection` examples, one per collection of the network.
    Nft,
    /// A day on a DeFi chain, in ten: four ERC-20 transfers (of the AMM's first token),
    /// three AMM swaps, two NFT mints and one native transfer.
    DefiMix,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Transfer => "transfer",
            Workload::Swap => "swap",
            Workload::Mint => "mint",
            Workload::Compute => "compute",
            Workload::Mixed => "mixed",
            Workload::Opaque => "opaque",
            Workload::Erc20 => "erc20",
            Workload::Amm => "amm",
            Workload::Nft => "nft",
            Workload::DefiMix => "defi-mix",
        }
    }

    /// Whether the workload calls contracts, which set-up deploys before the clock.
    pub fn is_contract(self) -> bool {
        matches!(
            self,
            Workload::Erc20 | Workload::Amm | Workload::Nft | Workload::DefiMix
        )
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "transfer" => Workload::Transfer,
            "swap" => Workload::Swap,
            "mint" => Workload::Mint,
            "compute" => Workload::Compute,
            "mixed" => Workload::Mixed,
            "opaque" => Workload::Opaque,
            "erc20" => Workload::Erc20,
            "amm" => Workload::Amm,
            "nft" => Workload::Nft,
            "defi-mix" => Workload::DefiMix,
            other => {
                return Err(format!(
                    "unknown workload {other:?}: use transfer, swap, mint, compute, mixed, opaque, erc20, amm, nft or defi-mix"
                ))
            }
        })
    }
}

/// Which accounts receive transfers: contention comes from many transactions writing the
/// same account. Senders are always spread evenly, one nonce chain each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Skew {
    Uniform,
    /// A share (0 to 1) of transfers goes to the first `accounts` accounts.
    Hot {
        accounts: u32,
        share: f64,
    },
    /// Recipients follow a Zipf law of this exponent over all accounts.
    Zipf {
        exponent: f64,
    },
}

/// Crash faults injected into a local testnet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// How many validators (the last ones) are down.
    pub count: usize,
    /// `None`: never started; else SIGKILLed this far into the run.
    pub at: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub target: Target,
    pub load: Load,
    pub duration: Duration,
    pub warmup: Duration,
    /// How long to wait after the last send for outstanding transactions.
    pub drain: Duration,
    pub workload: Workload,
    /// Ordo's own transactions or Ethereum's.
    pub tx_format: TxFormat,
    /// Payload size of the opaque workload, in bytes.
    pub tx_size: usize,
    /// Funded bench accounts used as senders (and recipients).
    pub accounts: u32,
    pub skew: Skew,
    /// Iterations of each `compute` transaction.
    pub compute_iterations: u32,
    pub faults: Faults,
    /// Transactions per submission request.
    pub batch_size: usize,
    /// Sender threads (each with its own accounts) per validator.
    pub senders_per_validator: usize,
    /// For closed loop: how many transactions to sign up front at most.
    pub max_txs: Option<u64>,
    /// How long after the run a transaction stays valid.
    pub ttl: Duration,
    pub seed: u64,
    /// Print a progress line each second (to stderr).
    pub live: bool,
}

impl BenchConfig {
    /// Checks the knobs against each other; the error names the flag to change.
    pub fn validate(&self) -> Result<()> {
        let usage = |m: String| Err(TestnetError::Usage(m));
        if self.duration.is_zero() {
            return usage("--duration must be above 0".into());
        }
        match self.load {
            Load::Open { rate } if !(rate > 0.0 && rate.is_finite()) => {
                return usage(format!("--rate {rate} must be a positive number"));
            }
            Load::Closed { max_in_flight: 0 } => {
                return usage("--max-in-flight must be at least 1".into());
            }
            _ => {}
        }
        if self.workload != Workload::Opaque && self.accounts == 0 {
            return usage("--accounts must be at least 1".into());
        }
        let native_only = matches!(
            self.workload,
            Workload::Swap
                | Workload::Mint
                | Workload::Compute
                | Workload::Mixed
                | Workload::Opaque
        );
        if self.tx_format == TxFormat::Eth && native_only {
            return usage(format!(
                "--tx-format eth runs transfer, erc20, amm, nft and defi-mix; {} has no Ethereum form",
                self.workload.name()
            ));
        }
        if self.workload == Workload::Opaque && !(8..=1 << 20).contains(&self.tx_size) {
            return usage(format!(
                "--tx-size {} must be between 8 and 1048576 bytes",
                self.tx_size
            ));
        }
        if self.batch_size == 0 {
            return usage("--batch must be at least 1".into());
        }
        if self.senders_per_validator == 0 {
            return usage("--senders must be at least 1".into());
        }
        match self.skew {
            Skew::Hot { share, accounts } => {
                if !(0.0..=1.0).contains(&share) {
                    return usage(format!("--hot-share {share} must be between 0 and 1"));
                }
                if accounts == 0 || accounts > self.accounts {
                    return usage(format!(
                        "--hot-accounts {accounts} must be between 1 and --accounts ({})",
                        self.accounts
                    ));
                }
            }
            Skew::Zipf { exponent } if !(exponent > 0.0 && exponent.is_finite()) => {
                return usage(format!("--zipf {exponent} must be a positive number"));
            }
            _ => {}
        }
        let validators = match &self.target {
            Target::Local { validators, .. } => *validators,
            _ => 0,
        };
        if self.faults.count > 0 {
            if !matches!(self.target, Target::Local { .. }) {
                return usage(
                    "--faults needs --local: the benchmark crashes only validators it started"
                        .into(),
                );
            }
            if self.faults.count >= validators {
                return usage(format!(
                    "--faults {} leaves none of {validators} validators running",
                    self.faults.count
                ));
            }
        }
        if let Some(at) = self.faults.at {
            if self.faults.count == 0 {
                return usage("--fault-at needs --faults K".into());
            }
            if at >= self.warmup + self.duration {
                return usage("--fault-at must fall before the end of the run".into());
            }
        }
        if let Target::Local { validators: 0, .. } = self.target {
            return usage("--validators must be at least 1".into());
        }
        Ok(())
    }

    /// Warm-up plus measurement.
    pub fn run_time(&self) -> Duration {
        self.warmup + self.duration
    }
}

/// Parses `30`, `30s`, `1.5s`, `500ms`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: use e.g. 30s, 500ms, 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?} has an unknown unit: use ms, s, m or h")),
    };
    if !(seconds >= 0.0 && seconds.is_finite() && seconds < 1e7) {
        return Err(format!("{text:?} is not a usable duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn workloads_parse_by_name() {
        for w in [
            "transfer", "swap", "mint", "compute", "mixed", "opaque", "erc20", "amm", "nft",
        ] {
            assert_eq!(w.parse::<Workload>().unwrap().name(), w);
        }
        assert!("erc721".parse::<Workload>().unwrap_err().contains("erc20"));
    }
}
