//! The commands: turn parsed arguments into library calls and print the results as text
//! or JSON.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ordo_cli::localnet;
use ordo_testnet::bench::{self, BenchConfig, Faults, Load, Skew, Target};
use ordo_testnet::faults::{self, FaultsConfig};
use ordo_testnet::testnet::{self, Testnet, UpOptions};
use ordo_testnet::{client, interrupt, process, TestnetError};
use serde_json::json;

use crate::cli::{BenchArgs, DirArg, DownArgs, FaultsArgs, InitArgs, LogsArgs, StatusArgs, UpArgs};

fn dir_of(arg: &DirArg) -> PathBuf {
    arg.dir.clone().unwrap_or_else(localnet::default_dir)
}

/// Prints a failure as one line on stderr (`{"error": …}` with `--json`); a validator
/// that died while starting gets its log's last lines first.
pub fn fail(error: &anyhow::Error, json: bool) {
    let mut tail = None;
    if let Some(TestnetError::ExitedEarly { tail: t, log, .. }) = error.downcast_ref() {
        if !json && !t.is_empty() {
            eprintln!("--- last lines of {} ---\n{t}\n---", log.display());
        }
        tail = Some(t.clone());
    }
    let reason = format!("{error:#}").replace('\n', " ");
    if json {
        let mut v = json!({ "error": reason });
        if let Some(t) = tail {
            v["log_tail"] = json!(t);
        }
        eprintln!("{v}");
    } else {
        eprintln!("error: {reason}");
    }
}

/// The exit status for a failure, as `ordo` numbers them: 2 bad input, 3 no node or no
/// testnet, 130 interrupted, 1 anything else.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if interrupt::requested() {
        return 130;
    }
    match error.downcast_ref::<TestnetError>() {
        Some(
            TestnetError::Usage(_)
            | TestnetError::PortBusy { .. }
            | TestnetError::NoSuchValidator { .. },
        ) => 2,
        Some(TestnetError::NoTestnet { .. } | TestnetError::Rpc { .. }) => 3,
        Some(TestnetError::Interrupted) => 130,
        _ => 1,
    }
}

/// Rows as aligned columns.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

pub fn up(args: &UpArgs, json: bool) -> Result<()> {
    let opts = UpOptions {
        validators: args.validators,
        port_base: args.port_base,
        reset: args.reset,
        accounts: args.accounts,
        ordering_only: args.ordering_only,
        block_gas_limit: args.block_gas_limit,
        fault_injection: args.fault_injection,
        ready_timeout: Duration::from_secs(args.timeout),
        ..UpOptions::new(dir_of(&args.common))
    };
    let (net, report) = testnet::up(&opts, &mut |m| eprintln!("{m}"))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .validators
        .iter()
        .map(|v| {
            vec![
                v.index.to_string(),
                v.peer_id.clone(),
                v.rpc.clone(),
                v.metrics.clone(),
                v.data_dir.display().to_string(),
                v.log.display().to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "validator",
                "peer id",
                "RPC",
                "metrics",
                "data dir",
                "log file"
            ],
            &rows
        )
    );
    let genesis = &net.net.genesis;
    println!(
        "chain {}: {} funded bench accounts{}",
        genesis.chain_id,
        net.bench_account_count(),
        if genesis.ordering_only {
            ", ordering-only (opaque payloads, no execution)"
        } else {
            ""
        }
    );
    println!("dev key: {}", report.dev_key.display());
    if !report.dev_accounts.is_empty() {
        println!(
            "Ethereum JSON-RPC: {} (chain id {}); every validator serves one at its RPC address",
            report.json_rpc, genesis.chain_id
        );
        println!(
            "development accounts (the test mnemonic's first ten, {} base units each; \
             public keys, never use them elsewhere):",
            report.dev_accounts[0].balance
        );
        for a in &report.dev_accounts {
            println!(
                "  ({}) {}  private key {}",
                a.index, a.address, a.private_key
            );
        }
    }
    println!("ready");
    Ok(())
}

fn open(arg: &DirArg) -> Result<Testnet> {
    Ok(Testnet::open(&dir_of(arg))?)
}

