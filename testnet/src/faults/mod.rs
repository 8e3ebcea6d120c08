//! The process-level fault suite (`ordo faults`): a testnet of real validator processes on
//! 127.0.0.1, under a steady transfer load, while validators are killed and restarted,
//! frozen and thawed, wiped, partitioned 3|1 and 2|2, and flooded. Then it checks what a
//! BFT network promises: one chain (block hashes and state roots) on every validator at
//! every height; every transaction a validator accepted committed or expired, none applied
//! twice; every validator back near the head soon after the last fault; no panic.
//!
//! The schedule is drawn from a seed, so a failing run can be repeated. Faults never exceed
//! f = (n - 1) / 3 validators at once, except in the 2|2 split, which must stop commits
//! (and does no harm to safety).

mod check;
mod flood;
mod load;
mod rng;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

pub use check::Checked;
pub use flood::FloodReport;

use self::load::{Load, LoadSpec};
use self::rng::Rng;
use crate::client;
use crate::error::{Result, TestnetError};
use crate::ports;
use crate::testnet::{self, Testnet, UpOptions};

/// What a run does. [`FaultsConfig::short`] is the CI form, [`FaultsConfig::long`] the
/// long one.
#[derive(Debug, Clone)]
pub struct FaultsConfig {
    pub validators: usize,
    /// Keep the testnet here (it is still stopped at the end); a temporary folder if not.
    pub dir: Option<PathBuf>,
    pub port_base: Option<u16>,
    /// Accounts of the honest load, one transfer in flight each.
    pub senders: u32,
    pub seed: u64,
    /// Kill and restart up to f validators at random for this long ...
    pub churn: Duration,
    /// ... a round of kills every this often.
    pub churn_every: Duration,
    /// SIGSTOP/SIGCONT cycles, one validator each, frozen for `pause_for`.
    pub pauses: u32,
    pub pause_for: Duration,
    /// Kill one validator, delete its data, and let it rejoin.
    pub wipe: bool,
    /// How long each partition (3|1, then 2|2) is held; zero skips them.
    pub partition_for: Duration,
    /// How long the flood lasts; zero skips it.
    pub flood: Duration,
    /// Accounts the flood sends from (not the honest senders).
    pub flood_accounts: u32,
    /// Every validator must be within a few blocks of the head this soon after a fault.
    pub recover_within: Duration,
    /// A wiped validator must be back near the head this soon: it replays the chain from
    /// genesis (there is no state sync yet), so this grows with the chain.
    pub rejoin_within: Duration,
    /// Expiry of the honest transactions, from submission.
    pub tx_expiry: Duration,
}

impl FaultsConfig {
    /// The form CI runs: every kind of fault, briefly.
    pub fn short() -> FaultsConfig {
        FaultsConfig {
            validators: 4,
            dir: None,
            port_base: None,
            senders: 48,
            seed: 0x20261121,
            churn: Duration::from_secs(30),
            churn_every: Duration::from_secs(4),
            pauses: 1,
            pause_for: Duration::from_secs(4),
            wipe: true,
            partition_for: Duration::from_secs(12),
            flood: Duration::from_secs(10),
            flood_accounts: 2_000,
            recover_within: Duration::from_secs(30),
            rejoin_within: Duration::from_secs(120),
            tx_expiry: Duration::from_secs(10),
        }
    }

    /// The long form: two minutes and more of churn, longer partitions and flood.
    pub fn long() -> FaultsConfig {
        FaultsConfig {
            senders: 128,
            churn: Duration::from_secs(150),
            churn_every: Duration::from_secs(3),
            pauses: 3,
            pause_for: Duration::from_secs(6),
            partition_for: Duration::from_secs(20),
            flood: Duration::from_secs(30),
            flood_accounts: 8_000,
            ..FaultsConfig::short()
        }
    }

    fn validate(&self) -> Result<()> {
        if self.validators < 4 {
            return Err(TestnetError::Usage(
                "--validators must be at least 4: with fewer, f = 0 and no fault is tolerated"
                    .into(),
            ));
        }
        if self.senders < 2 {
            return Err(TestnetError::Usage("--senders must be at least 2".into()));
        }
        Ok(())
    }
}

