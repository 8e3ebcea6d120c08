//! `ordo bench --local` end to end: a temporary 4-validator testnet, a short open-loop run,
//! and the JSON report's accounting; a burst above capacity; ordering-only payloads; a
//! crashed validator. The runs
//! share two cores, so they take turns.
//!
//! Needs the `ordo` binary next to `ordo-testnet` (`cargo test --workspace` builds it;
//! else `cargo build -p ordo-cli --bin ordo`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

mod common;
use common::tool;

/// One benchmark at a time: each brings up its own validators.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `ordo bench --local` with `args` plus a report file and a testnet folder in a
/// temporary directory; returns the output and the report.
fn bench(args: &[&str]) -> (Output, Value, tempfile::TempDir) {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report.json");
    let plot = tmp.path().join("plot.svg");
    let dir = tmp.path().join("testnet");
    let output = Command::new(tool())
        .args(["bench", "--local", "--quiet"])
        .args(args)
        .args(["--json", report.to_str().unwrap()])
        .args(["--plot", plot.to_str().unwrap()])
        .args(["--dir", dir.to_str().unwrap()])
        .output()
        .expect("ordo-testnet runs");
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_validator_left(&dir);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
    let report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (output, report, tmp)
}

/// No process runs with a config under `dir`, and no pid file is left.
fn assert_no_validator_left(dir: &Path) {
    let needle = dir.to_str().unwrap().as_bytes();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        assert!(
            !cmdline.windows(needle.len()).any(|w| w == needle),
            "a validator of the run is still alive: {}",
            String::from_utf8_lossy(&cmdline)
        );
    }
    for i in 0..4 {
        assert!(!dir.join(format!("v{i}/ordo.pid")).exists());
    }
}

fn u(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {report:#}"))
}

/// The accounting identity, recomputed from the report's own numbers.
fn assert_accounts_for_everything(r: &Value) {
    let sent = u(r, "sent");
    assert_eq!(
        sent,
        u(r, "committed") + u(r, "rejected") + u(r, "expired") + u(r, "in_flight"),
        "{r:#}"
    );
    assert_eq!(r["identity_holds"], true);
    assert_eq!(u(r, "anomalies"), 0);
    let by_reason: u64 = r["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, u(r, "rejected"));
    let l = &r["latency_ms"];
    let (p50, p90, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p90"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{l}");
    assert!(u(r, "cores") >= 1);
    assert_eq!(
        r["verification"]["nothing_lost"], true,
        "{:#}",
        r["verification"]
    );
}

#[test]
fn a_short_transfer_run_accounts_for_every_transaction() {
    let (output, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--duration",
        "5s",
        "--warmup",
        "1s",
        "--rate",
        "2000",
        "--accounts",
        "1000",
    ]);
    assert_accounts_for_everything(&r);
    assert_eq!(r["workload"], "transfer");
    assert_eq!(u(&r, "validators"), 4);
    assert_eq!(u(&r, "live_validators"), 4);
    assert!(u(&r, "committed") > 0);
    assert!(r["committed_tps"].as_f64().unwrap() > 0.0);
    assert_eq!(u(&r, "offered"), 12_000);
    assert_eq!(r["verification"]["validators"].as_array().unwrap().len(), 4);
    assert_eq!(r["verification"]["roots_agree"], true);
    // Every committed transfer executed: nonces moved by as much (no gaps, no reordering).
    assert_eq!(u(&r, "nonces_advanced"), u(&r, "committed"));
    let stages = &r["stages"];
    assert!(stages["executed_tps"].as_f64().unwrap() > 0.0, "{stages}");
    let per_second: u64 = r["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["committed"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, u(&r, "committed"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("identity") && text.contains("holds"),
        "{text}"
    );
}

/// The contract workloads end to end: set-up deploys the example contracts (tokens, pairs,
/// collections) and funds and approves every account before the clock, through ordinary
/// transactions that must each succeed; then a mix of token transfers, swaps, mints and
/// native transfers commits, every validator agrees, and the sampled calls succeeded.
#[test]
fn a_short_defi_mix_run_sets_up_the_contracts_and_its_calls_succeed() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--workload",
        "defi-mix",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--rate",
        "300",
        "--accounts",
        "200",
    ]);
    assert_accounts_for_everything(&r);
    assert_eq!(r["workload"], "defi-mix");
    assert!(u(&r, "committed") > 0);
    assert_eq!(r["verification"]["roots_agree"], true);
    assert_eq!(u(&r, "nonces_advanced"), u(&r, "committed"));
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let sampled = notes
        .iter()
        .find(|n| n.starts_with("contract calls:"))
        .unwrap_or_else(|| panic!("no sample of the calls' outcomes: {notes:?}"));
    assert!(!sampled.contains("only"), "{sampled}");
}

