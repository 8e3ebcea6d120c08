//! `ordo bench`: an honest end-to-end load test.
//!
//! Order of a run: bring the target up (or find it), read every sender's nonce, build and
//! sign every transaction, start the clock, send (open or closed loop) while a tracker
//! walks one validator's blocks and times each transaction's first appearance, stop
//! sending at the end, drain, then account for every item (`sent = committed + rejected +
//! expired + in_flight`), check that every committed item is on every live validator and
//! that they agree on the state root, and read the per-stage counters.

pub mod config;
pub mod contracts;
pub(crate) mod metrics;
pub mod plot;
pub mod report;
mod sender;
mod shared;
pub mod sweep;
mod tracker;
mod verify;
pub mod workload;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ordo_cli::localnet::LocalnetSpec;
use ordo_types::now_ms;
use serde_json::Value;

pub use config::{parse_duration, BenchConfig, Faults, Load, Skew, Target, Workload};
pub use report::BenchReport;

use self::metrics::Snapshot;
use self::report::{Latency, PerSecond, Stages};
use self::shared::{outcome, Shared};
use crate::client;
use crate::error::{Result, TestnetError};
use crate::interrupt;
use crate::ports;
use crate::testnet::{self, Testnet, UpOptions};

/// Most items a closed-loop run signs up front unless `--max-txs` says otherwise.
const CLOSED_LOOP_CAP: u64 = 3_000_000;
/// The same for opaque payloads, which cost no signing (about 650 bytes each in memory).
const CLOSED_LOOP_CAP_OPAQUE: u64 = 6_000_000;