pub fn init(args: &InitArgs, json: bool) -> Result<()> {
    let report = ordo_testnet::hosts::init(&ordo_testnet::hosts::HostsSpec {
        hosts: args.hosts.clone(),
        out: args.out.clone(),
        chain_id: args.chain_id,
        p2p_port: args.p2p_port,
        rpc_port: args.rpc_port,
        metrics_port: args.metrics_port,
        public_rpc: args.public_rpc,
        block_gas_limit: args.block_gas_limit,
    })?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = report
        .validators
        .iter()
        .map(|v| {
            vec![
                v.host.clone(),
                v.dir.display().to_string(),
                v.address.clone(),
                v.rpc.to_string(),
            ]
        })
        .collect();
    println!("{}", table(&["host", "folder", "peers dial", "rpc"], &rows));
    println!(
        "genesis {} (chain {}), hash {}
dev key {}
         copy each folder to its host and run `ordo run --config FOLDER/config.toml` there",
        report.genesis.display(),
        report.chain_id,
        report.genesis_hash,
        report.dev_key.display()
    );
    Ok(())
}

pub fn status(args: &StatusArgs, json: bool) -> Result<()> {
    let net = open(&args.common)?;
    let rows = net.status();
    if json {
        println!("{}", testnet::status_json(&rows));
        return Ok(());
    }
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.index.to_string(),
                s.pid.map_or("-".into(), |p| p.to_string()),
                if s.running { "yes" } else { "no" }.into(),
                s.rpc.clone(),
                opt(s.height),
                opt(s.round),
                opt(s.executed_height),
                s.state_root
                    .as_ref()
                    .map_or("-".into(), |r| r.chars().take(16).collect()),
                opt(s.peers),
                s.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "validator",
                "pid",
                "running",
                "RPC",
                "height",
                "round",
                "executed",
                "state root",
                "peers",
                "",
            ],
            &table_rows
        )
    );
    println!("testnet in {}", net.dir().display());
    Ok(())
}

pub fn logs(args: &LogsArgs) -> Result<()> {
    let net = open(&args.common)?;
    let indices: Vec<usize> = match args.index {
        Some(i) => {
            net.check_index(i)?;
            vec![i]
        }
        None => (0..net.len()).collect(),
    };
    let many = indices.len() > 1;
    for &i in &indices {
        let path = net.log_file(i);
        if many {
            println!("==> validator {i}: {} <==", path.display());
        }
        let text = process::tail(&path, args.lines);
        if !text.is_empty() {
            println!("{text}");
        }
    }
    if args.follow {
        follow(
            &indices
                .iter()
                .map(|&i| (i, net.log_file(i)))
                .collect::<Vec<_>>(),
            many,
        )?;
    }
    Ok(())
}