/// Ethereum's transactions: the ERC-20 workload signed as EIP-1559 transactions by
/// secp256k1 keys (set-up included), each validator recovering every sender; everything
/// commits and every validator agrees. A native-only workload is refused in that format.
#[test]
fn a_short_erc20_run_in_ethereum_transactions_commits_and_agrees() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--workload",
        "erc20",
        "--tx-format",
        "eth",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--rate",
        "300",
        "--accounts",
        "200",
    ]);
    assert_accounts_for_everything(&r);
    assert_eq!(r["tx_format"], "eth");
    assert!(u(&r, "committed") > 0);
    assert_eq!(r["verification"]["roots_agree"], true);
    assert_eq!(u(&r, "nonces_advanced"), u(&r, "committed"));
    let refused = Command::new(tool())
        .args([
            "bench",
            "--local",
            "--workload",
            "swap",
            "--tx-format",
            "eth",
        ])
        .output()
        .expect("ordo-testnet runs");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--tx-format eth"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Blocks respect the block gas limit: with a limit of 80 token transfers' gas (the
/// least the set-up's minting takes) and more than 80 transfers offered per block interval, the leaders fill each block only up to
/// the limit, so every committed transaction executes (none fails `BlockGasExhausted`,
/// which would leave its nonce, and its sender's later ones, unexecuted). Before blocks
/// were bounded by gas, 27% of the ERC-20 transfers of a 16-core run failed so.
#[test]
fn blocks_stay_within_the_block_gas_limit_so_every_committed_transfer_executes() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--workload",
        "erc20",
        "--block-gas-limit",
        "8000000",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--rate",
        "3000",
        "--accounts",
        "200",
    ]);
    assert_accounts_for_everything(&r);
    assert!(u(&r, "committed") > 0);
    assert_eq!(r["verification"]["roots_agree"], true);
    assert_eq!(
        u(&r, "nonces_advanced"),
        u(&r, "committed"),
        "committed transactions that did not execute: {}",
        r["notes"]
    );
}

/// Wide-area conditions on one machine: with a 100-ms round trip injected between every
/// two validators, transfers still commit and every validator agrees, and none commits
/// sooner than two round trips (a batch's acknowledgements, then consensus's own).
#[test]
fn an_injected_round_trip_time_slows_commits_and_validators_still_agree() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--workload",
        "transfer",
        "--rtt",
        "100ms",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--rate",
        "200",
        "--accounts",
        "200",
    ]);
    assert_accounts_for_everything(&r);
    assert!(u(&r, "committed") > 0);
    assert_eq!(r["verification"]["roots_agree"], true);
    let p50 = r["latency_ms"]["p50"].as_f64().expect("a p50 latency");
    assert!(p50 >= 200.0, "p50 {p50} ms under a 100-ms round trip");
    let notes = r["notes"].to_string();
    assert!(notes.contains("100 ms round trip"), "{notes}");
}

/// Overload: a burst far above what two shared cores order (tens of thousands a second,
/// while the validators order a few thousand here). Admission control refuses the excess
/// `busy` at ingress, consensus keeps committing, and everything admitted commits, with
/// no view change: without admission control, 60-s runs at twice capacity timed out 76
/// and 89 times. (A lone round was still lost in 3 of 18 such runs on 5 December; none in
/// 40 on 7 December, after c5dc5f1 took a parked proposal up when its parent arrives as
/// a proposal.)
#[test]
fn a_burst_above_capacity_is_refused_busy_and_what_is_admitted_commits() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--rate",
        "40000",
        "--accounts",
        "2000",
    ]);
    assert_accounts_for_everything(&r);
    assert!(u(&r, "busy_retries") > 0, "nothing was refused busy: {r:#}");
    assert!(u(&r, "committed") > 0);
    assert_eq!(u(&r, "rejected"), 0, "{:#}", r["rejected_by_reason"]);
    // Items in requests that got no answer under the burst may never have been admitted;
    // whatever a validator answered as accepted must commit.
    assert_eq!(
        u(&r, "in_flight_admitted"),
        0,
        "something admitted did not commit: in flight {}, unanswered {}, notes {:#}",
        u(&r, "in_flight"),
        u(&r, "unanswered"),
        r["notes"]
    );
    let timeouts = r["stages"]["view_change_timeouts"]
        .as_u64()
        .expect("the validators export their timeouts");
    assert_eq!(timeouts, 0, "{:#}", r["stages"]);
}

#[test]
fn ordering_only_orders_opaque_payloads() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--workload",
        "opaque",
        "--tx-size",
        "512",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--rate",
        "3000",
    ]);
    assert_accounts_for_everything(&r);
    assert_eq!(r["ordering_only"], true);
    assert_eq!(u(&r, "tx_size"), 512);
    assert!(u(&r, "committed") > 0);
    assert!(r["nonces_advanced"].is_null());
}