/// One injected fault and how long the network took to get over it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    pub kind: &'static str,
    pub validators: Vec<usize>,
    /// Seconds since the load started.
    pub at_s: f64,
    /// Seconds from the end of the fault until every validator was near the head again
    /// (`None`: not measured for this event, e.g. inside a churn round).
    pub recovered_s: Option<f64>,
}

/// Honest throughput over one stretch of the run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRate {
    pub phase: &'static str,
    pub seconds: f64,
    pub committed_tps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultsReport {
    pub validators: usize,
    pub cores: usize,
    pub seed: u64,
    pub kills: u64,
    pub pauses: u64,
    pub wipes: u64,
    pub partitions: u64,
    pub faults: Vec<FaultEvent>,
    pub phases: Vec<PhaseRate>,
    /// Commits during the 2|2 split (after a grace for blocks already certified): must be 0.
    pub split_commits: Option<u64>,
    /// Blocks the majority committed during the 3|1 split: must be above 0.
    pub majority_commits: Option<u64>,
    pub flood: Option<FloodReport>,
    /// Transactions refused to the honest load, by code.
    pub honest_refused: std::collections::BTreeMap<String, u64>,
    /// Honest transactions still unsettled when the load was stopped.
    pub unsettled: u64,
    /// Seconds from the last fault until every validator was near the head.
    pub final_recovery_s: Option<f64>,
    pub checked: Checked,
    pub seconds: f64,
}

impl FaultsReport {
    pub fn passed(&self) -> bool {
        self.checked.violations.is_empty()
    }
}

/// Which validators the load and the flood may talk to right now.
#[derive(Clone)]
pub struct Live(Arc<Vec<AtomicBool>>);

impl Live {
    fn new(n: usize) -> Live {
        Live(Arc::new((0..n).map(|_| AtomicBool::new(true)).collect()))
    }

    pub fn is_live(&self, i: usize) -> bool {
        self.0.get(i).is_some_and(|b| b.load(Ordering::SeqCst))
    }

    fn set(&self, i: usize, live: bool) {
        self.0[i].store(live, Ordering::SeqCst);
    }
}

/// Each validator's mempool cap in the suite (200,000 by default): a flood that outpaces the
/// validators meets `mempool_full` within seconds instead of growing every pool to the
/// default cap. (In the runs so far on 2 cores the validators kept up, and refused the
/// flood's excess as duplicates, stale nonces and bad signatures.)
const FLOOD_MEMPOOL: usize = 16_384;

/// How close to the head counts as caught up, in blocks.
const NEAR_HEAD: u64 = 3;

/// Runs the suite; `progress` hears each step. The report's `checked.violations` lists
/// every broken promise; an error means the run itself could not go on.
pub fn run(cfg: &FaultsConfig, progress: &mut dyn FnMut(&str)) -> Result<FaultsReport> {
    cfg.validate()?;
    let temp;
    let dir = match &cfg.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("ordo-faults-")
                .tempdir()
                .map_err(|e| TestnetError::io("make a temporary folder", e))?;
            temp.path().to_path_buf()
        }
    };
    let port_base = match cfg.port_base {
        Some(p) => p,
        None => ports::find_free_base(cfg.validators)?,
    };
    let opts = UpOptions {
        validators: Some(cfg.validators),
        port_base: Some(port_base),
        reset: true,
        accounts: Some(cfg.senders + cfg.flood_accounts),
        fault_injection: true,
        configure: Some(|c| c.mempool.max_transactions = FLOOD_MEMPOOL),
        ready_timeout: Duration::from_secs(120),
        ..UpOptions::new(dir)
    };
    progress(&format!(
        "bringing up {} validators with fault injection on",
        cfg.validators
    ));
    let (net, _) = testnet::up(&opts, progress)?;
    let result = Suite::new(cfg, &net).run(progress);
    let stopped = net.down(Duration::from_secs(20));
    progress(&format!("stopped {} validators", stopped.len()));
    result
}