/// Prints what is appended to the logs until Ctrl-C.
fn follow(logs: &[(usize, PathBuf)], prefix: bool) -> Result<()> {
    let mut offsets: Vec<u64> = logs
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let mut partial: Vec<String> = vec![String::new(); logs.len()];
    let stdout = std::io::stdout();
    while !interrupt::requested() {
        let mut any = false;
        for (k, (i, path)) in logs.iter().enumerate() {
            let Ok(mut f) = std::fs::File::open(path) else {
                continue;
            };
            let len = f.metadata().map_or(0, |m| m.len());
            if len < offsets[k] {
                offsets[k] = 0; // truncated or replaced
            }
            if len == offsets[k] {
                continue;
            }
            f.seek(SeekFrom::Start(offsets[k]))?;
            let mut bytes = Vec::new();
            f.take(len - offsets[k]).read_to_end(&mut bytes)?;
            offsets[k] = len;
            partial[k].push_str(&String::from_utf8_lossy(&bytes));
            let mut out = stdout.lock();
            while let Some(end) = partial[k].find('\n') {
                let line: String = partial[k].drain(..=end).collect();
                if prefix {
                    write!(out, "[v{i}] ")?;
                }
                out.write_all(line.as_bytes())?;
            }
            any = true;
        }
        if !any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

pub fn down(args: &DownArgs, json: bool) -> Result<()> {
    let net = open(&args.common)?;
    let stopped = net.down(Duration::from_secs(args.grace));
    for s in stopped.iter().filter(|s| s.outcome == "killed") {
        eprintln!(
            "warning: validator {} (pid {}) did not stop within {} s of SIGTERM and was killed",
            s.index, s.pid, args.grace
        );
    }
    if json {
        println!("{}", json!({ "stopped": stopped, "dir": net.dir() }));
    } else if stopped.is_empty() {
        println!(
            "no validator was running (testnet in {})",
            net.dir().display()
        );
    } else {
        for s in &stopped {
            println!("validator {} (pid {}): {}", s.index, s.pid, s.outcome);
        }
        println!(
            "stopped {} validators; `ordo testnet up` resumes the chain",
            stopped.len()
        );
    }
    Ok(())
}

fn config(args: &BenchArgs) -> Result<BenchConfig> {
    if args.local && !args.rpc.is_empty() {
        bail!("--local and --rpc exclude each other: --local loads a testnet of its own");
    }
    let target = if args.local {
        Target::Local {
            validators: args.validators,
            dir: args.dir.clone(),
            port_base: args.port_base,
            block_gas_limit: args.block_gas_limit,
            rtt: args.rtt,
        }
    } else if !args.rpc.is_empty() {
        Target::Rpc(
            args.rpc
                .iter()
                .map(|r| client::parse_rpc(r))
                .collect::<Result<_, _>>()?,
        )
    } else {
        Target::Testnet {
            dir: args.dir.clone().unwrap_or_else(localnet::default_dir),
        }
    };
    let load = match (args.rate, args.max_in_flight) {
        (Some(rate), _) => Load::Open { rate },
        (None, Some(k)) => Load::Closed { max_in_flight: k },
        (None, None) => Load::Closed {
            max_in_flight: DEFAULT_IN_FLIGHT,
        },
    };
    let skew = match (args.hot_share, args.zipf) {
        (Some(share), _) => Skew::Hot {
            accounts: args.hot_accounts,
            share,
        },
        (None, Some(exponent)) => Skew::Zipf { exponent },
        (None, None) => Skew::Uniform,
    };
    Ok(BenchConfig {
        target,
        load,
        duration: args.duration,
        warmup: args.warmup,
        drain: args.drain,
        workload: args.workload,
        tx_format: args.tx_format,
        tx_size: args.tx_size,
        accounts: args.accounts,
        skew,
        compute_iterations: args.compute_iterations,
        faults: Faults {
            count: args.faults,
            at: args.fault_at,
        },
        batch_size: args.batch,
        senders_per_validator: args.senders,
        max_txs: args.max_txs,
        ttl: Duration::from_secs(60),
        seed: args.seed,
        live: !args.quiet,
    })
}

/// Outstanding transactions of the closed loop when neither --rate nor --max-in-flight
/// is given: enough to keep 4 validators on 2 cores saturated (about 17,000 to 18,000 TPS
/// at a p50 of 350 ms); fewer leave cores idle between rounds, more only add latency there.
const DEFAULT_IN_FLIGHT: u64 = 6_500;

/// `ordo bench --sweep`: an open-loop run per rate, then the table, the JSON (every
/// run's report, in order) and the curve. A run whose checks fail stops the sweep; what
/// was measured until then, that run included, is still printed and written.
fn sweep(args: &BenchArgs, rates: &[f64], json: bool) -> Result<()> {
    let mut reports = Vec::new();
    let mut points = Vec::new();
    let mut failed = None;
    for (i, &rate) in rates.iter().enumerate() {
        let mut cfg = config(args)?;
        cfg.load = Load::Open { rate };
        eprintln!(
            "sweep: rate {} of {}: offering {rate:.0}/s",
            i + 1,
            rates.len()
        );
        let report = bench::run(&cfg, &mut |m| eprintln!("{m}"))?;
        let point = bench::sweep::SweepPoint::from_report(rate, &report);
        eprintln!(
            "sweep: offered {rate:.0}/s, committed {:.0}/s, p50 {:.0} ms, p99 {:.0} ms",
            point.committed_tps, point.p50_ms, point.p99_ms
        );
        let interrupted = report.interrupted;
        let checked = checks_hold(&report);
        points.push(point);
        reports.push(report);
        if interrupted {
            break;
        }
        if let Err(e) = checked {
            failed = Some(e.context(format!("the run at {rate:.0}/s")));
            break;
        }
    }
    let first = &reports[0];
    let doc = json!({
        "sweep": points,
        "runs": reports.iter().map(bench::report_json).collect::<Vec<_>>(),
    });
    if json {
        println!("{doc}");
    } else {
        println!(
            "ordo bench --sweep: {}, open loop, {} validators, {} cores, {:.0} s measured per rate\n{}",
            first.workload,
            first.validators,
            first.cores,
            first.measured_s,
            bench::sweep::table(&points)
        );
    }
    if let Some(Some(path)) = &args.json {
        write_file(path, &serde_json::to_string_pretty(&doc)?)?;
        eprintln!("report written to {}", path.display());
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "ordo bench --sweep: {} on {} validators, {} cores, open loop",
            first.workload, first.validators, first.cores
        );
        write_file(path, &bench::sweep::svg(&title, &points))?;
        eprintln!("plot written to {}", path.display());
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if reports.iter().any(|r| r.interrupted) {
        bail!("interrupted: the sweep stopped at Ctrl-C");
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn faults(args: &FaultsArgs, json: bool) -> Result<()> {
    let mut cfg = if args.long {
        FaultsConfig::long()
    } else {
        FaultsConfig::short()
    };
    cfg.validators = args.validators;
    cfg.seed = args.seed;
    cfg.dir = args.dir.clone();
    cfg.port_base = args.port_base;
    if let Some(churn) = args.churn {
        cfg.churn = churn;
    }
    let report = faults::run(&cfg, &mut |m| eprintln!("{m}"))?;
    let doc = faults::report_json(&report);
    if json {
        println!("{doc}");
    } else {
        println!("{}", faults::report_text(&report));
    }
    if let Some(Some(path)) = &args.json {
        write_file(path, &serde_json::to_string_pretty(&doc)?)?;
        eprintln!("report written to {}", path.display());
    }
    if !report.passed() {
        bail!(
            "{} violations (seed {:#x} repeats the schedule)",
            report.checked.violations.len(),
            report.seed
        );
    }
    Ok(())
}

pub fn bench(args: &BenchArgs, json: bool) -> Result<()> {
    if let Some(rates) = &args.sweep {
        return sweep(args, &rates.0, json);
    }
    let cfg = config(args)?;
    let report = bench::run(&cfg, &mut |m| eprintln!("{m}"))?;
    let doc = bench::report_json(&report);
    if json {
        println!("{doc}");
    } else {
        println!("{}", report.text());
    }
    if let Some(Some(path)) = &args.json {
        write_file(path, &serde_json::to_string_pretty(&doc)?)?;
        eprintln!("report written to {}", path.display());
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "ordo bench: {} on {} validators ({} crashed), {} cores: {:.0} TPS, p50 {:.0} ms",
            report.workload,
            report.validators,
            report.faults,
            report.cores,
            report.committed_tps,
            report.latency_ms.p50
        );
        let marks = bench::plot::Marks {
            warmup_s: report.warmup_s,
            end_s: report.warmup_s + report.measured_s,
            fault_s: report.fault_at_s,
        };
        write_file(path, &bench::plot::svg(&title, &report.per_second, &marks))?;
        eprintln!("plot written to {}", path.display());
    }
    if report.interrupted {
        bail!("interrupted: the report covers the run up to Ctrl-C");
    }
    checks_hold(&report)
}

/// The run's own accounting and cross-validator checks, as an error when they failed.
fn checks_hold(report: &bench::BenchReport) -> Result<()> {
    let v = &report.verification;
    if !report.identity_holds || !v.nothing_lost || v.roots_agree == Some(false) {
        bail!(
            "the run's checks failed: identity {}, nothing lost {}, state roots {}",
            if report.identity_holds {
                "holds"
            } else {
                "broken"
            },
            v.nothing_lost,
            match v.roots_agree {
                Some(true) => "agree",
                Some(false) => "differ",
                None => "not compared",
            }
        );
    }
    Ok(())
}