/// `--sweep`: one open-loop run per rate, in order, on the same testnet (kept in --dir
/// between runs), each accounted for like a single run; the table and the curve follow.
#[test]
fn a_sweep_runs_each_rate_in_turn_and_reports_the_curve() {
    let (output, doc, _tmp) = bench(&[
        "--validators",
        "1",
        "--workload",
        "opaque",
        "--duration",
        "2s",
        "--warmup",
        "1s",
        "--sweep",
        "1000,3000",
    ]);
    let points = doc["sweep"].as_array().expect("a sweep array");
    let runs = doc["runs"].as_array().expect("a runs array");
    assert_eq!(points.len(), 2, "{doc:#}");
    assert_eq!(runs.len(), 2);
    for (point, (run, rate)) in points.iter().zip(runs.iter().zip([1000.0, 3000.0])) {
        assert_eq!(point["offered_tps"].as_f64(), Some(rate));
        assert_eq!(run["rate"].as_f64(), Some(rate));
        assert_eq!(run["load"], "open");
        assert_accounts_for_everything(run);
        assert!(u(run, "committed") > 0, "{run:#}");
        assert_eq!(point["committed_tps"], run["committed_tps"]);
        assert_eq!(point["p99_ms"], run["latency_ms"]["p99"]);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("offered/s"), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("1000 ") || l.trim_start().starts_with("3000 "))
            .count(),
        2,
        "{text}"
    );
}

#[test]
fn a_crashed_validator_is_left_out_and_the_rest_commit() {
    let (_, r, _tmp) = bench(&[
        "--validators",
        "4",
        "--faults",
        "1",
        "--duration",
        "4s",
        "--warmup",
        "1s",
        "--rate",
        "1000",
        "--accounts",
        "500",
    ]);
    assert_accounts_for_everything(&r);
    assert_eq!(u(&r, "faults"), 1);
    assert_eq!(u(&r, "live_validators"), 3);
    assert_eq!(r["verification"]["validators"].as_array().unwrap().len(), 3);
    assert!(u(&r, "committed") > 0);
}

#[test]
fn ctrl_c_stops_the_run_and_its_validators() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("testnet");
    let mut child = Command::new(tool())
        .args([
            "bench",
            "--local",
            "--validators",
            "3",
            "--duration",
            "60s",
            "--rate",
            "500",
        ])
        .args(["--accounts", "300", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("committed") && tx.send(line).is_err() {
                break;
            }
        }
    });
    // Under load: a live line with commits in it.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no live line within 45 s");
        let committed: u64 = line
            .split("committed")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if committed > 0 {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the bench did not stop within 30 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_no_validator_left(&dir);
}

/// Stops the testnet kept in its folder when dropped (the test's end, or a failed assert).
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(tool())
            .args(["testnet", "down", "--dir", self.0.to_str().unwrap()])
            .output();
    }
}

/// A run longer than the validators' retention window: the heights they prune meanwhile
/// answer `pruned` and are not taken for lost; what the tracker saw committed there is
/// counted apart, and everything still kept is checked as usual.
#[test]
fn a_run_longer_than_the_retention_window_checks_what_is_kept() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("testnet");
    let port_base = ordo_testnet::ports::find_free_base(4).unwrap().to_string();
    let up = || {
        let out = Command::new(tool())
            .args([
                "testnet",
                "up",
                "--dir",
                dir.to_str().unwrap(),
                "--accounts",
                "500",
            ])
            .args(["--port-base", &port_base])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Made and started once, stopped to change the configs, started again.
    up();
    drop(Down(dir.clone()));
    // The smallest window (512 blocks), snapshots every 100, and short empty rounds with
    // no fsync per block, so that the chain passes the window within seconds.
    for v in 0..4 {
        let path = dir.join(format!("v{v}")).join("config.toml");
        let mut config = ordo_node::config::NodeConfig::load(&path).unwrap();
        config.storage.retain_blocks = 512;
        config.storage.snapshot_interval_blocks = 100;
        config.storage.sync_commits = false;
        config.consensus.max_batch_delay_ms = 2;
        config.mempool.max_batch_delay_ms = 2;
        config.write(&path).unwrap();
    }
    up();
    let _down = Down(dir.clone());
    let report = tmp.path().join("report.json");
    let out = Command::new(tool())
        .args(["bench", "--quiet", "--dir", dir.to_str().unwrap()])
        .args(["--rate", "300", "--duration", "20s", "--warmup", "1s"])
        .args(["--accounts", "500", "--json", report.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let v = &r["verification"];
    let checks = v["validators"].as_array().unwrap();
    let pruned: u64 = checks
        .iter()
        .map(|c| c["pruned"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(
        pruned > 0,
        "no validator pruned a height of the run: the window was not passed\n{text}"
    );
    assert_eq!(v["nothing_lost"], true, "{text}");
    for c in checks {
        assert_eq!(c["missing"], 0, "{c}");
        assert!(c["found"].as_u64().unwrap() > 0, "{c}");
    }
    assert!(text.contains("were not checked there"), "{text}");
}