struct Suite<'a> {
    cfg: &'a FaultsConfig,
    net: &'a Testnet,
    rpcs: Vec<SocketAddr>,
    live: Live,
    rng: Rng,
    f: usize,
    report: FaultsReport,
    started: Instant,
}

impl<'a> Suite<'a> {
    fn new(cfg: &'a FaultsConfig, net: &'a Testnet) -> Suite<'a> {
        Suite {
            cfg,
            net,
            rpcs: (0..net.len()).map(|i| net.rpc(i)).collect(),
            live: Live::new(net.len()),
            rng: Rng::new(cfg.seed),
            f: (net.len() - 1) / 3,
            report: FaultsReport {
                validators: net.len(),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                seed: cfg.seed,
                kills: 0,
                pauses: 0,
                wipes: 0,
                partitions: 0,
                faults: Vec::new(),
                phases: Vec::new(),
                split_commits: None,
                majority_commits: None,
                flood: None,
                honest_refused: Default::default(),
                unsettled: 0,
                final_recovery_s: None,
                checked: Checked::default(),
                seconds: 0.0,
            },
            started: Instant::now(),
        }
    }

    fn run(mut self, progress: &mut dyn FnMut(&str)) -> Result<FaultsReport> {
        let cfg = self.cfg;
        let mut load = Load::start(
            LoadSpec {
                chain_id: self.net.chain_id(),
                senders: cfg.senders,
                expiry: cfg.tx_expiry,
                seed: cfg.seed,
            },
            self.rpcs.clone(),
            self.live.clone(),
        );
        self.started = load.started;
        let outcome = self.phases(&load, progress);
        progress("stopping the load; settling what is in flight");
        let unsettled = load.finish(cfg.tx_expiry + Duration::from_secs(20));
        outcome?;
        self.report.unsettled = unsettled;
        self.report.honest_refused = load.ledger.refused.lock().clone();
        self.rates(&load);

        progress("checking: one chain everywhere, every accepted transaction settled");
        let mut checked = Checked::default();
        let top = (0..self.net.len())
            .filter_map(|i| self.executed_height(i))
            .min()
            .unwrap_or(0);
        check::same_chain(&self.rpcs, top, &mut checked);
        let accepted = load.ledger.accepted.lock().clone();
        // Settle against a chain executed past every expiry, so nothing is still open.
        let latest_expiry = accepted.iter().map(|a| a.expiry_ms).max().unwrap_or(0);
        // The furthest validator: the chain is one, so any executed one answers the same.
        let furthest = (0..self.net.len())
            .max_by_key(|&i| self.executed_height(i).unwrap_or(0))
            .unwrap_or(0);
        self.wait_until(Duration::from_secs(60), |s| {
            load::executed_timestamp_ms(s.rpcs[furthest]).is_ok_and(|t| t > latest_expiry)
        });
        check::settled(
            self.rpcs[furthest],
            self.net.chain_id(),
            &accepted,
            &mut checked,
        )?;
        check::panics(self.net, &mut checked);
        if unsettled > 0 {
            checked.violations.push(format!(
                "{unsettled} honest transactions were neither committed nor expired {} s after the load stopped",
                (cfg.tx_expiry + Duration::from_secs(20)).as_secs()
            ));
        }
        if let Some(c) = self.report.split_commits.filter(|c| *c > 0) {
            checked
                .violations
                .push(format!("{c} blocks committed during the 2|2 split"));
        }
        if self.report.majority_commits == Some(0) {
            checked
                .violations
                .push("the 3 validators of the 3|1 split committed nothing".into());
        }
        match self.report.final_recovery_s {
            Some(s) if s <= cfg.recover_within.as_secs_f64() => {}
            other => checked.violations.push(format!(
                "not every validator was near the head within {} s of the last fault ({})",
                cfg.recover_within.as_secs(),
                other.map_or("never".to_string(), |s| format!("{s:.1} s"))
            )),
        }
        for e in &self.report.faults {
            let bound = if e.kind == "wipe" {
                cfg.rejoin_within
            } else {
                cfg.recover_within
            };
            if let Some(r) = e.recovered_s.filter(|r| *r > bound.as_secs_f64()) {
                checked.violations.push(format!(
                    "after {} of {:?}, recovery took {r:.1} s",
                    e.kind, e.validators
                ));
            }
        }
        self.report.checked = checked;
        self.report.seconds = self.started.elapsed().as_secs_f64();
        Ok(self.report)
    }

    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn phases(&mut self, load: &Load, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let cfg = self.cfg;
        progress(&format!(
            "load: {} senders; waiting for commits",
            cfg.senders
        ));
        let flowing = self.wait_until(Duration::from_secs(60), |_| {
            load.ledger.committed_ok.load(Ordering::Relaxed) >= u64::from(cfg.senders)
        });
        if !flowing {
            return Err(TestnetError::Faults(
                "the load did not get going within 60 s before any fault".into(),
            ));
        }
        self.mark("warm-up");
        if !cfg.churn.is_zero() {
            self.churn(progress)?;
            self.mark("churn");
        }
        for _ in 0..cfg.pauses {
            self.pause(progress)?;
        }
        if cfg.pauses > 0 {
            self.mark("pause");
        }
        if cfg.wipe {
            self.wipe(progress)?;
            self.mark("wipe");
        }
        if !cfg.partition_for.is_zero() {
            self.minority_partition(progress)?;
            self.mark("partition 3|1");
            self.split_partition(progress)?;
            self.mark("partition 2|2");
        }
        if !cfg.flood.is_zero() {
            self.flood(load, progress);
            self.mark("flood");
        }
        let last_fault = Instant::now();
        let recovered = self.wait_caught_up(cfg.recover_within * 2);
        self.report.final_recovery_s = recovered.then(|| last_fault.elapsed().as_secs_f64());
        Ok(())
    }

    /// Closes the current phase at this instant (rates are computed at the end).
    fn mark(&mut self, phase: &'static str) {
        self.report.phases.push(PhaseRate {
            phase,
            seconds: self.at(),
            committed_tps: 0.0,
        });
    }

    /// Turns the phase end marks into honest committed tx/s per phase.
    fn rates(&mut self, load: &Load) {
        let commits = load.ledger.commits_at_ms.lock().clone();
        let mut from = 0.0;
        for p in &mut self.report.phases {
            let to = p.seconds;
            let n = commits
                .iter()
                .filter(|&&ms| (ms as f64 / 1000.0) >= from && (ms as f64 / 1000.0) < to)
                .count();
            p.committed_tps = n as f64 / (to - from).max(1e-9);
            p.seconds = to - from;
            from = to;
        }
    }

    fn churn(&mut self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let cfg = self.cfg;
        progress(&format!(
            "churn: killing and restarting up to {} validators every {} s for {} s",
            self.f,
            cfg.churn_every.as_secs(),
            cfg.churn.as_secs()
        ));
        let end = Instant::now() + cfg.churn;
        while Instant::now() < end {
            let k = 1 + self.rng.below(self.f as u64) as usize;
            let victims = self.rng.sample(self.net.len(), k);
            let at = self.at();
            for &v in &victims {
                self.live.set(v, false);
                self.net.crash(v);
                self.report.kills += 1;
            }
            // A fault's length, drawn from the schedule: not a wait for anything.
            std::thread::sleep(self.rng.millis(300, 2_000));
            for &v in &victims {
                self.restart(v)?;
            }
            self.fault("kill", victims, at);
            std::thread::sleep(cfg.churn_every);
        }
        self.recover("churn", progress)
    }

    fn restart(&mut self, v: usize) -> Result<()> {
        self.net.start(v)?;
        let rpc = self.rpcs[v];
        // Live for the load once it answers; the wait is bounded and failure is reported.
        let up = self.wait_until(Duration::from_secs(30), |_| {
            client::status(rpc, Duration::from_secs(1)).is_ok()
        });
        if !up {
            return Err(TestnetError::Faults(format!(
                "validator {v} did not answer within 30 s of its restart; see {}",
                self.net.log_file(v).display()
            )));
        }
        self.live.set(v, true);
        Ok(())
    }

    /// Records a fault that began `at` seconds into the run; [`Suite::recover`] fills in
    /// how long the network took to get over it.
    fn fault(&mut self, kind: &'static str, validators: Vec<usize>, at: f64) {
        self.report.faults.push(FaultEvent {
            kind,
            validators,
            at_s: at,
            recovered_s: None,
        });
    }

    /// Waits until every validator is near the head, records how long it took for the
    /// last fault event.
    fn recover(&mut self, what: &str, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let since = Instant::now();
        let bound = self.cfg.recover_within.max(self.cfg.rejoin_within);
        let ok = self.wait_caught_up(bound + self.cfg.recover_within);
        let took = since.elapsed().as_secs_f64();
        if let Some(e) = self.report.faults.last_mut() {
            e.recovered_s = Some(if ok { took } else { f64::INFINITY });
        }
        progress(&format!(
            "{what}: {} in {took:.1} s",
            if ok {
                "every validator near the head"
            } else {
                "NOT recovered"
            }
        ));
        Ok(())
    }

    fn pause(&mut self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let v = self.rng.below(self.net.len() as u64) as usize;
        progress(&format!(
            "pause: freezing validator {v} for {} s",
            self.cfg.pause_for.as_secs()
        ));
        let at = self.at();
        self.live.set(v, false);
        self.net.pause(v, true);
        std::thread::sleep(self.cfg.pause_for);
        self.net.pause(v, false);
        self.live.set(v, true);
        self.report.pauses += 1;
        self.fault("pause", vec![v], at);
        self.recover("pause", progress)
    }

    fn wipe(&mut self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let v = self.rng.below(self.net.len() as u64) as usize;
        progress(&format!(
            "wipe: killing validator {v}, deleting its data, restarting it"
        ));
        let at = self.at();
        self.live.set(v, false);
        self.net.crash(v);
        self.net.wipe_data(v)?;
        self.restart(v)?;
        self.report.wipes += 1;
        self.fault("wipe", vec![v], at);
        self.recover("wipe", progress)
    }

    /// Cuts the validators into `groups`: each drops all traffic from outside its group.
    fn partition(&self, groups: &[Vec<usize>]) -> Result<()> {
        for g in groups {
            let outside: Vec<usize> = (0..self.net.len()).filter(|i| !g.contains(i)).collect();
            for &v in g {
                client::set_partition(self.rpcs[v], &outside, Duration::from_secs(5))?;
            }
        }
        Ok(())
    }

    fn heal(&self) -> Result<()> {
        for &rpc in &self.rpcs {
            client::set_partition(rpc, &[], Duration::from_secs(5))?;
        }
        Ok(())
    }

    fn minority_partition(&mut self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let alone = self.rng.below(self.net.len() as u64) as usize;
        let majority: Vec<usize> = (0..self.net.len()).filter(|&i| i != alone).collect();
        progress(&format!(
            "partition 3|1: validator {alone} cut off for {} s",
            self.cfg.partition_for.as_secs()
        ));
        let at = self.at();
        let before = self.max_height(&majority);
        self.partition(&[majority.clone(), vec![alone]])?;
        // Clients of the cut-off validator would wait for the heal; the suite measures what
        // the majority commits, so the load sends to the majority only.
        self.live.set(alone, false);
        std::thread::sleep(self.cfg.partition_for);
        let after = self.max_height(&majority);
        self.heal()?;
        self.live.set(alone, true);
        self.report.partitions += 1;
        self.report.majority_commits = Some(after.saturating_sub(before));
        progress(&format!(
            "partition 3|1: the majority committed {} blocks (height {before} to {after})",
            after.saturating_sub(before)
        ));
        self.fault("partition 3|1", vec![alone], at);
        self.recover("partition 3|1 healed", progress)
    }

    fn split_partition(&mut self, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let n = self.net.len();
        let mut order = self.rng.sample(n, n);
        let right = order.split_off(n / 2);
        let left = order;
        progress(&format!(
            "partition 2|2: {left:?} | {right:?} for {} s",
            self.cfg.partition_for.as_secs()
        ));
        let at = self.at();
        let all: Vec<usize> = (0..n).collect();
        self.partition(&[left.clone(), right.clone()])?;
        // Blocks certified before the split may still commit where their QC already is;
        // after a few base timeouts nothing can.
        std::thread::sleep(Duration::from_secs(3).min(self.cfg.partition_for / 2));
        let frozen = self.max_height(&all);
        std::thread::sleep(
            self.cfg.partition_for - Duration::from_secs(3).min(self.cfg.partition_for / 2),
        );
        let during = self.max_height(&all);
        self.heal()?;
        let healed = Instant::now();
        self.report.partitions += 1;
        self.report.split_commits = Some(during.saturating_sub(frozen));
        let resumed = self.wait_until(self.cfg.recover_within * 2, |s| s.max_height(&all) > during);
        progress(&format!(
            "partition 2|2: {} blocks committed while split; commits resumed {} after healing",
            during.saturating_sub(frozen),
            if resumed {
                format!("{:.1} s", healed.elapsed().as_secs_f64())
            } else {
                "NEVER".into()
            }
        ));
        let mut both = left;
        both.extend(right);
        self.fault("partition 2|2", both, at);
        self.recover("partition 2|2 healed", progress)
    }

    fn flood(&mut self, load: &Load, progress: &mut dyn FnMut(&str)) {
        let cfg = self.cfg;
        // The honest rate with no fault at all, as the flood's yardstick.
        let quiet = Duration::from_secs(5);
        let ok_quiet = load.ledger.committed_ok.load(Ordering::Relaxed);
        std::thread::sleep(quiet);
        let honest_before = (load.ledger.committed_ok.load(Ordering::Relaxed) - ok_quiet) as f64
            / quiet.as_secs_f64();
        self.mark("quiet");
        progress(&format!(
            "flood: {} accounts submitting as fast as answered for {} s",
            cfg.flood_accounts,
            cfg.flood.as_secs()
        ));
        let pids: Vec<Option<i32>> = (0..self.net.len())
            .map(|i| self.net.running_pid(i))
            .collect();
        let ok_before = load.ledger.committed_ok.load(Ordering::Relaxed);
        let committed_before = self.committed_total();
        let mut report = flood::flood(
            self.net.chain_id(),
            cfg.senders..cfg.senders + cfg.flood_accounts,
            &self.rpcs,
            &self.live,
            &pids,
            cfg.flood,
            cfg.seed,
        );
        let ok_during = load.ledger.committed_ok.load(Ordering::Relaxed) - ok_before;
        report.honest_tps_before = honest_before;
        report.honest_tps_during = ok_during as f64 / report.seconds.max(1e-9);
        report.committed_tps = match (committed_before, self.committed_total()) {
            (Some(a), Some(b)) => (b - a).max(0.0) / report.seconds.max(1e-9),
            _ => 0.0,
        };
        if report.committed_tps > 0.0 {
            report.overload = report.offered_tps / report.committed_tps;
        }
        progress(&format!(
            "flood: offered {:.0} tx/s against {:.0} tx/s committed ({:.1}x); honest {:.1} tx/s during against {:.1} before; peak RSS {:?} MiB",
            report.offered_tps,
            report.committed_tps,
            report.overload,
            report.honest_tps_during,
            report.honest_tps_before,
            report
                .peak_rss_mib
                .iter()
                .map(|m| m.map(|m| m.round() as u64))
                .collect::<Vec<_>>()
        ));
        self.report.flood = Some(report);
    }

    /// Transactions validator 0 has committed since it started (flood and honest).
    fn committed_total(&self) -> Option<f64> {
        let text = client::metrics_text(self.rpcs[0], Duration::from_secs(2)).ok()?;
        crate::bench::metrics::sum(&text, "ordo_node_committed_transactions_total")
    }

    fn status(&self, i: usize) -> Option<Value> {
        client::status(self.rpcs[i], Duration::from_secs(2)).ok()
    }

    fn executed_height(&self, i: usize) -> Option<u64> {
        self.status(i)?["executed_height"].as_u64()
    }

    /// The highest committed height any of `among` reports. Retries for a few seconds when
    /// none answers (a busy validator may miss the 2-s timeout): a silent 0 would read as
    /// "nothing committed".
    fn max_height(&self, among: &[usize]) -> u64 {
        let mut best = None;
        self.wait_until(Duration::from_secs(10), |s| {
            best = among
                .iter()
                .filter_map(|&i| s.status(i)?["height"].as_u64())
                .max();
            best.is_some()
        });
        best.unwrap_or(0)
    }

    /// Every validator answers and has executed within [`NEAR_HEAD`] blocks of the highest
    /// committed height any of them reports.
    fn wait_caught_up(&self, within: Duration) -> bool {
        self.wait_until(within, |s| {
            let rows: Option<Vec<(u64, u64)>> = (0..s.net.len())
                .map(|i| {
                    let v = s.status(i)?;
                    Some((v["height"].as_u64()?, v["executed_height"].as_u64()?))
                })
                .collect();
            let Some(rows) = rows else { return false };
            let head = rows.iter().map(|r| r.0).max().unwrap_or(0);
            rows.iter().all(|r| r.1 + NEAR_HEAD >= head)
        })
    }

    fn wait_until(&self, within: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline || crate::interrupt::requested() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The report as one JSON object.
pub fn report_json(report: &FaultsReport) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

/// The report as text for a terminal.
pub fn report_text(r: &FaultsReport) -> String {
    let mut out = Vec::new();
    out.push(format!(
        "fault suite: {} validators, {} cores, seed {:#x}, {:.0} s",
        r.validators, r.cores, r.seed, r.seconds
    ));
    out.push(format!(
        "faults: {} kills, {} pauses, {} wipes, {} partitions",
        r.kills, r.pauses, r.wipes, r.partitions
    ));
    for e in r.faults.iter().filter(|e| e.recovered_s.is_some()) {
        out.push(format!(
            "  {:<14} {:?} at {:>6.1} s: recovered in {:.1} s",
            e.kind,
            e.validators,
            e.at_s,
            e.recovered_s.unwrap_or_default()
        ));
    }
    out.push("honest throughput by phase:".into());
    for p in &r.phases {
        out.push(format!(
            "  {:<14} {:>6.1} s  {:>8.1} tx/s",
            p.phase, p.seconds, p.committed_tps
        ));
    }
    if let Some(c) = r.majority_commits {
        out.push(format!("3|1 split: majority committed {c} blocks"));
    }
    if let Some(c) = r.split_commits {
        out.push(format!("2|2 split: {c} blocks committed while split"));
    }
    if let Some(f) = &r.flood {
        out.push(format!(
            "flood: offered {:.0} tx/s for {:.0} s ({} requests) against {:.0} tx/s committed ({:.1}x), {} accepted, refused {:?}; answers p50 {} ms p99 {} ms",
            f.offered_tps, f.seconds, f.requests, f.committed_tps, f.overload, f.accepted, f.refused, f.answer_ms_p50, f.answer_ms_p99
        ));
        out.push(format!(
            "flood: honest {:.1} tx/s during, {:.1} before; RSS MiB at start {:?}, peak {:?}",
            f.honest_tps_during,
            f.honest_tps_before,
            f.start_rss_mib
                .iter()
                .map(|m| m.map(|m| m.round() as u64))
                .collect::<Vec<_>>(),
            f.peak_rss_mib
                .iter()
                .map(|m| m.map(|m| m.round() as u64))
                .collect::<Vec<_>>()
        ));
    }
    let c = &r.checked;
    out.push(format!(
        "checked: {} heights on every validator; {} accepted transactions from {} senders: {} committed ok, {} committed failed, {} expired; refused to the honest load {:?}",
        c.heights, c.accepted, c.senders, c.committed_ok, c.committed_failed, c.expired, r.honest_refused
    ));
    if let Some(s) = r.final_recovery_s {
        out.push(format!(
            "every validator near the head {s:.1} s after the last fault"
        ));
    }
    if c.violations.is_empty() {
        out.push("0 violations".into());
    } else {
        out.push(format!("{} VIOLATIONS:", c.violations.len()));
        out.extend(c.violations.iter().map(|v| format!("  {v}")));
    }
    out.join("\n")
}