/// A testnet the benchmark started: stopped, and its temporary folder removed, on drop
/// (normal end, error, Ctrl-C or panic alike).
struct LocalTestnet {
    testnet: Testnet,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for LocalTestnet {
    fn drop(&mut self) {
        let stopped = self.testnet.down(Duration::from_secs(10));
        let killed = stopped.iter().filter(|s| s.outcome == "killed").count();
        if killed > 0 {
            tracing::warn!(killed, "validators did not stop on SIGTERM and were killed");
        }
    }
}

/// The validators a run talks to.
struct Setup {
    /// RPC address of each validator the run starts with, by target index.
    targets: Vec<SocketAddr>,
    /// Each target's validator index in its testnet.
    indices: Vec<usize>,
    validators: usize,
    chain_id: u64,
    ordering_only: bool,
    pools: u32,
    collections: u32,
    local: Option<LocalTestnet>,
    notes: Vec<String>,
}

fn setup(cfg: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<Setup> {
    let opaque = cfg.workload == Workload::Opaque;
    let defaults = LocalnetSpec::default();
    match &cfg.target {
        Target::Local {
            validators,
            dir,
            port_base,
            block_gas_limit,
            rtt,
        } => {
            let (dir, temp) = match dir {
                Some(d) => (d.clone(), None),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("ordo-bench-")
                        .tempdir()
                        .map_err(|e| TestnetError::io("create a temporary folder", e))?;
                    (t.path().join("testnet"), Some(t))
                }
            };
            let fresh = !testnet::exists(&dir);
            let port_base = match (fresh, port_base) {
                (true, None) => Some(ports::find_free_base(*validators)?),
                (_, p) => *p,
            };
            let offline = if cfg.faults.at.is_none() {
                cfg.faults.count
            } else {
                0
            };
            let opts = UpOptions {
                validators: Some(*validators),
                port_base,
                accounts: fresh.then_some(cfg.accounts),
                ordering_only: opaque,
                block_gas_limit: *block_gas_limit,
                fault_injection: rtt.is_some(),
                offline,
                ready_timeout: Duration::from_secs(120),
                ..UpOptions::new(dir)
            };
            let (net, report) = testnet::up(&opts, progress)?;
            let online = validators - offline;
            progress(&format!(
                "{online} of {validators} validators ready in {}",
                report.dir.display()
            ));
            let targets: Vec<SocketAddr> = (0..online).map(|i| net.rpc(i)).collect();
            let mut notes = Vec::new();
            if let Some(rtt) = rtt {
                for addr in &targets {
                    client::set_link_delay(*addr, *rtt / 2, Duration::from_secs(5))?;
                }
                notes.push(format!(
                    "injected link delay: {} ms round trip between every two validators \
                     (each delays what it sends by half)",
                    rtt.as_millis()
                ));
            }
            wait_committing(&targets, progress);
            let genesis = &net.net.genesis;
            let setup = Setup {
                targets,
                indices: (0..online).collect(),
                validators: *validators,
                chain_id: genesis.chain_id,
                ordering_only: genesis.ordering_only,
                pools: genesis.pools.len() as u32,
                collections: genesis.collections.len() as u32,
                local: None,
                notes,
            };
            Ok(Setup {
                local: Some(LocalTestnet {
                    testnet: net,
                    _temp: temp,
                }),
                ..setup
            })
        }
        Target::Testnet { dir } => {
            let net = Testnet::open(dir)?;
            let running: Vec<usize> = (0..net.len())
                .filter(|&i| net.running_pid(i).is_some())
                .collect();
            if running.is_empty() {
                return Err(TestnetError::Usage(format!(
                    "no validator of the testnet in {} is running: start it with `ordo testnet up`, or use --local",
                    net.dir().display()
                )));
            }
            let mut notes = Vec::new();
            if running.len() < net.len() {
                notes.push(format!(
                    "{} of {} validators of the testnet were running",
                    running.len(),
                    net.len()
                ));
            }
            let genesis = &net.net.genesis;
            Ok(Setup {
                targets: running.iter().map(|&i| net.rpc(i)).collect(),
                indices: running,
                validators: net.len(),
                chain_id: genesis.chain_id,
                ordering_only: genesis.ordering_only,
                pools: genesis.pools.len() as u32,
                collections: genesis.collections.len() as u32,
                local: None,
                notes,
            })
        }
        Target::Rpc(addrs) => {
            if addrs.is_empty() {
                return Err(TestnetError::Usage("give at least one --rpc".into()));
            }
            let status = client::status(addrs[0], Duration::from_secs(5))?;
            let chain_id = status["chain_id"]
                .as_u64()
                .ok_or_else(|| TestnetError::rpc(addrs[0], "status has no chain_id"))?;
            Ok(Setup {
                targets: addrs.clone(),
                indices: (0..addrs.len()).collect(),
                validators: addrs.len(),
                chain_id,
                ordering_only: status["ordering_only"].as_bool().unwrap_or(opaque),
                pools: defaults.pools,
                collections: defaults.collections,
                local: None,
                notes: Vec::new(),
            })
        }
    }
}

/// How long the clock waits at most for consensus to commit on every validator: a
/// restarted validator may first sit out a round's timeout (two seconds with the default
/// back-off) before it proposes again.
const COMMITTING_WAIT: Duration = Duration::from_secs(30);

/// Waits until every validator's committed height has moved since it was first read:
/// validators that answer but do not commit yet (a restart waiting out its last round)
/// would refuse the first offers `busy` and put the chain's start in the measurement.
/// Gives up after [`COMMITTING_WAIT`], saying so, and measures anyway.
fn wait_committing(targets: &[SocketAddr], progress: &mut dyn FnMut(&str)) {
    let height = |addr: SocketAddr| {
        client::status(addr, Duration::from_secs(2))
            .ok()
            .and_then(|s| s["height"].as_u64())
    };
    let first: Vec<Option<u64>> = targets.iter().map(|&a| height(a)).collect();
    let deadline = Instant::now() + COMMITTING_WAIT;
    loop {
        let behind: Vec<usize> = targets
            .iter()
            .zip(&first)
            .enumerate()
            .filter(|(_, (&addr, start))| {
                !matches!((height(addr), start), (Some(now), Some(s)) if now > *s)
            })
            .map(|(i, _)| i)
            .collect();
        if behind.is_empty() {
            return;
        }
        if Instant::now() >= deadline || crate::interrupt::requested() {
            progress(&format!(
                "validators {behind:?} did not commit a block within {} s; measuring anyway",
                COMMITTING_WAIT.as_secs()
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn snapshots(shared: &Shared) -> Vec<(usize, Snapshot)> {
    (0..shared.targets.len())
        .filter(|&t| !shared.dead[t].load(Ordering::SeqCst))
        .map(|t| (t, metrics::snapshot(shared.targets[t])))
        .collect()
}

fn live_line(shared: &Shared, last: &mut (Duration, u64)) -> String {
    let elapsed = shared.elapsed();
    let committed = shared.counters.committed_distinct.load(Ordering::Relaxed);
    let window = (elapsed - last.0).as_secs_f64().max(1e-3);
    let tps = (committed - last.1) as f64 / window;
    *last = (elapsed, committed);
    let second = elapsed.as_secs() as usize;
    let p50 = {
        let seconds = shared.seconds.lock();
        second
            .checked_sub(1)
            .and_then(|s| seconds.get(s))
            .filter(|s| !s.latency.is_empty())
            .map(|s| format!("{:.0} ms", s.latency.value_at_quantile(0.5) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "[{:>4}s] sent {:>9} | in flight {:>7} | committed {:>9} | {:>7.0} tx/s | p50 {p50}",
        elapsed.as_secs(),
        shared.counters.sent.load(Ordering::Relaxed),
        shared.in_flight(),
        committed,
        tps,
    )
}

/// Runs the benchmark; `progress` hears the set-up steps and the live lines.
pub fn run(cfg: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<BenchReport> {
    cfg.validate()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let setup = setup(cfg, progress)?;
    let opaque = cfg.workload == Workload::Opaque;
    if opaque && !setup.ordering_only {
        return Err(TestnetError::Usage(
            "--workload opaque needs an ordering-only network: use --local (which makes one) or `ordo testnet up --ordering-only`".into(),
        ));
    }
    if !opaque && setup.ordering_only {
        return Err(TestnetError::Usage(
            "this network is ordering-only: it takes only --workload opaque".into(),
        ));
    }
    let tracker_addr = setup.targets[0];
    for &addr in &setup.targets {
        client::status(addr, Duration::from_secs(5))?;
    }

    // Contract workloads deploy and fund before the nonces are read: set-up uses them.
    let contracts = contracts::set_up(
        &contracts::SetUpSpec {
            workload: cfg.workload,
            format: cfg.tx_format,
            chain_id: setup.chain_id,
            accounts: cfg.accounts,
            pools: setup.pools,
            collections: setup.collections,
        },
        tracker_addr,
        progress,
    )?
    .unwrap_or_default();
    let start_accounts = if opaque {
        Vec::new()
    } else {
        progress(&format!("reading the nonces of {} accounts", cfg.accounts));
        let accounts =
            verify::read_accounts(tracker_addr, setup.chain_id, cfg.accounts, cfg.tx_format)?;
        if let Some(i) = accounts.iter().position(|(balance, _)| *balance == 0) {
            return Err(TestnetError::Usage(format!(
                "bench account {i} has no funds on this chain: lower --accounts, or start a testnet with more (`ordo testnet up --reset --accounts {}`)",
                cfg.accounts
            )));
        }
        accounts
    };

    let run_time = cfg.run_time();
    let count = match cfg.load {
        Load::Open { rate } => (rate * run_time.as_secs_f64()).ceil() as u64,
        Load::Closed { max_in_flight } => cfg.max_txs.unwrap_or_else(|| {
            // Enough for a mean latency down to 60 ms (ordering only: 71 ms measured with
            // 6,500 in flight on 2 cores, where 80 ms ran out) or 140 ms (signed
            // transactions, whose signing up front takes time); a run that would outlast
            // its items says so in its notes.
            let (per_second, cap) = if opaque {
                (16, CLOSED_LOOP_CAP_OPAQUE)
            } else {
                (7, CLOSED_LOOP_CAP)
            };
            (max_in_flight * per_second * run_time.as_secs().max(1)).clamp(2 * max_in_flight, cap)
        }),
    }
    .max(1);
    // Signing takes about 25 µs per transaction per core; the transactions must stay
    // valid until well after the run, whenever signing ends.
    let signing_budget = Duration::from_micros(count * 60 / cores as u64 + 1_000_000);
    let expiry_ms = now_ms() + (signing_budget + run_time + cfg.drain + cfg.ttl).as_millis() as u64;
    progress(&format!(
        "{} {} items on {cores} cores before the clock starts",
        if opaque { "building" } else { "signing" },
        count
    ));
    let lanes = cfg
        .senders_per_validator
        .max(1)
        .saturating_mul(setup.targets.len())
        .min(u16::MAX as usize);
    let signing_started = Instant::now();
    let plan = workload::build(&workload::PlanSpec {
        chain_id: setup.chain_id,
        workload: cfg.workload,
        tx_format: cfg.tx_format,
        accounts: cfg.accounts,
        start_nonces: start_accounts.iter().map(|(_, n)| *n).collect(),
        skew: cfg.skew,
        compute_iterations: cfg.compute_iterations,
        tx_size: cfg.tx_size,
        pools: setup.pools,
        collections: setup.collections,
        count: count as usize,
        lanes,
        expiry_ms,
        seed: cfg.seed,
        contracts,
    });
    let signing_s = signing_started.elapsed().as_secs_f64();
    if interrupt::requested() {
        return Err(TestnetError::Interrupted);
    }

    let start_status = client::status(tracker_addr, Duration::from_secs(5))?;
    // Block transaction lists are served up to the executed height (the committed one
    // on ordering-only networks, where commit is the last stage).
    let start_height = start_status["executed_height"].as_u64().unwrap_or(0);
    let path = if opaque {
        "/v1/payloads/batch"
    } else {
        "/v1/transactions/batch"
    };
    let closed = matches!(cfg.load, Load::Closed { .. });
    let lane_items = plan.lanes;
    let mut shared = Shared::new(
        plan.items,
        setup.targets.clone(),
        lanes,
        (cfg.warmup, run_time),
    );
    progress(&format!(
        "signed in {signing_s:.1} s; sending for {:.0} s ({:.0} s warm-up) to {} validators",
        run_time.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        setup.targets.len()
    ));

    let mut notes = setup.notes.clone();
    let mut interrupted = false;
    let mut before: Option<(Instant, Vec<(usize, Snapshot)>)> = None;
    let mut after: Option<(Instant, Vec<(usize, Snapshot)>)> = None;
    let mut fault_s = None;
    let mut send_end = run_time;
    let mut tracker_behind = None;
    shared.start_now();
    let shared = &shared;
    let tracked = std::thread::scope(|s| {
        let tracker = s.spawn(move || tracker::track(shared, tracker_addr, start_height, closed));
        for (lane, items) in lane_items.iter().enumerate() {
            let load = cfg.load;
            let batch_size = cfg.batch_size;
            s.spawn(move || sender::Lane::new(shared, lane, items, load, batch_size, path).run());
        }
        let mut next_line = Duration::from_secs(1);
        let mut last = (Duration::ZERO, 0);
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let elapsed = shared.elapsed();
            if interrupt::requested() {
                interrupted = true;
                send_end = elapsed;
                break;
            }
            if before.is_none() && elapsed >= cfg.warmup {
                before = Some((Instant::now(), snapshots(shared)));
            }
            if let (Some(at), None) = (cfg.faults.at, fault_s) {
                if elapsed >= at {
                    fault_s = Some(elapsed.as_secs_f64());
                    let n = shared.targets.len();
                    for t in n - cfg.faults.count..n {
                        if let Some(local) = &setup.local {
                            local.testnet.crash(setup.indices[t]);
                        }
                        shared.crash_target(t);
                    }
                    progress(&format!(
                        "crashed {} validators (SIGKILL) at {:.1} s",
                        cfg.faults.count,
                        elapsed.as_secs_f64()
                    ));
                }
            }
            if elapsed >= next_line {
                if cfg.live {
                    progress(&live_line(shared, &mut last));
                }
                next_line += Duration::from_secs(1);
            }
            if elapsed >= run_time {
                break;
            }
        }
        shared.stop_sending.store(true, Ordering::SeqCst);
        after = Some((Instant::now(), snapshots(shared)));
        let drain_end = shared.elapsed() + cfg.drain;
        while !interrupt::requested() && shared.in_flight() > 0 && shared.elapsed() < drain_end {
            std::thread::sleep(Duration::from_millis(20));
            if shared.elapsed() >= next_line {
                if cfg.live {
                    progress(&format!("{} (draining)", live_line(shared, &mut last)));
                }
                next_line += Duration::from_secs(1);
            }
        }
        // Items may be committed but not yet read by the tracker: let it reach the height
        // the validator has executed by now, within a bound, so that they are not
        // counted as in flight.
        if !interrupt::requested() {
            if let Ok(status) = client::status(tracker_addr, Duration::from_secs(5)) {
                let executed = status["executed_height"].as_u64().unwrap_or(0);
                let catch_up_end = Instant::now() + Duration::from_secs(30);
                while !interrupt::requested()
                    && shared.tracked_height.load(Ordering::SeqCst) < executed
                    && Instant::now() < catch_up_end
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let tracked = shared.tracked_height.load(Ordering::SeqCst);
                tracker_behind = Some(executed.saturating_sub(tracked)).filter(|b| *b > 0);
            }
        }
        interrupted |= interrupt::requested();
        shared.stop_tracking.store(true, Ordering::SeqCst);
        tracker.join().unwrap_or_default()
    });
    if let Some(behind) = tracker_behind {
        notes.push(format!(
            "the tracker was still {behind} blocks behind validator 0 after the drain (block transaction lists are slow to serve): latencies are overstated and some committed items count as in flight"
        ));
    }
    if let Some(e) = &tracked.error {
        notes.push(format!("the tracker stopped early: {e}"));
    }

    // Account for every item.
    let last_block_ms = if tracked.last_height > start_height {
        client::block(tracker_addr, tracked.last_height, Duration::from_secs(5))
            .ok()
            .flatten()
            .and_then(|b| b["timestamp_ms"].as_u64())
    } else {
        None
    }
    .unwrap_or_else(now_ms);
    let (mut sent, mut rejected, mut expired, mut in_flight, mut anomalies) = (0, 0, 0, 0, 0);
    // Of the items in flight, those a validator answered as accepted: they must commit.
    // The others went out in requests that got no answer, and may never have been admitted.
    let mut in_flight_admitted = 0;
    let (from_us, to_us) = shared.window_us;
    let send_end_us = send_end.as_micros() as u64;
    let measured_to = to_us.min(send_end_us);
    let mut committed_in_window = 0u64;
    for i in 0..shared.items.len() {
        let o = shared.outcome[i].load(Ordering::SeqCst);
        let seen = shared.seen_us[i].load(Ordering::SeqCst);
        if seen > from_us + 1 && seen <= measured_to + 1 {
            committed_in_window += 1;
        }
        match o {
            outcome::UNSENT => anomalies += u64::from(seen != 0),
            outcome::REJECTED => {
                sent += 1;
                rejected += 1;
                anomalies += u64::from(seen != 0);
            }
            _ => {
                sent += 1;
                if seen == 0 {
                    if expiry_ms < last_block_ms {
                        expired += 1;
                    } else {
                        in_flight += 1;
                        in_flight_admitted += u64::from(o == outcome::ACCEPTED);
                    }
                }
            }
        }
    }
    let c = &shared.counters;
    let committed = c.committed.load(Ordering::SeqCst);
    anomalies += c.duplicates.load(Ordering::SeqCst);
    let identity_holds = sent == committed + rejected + expired + in_flight;
    let measured_s = (measured_to.saturating_sub(from_us)) as f64 / 1e6;
    let committed_tps = if measured_s > 0.0 {
        committed_in_window as f64 / measured_s
    } else {
        0.0
    };
    let offered = match cfg.load {
        Load::Open { rate } => {
            ((rate * send_end.as_secs_f64()).floor() as u64).min(shared.items.len() as u64)
        }
        Load::Closed { .. } => sent,
    };
    if c.exhausted_lanes.load(Ordering::SeqCst) > 0 && closed {
        notes.push(format!(
            "the {} signed transactions ran out before the end: raise --max-txs",
            shared.items.len()
        ));
    }

    let live: Vec<(usize, SocketAddr)> = (0..shared.targets.len())
        .filter(|&t| !shared.dead[t].load(Ordering::SeqCst))
        .map(|t| (setup.indices[t], shared.targets[t]))
        .collect();
    // After Ctrl-C the user wants out (and the local testnet stopped), not a long check.
    let checked: &[(usize, SocketAddr)] = if interrupted { &[] } else { &live };
    if !interrupted {
        progress("checking every validator's blocks");
    }
    let verification = verify::verify(
        shared,
        checked,
        start_height + 1,
        tracked.last_height,
        !opaque && !interrupted,
    );
    let nonces_advanced = if opaque || interrupted {
        None
    } else {
        match verify::read_accounts(tracker_addr, setup.chain_id, cfg.accounts, cfg.tx_format) {
            Ok(end) => Some(
                end.iter()
                    .zip(&start_accounts)
                    .map(|((_, after), (_, before))| after.saturating_sub(*before))
                    .sum(),
            ),
            Err(e) => {
                notes.push(format!("could not read the final nonces: {e}"));
                None
            }
        }
    };

    if cfg.workload.is_contract() && !interrupted {
        notes.push(contracts::sample_outcomes(shared, tracker_addr));
    }

    let stages = match (&before, &after) {
        (Some((t0, b)), Some((t1, a))) => {
            let seconds = t1.duration_since(*t0).as_secs_f64();
            Stages::from(
                b.iter()
                    .filter_map(|(t, snap_b)| {
                        let (_, snap_a) = a.iter().find(|(ta, _)| ta == t)?;
                        Some(metrics::stage(setup.indices[*t], snap_b, snap_a, seconds))
                    })
                    .collect(),
            )
        }
        _ => Stages::from(Vec::new()),
    };
    if stages.ordered_tps.is_none() {
        notes.push(format!(
            "the validators do not export {}: no ordered-rate figure",
            metrics::ORDERED
        ));
    }
    let resubmitted = c.resubmitted.load(Ordering::SeqCst);
    if resubmitted > 0 {
        notes.push(format!(
            "{resubmitted} transactions accepted by a crashed validator and not yet in a block were sent again to a live one"
        ));
    }
    let busy_retries = c.busy_retries.load(Ordering::SeqCst);
    if busy_retries > 0 {
        notes.push(format!(
            "{busy_retries} requests were answered busy and sent again (the validators pushed back)"
        ));
    }

    let per_second: Vec<PerSecond> = shared
        .seconds
        .lock()
        .iter()
        .enumerate()
        .map(|(t, s)| PerSecond {
            t: t as u64,
            committed: s.committed,
            p50_ms: (!s.latency.is_empty())
                .then(|| s.latency.value_at_quantile(0.5) as f64 / 1000.0),
            p99_ms: (!s.latency.is_empty())
                .then(|| s.latency.value_at_quantile(0.99) as f64 / 1000.0),
        })
        .collect();
    let latency = Latency::from_histogram(&shared.latency.lock());
    let report = BenchReport {
        workload: cfg.workload.name().into(),
        tx_format: cfg.tx_format.name().into(),
        tx_size: opaque.then_some(cfg.tx_size),
        ordering_only: setup.ordering_only,
        load: if closed { "closed" } else { "open" }.into(),
        rate: match cfg.load {
            Load::Open { rate } => Some(rate),
            _ => None,
        },
        max_in_flight: match cfg.load {
            Load::Closed { max_in_flight } => Some(max_in_flight),
            _ => None,
        },
        validators: setup.validators,
        live_validators: live.len(),
        faults: cfg.faults.count,
        fault_at_s: fault_s,
        accounts: if opaque { 0 } else { cfg.accounts },
        skew: match cfg.skew {
            Skew::Uniform => "uniform recipients".into(),
            Skew::Hot { accounts, share } => {
                format!(
                    "{:.0}% of transfers to {accounts} hot accounts",
                    share * 100.0
                )
            }
            Skew::Zipf { exponent } => format!("Zipf {exponent} recipients"),
        },
        cores,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        measured_s,
        signed: shared.items.len() as u64,
        signing_s,
        offered,
        offered_tps: match cfg.load {
            Load::Open { rate } => Some(rate),
            _ => None,
        },
        sent,
        committed,
        rejected,
        rejected_by_reason: shared.rejected_by.lock().clone(),
        expired,
        in_flight,
        in_flight_admitted,
        identity_holds,
        anomalies,
        unanswered: c.unanswered.load(Ordering::SeqCst),
        busy_retries,
        committed_tps,
        committed_in_window,
        latency_ms: latency,
        stages,
        verification,
        nonces_advanced,
        per_second,
        interrupted,
        notes,
    };
    drop(setup.local);
    if interrupted {
        progress("interrupted: the local testnet (if any) is stopped");
    }
    Ok(report)
}

/// The report as the `--json` document.
pub fn report_json(report: &BenchReport) -> Value {
    serde_json::to_value(report).expect("a report serialises")
}
