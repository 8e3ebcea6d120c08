//! A local testnet on disk and its validator processes: `up` (generate if needed, check
//! ports, start what is not running, wait until ready), `status`, `down`.
//!
//! Invariants: a testnet folder is what `ordo_cli::localnet::generate` wrote plus, per
//! validator, `node.log` and, while it runs, `ordo.pid`; `up` never starts a second
//! process for a running validator; a failed `up` stops what it started itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use ordo_cli::dev_accounts::{dev_accounts, DevAccount};
use ordo_cli::localnet::{self, Localnet, LocalnetSpec, ValidatorPorts};
use serde::Serialize;
use serde_json::Value;

use crate::client;
use crate::error::{Result, TestnetError};
use crate::interrupt;
use crate::ports;
use crate::process::{self, Stopped};

/// Bench accounts funded in a new testnet's genesis unless told otherwise.
pub const DEFAULT_ACCOUNTS: u32 = 10_000;
/// Validators in a new testnet unless told otherwise.
pub const DEFAULT_VALIDATORS: usize = 4;

/// What `up` should do.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub dir: PathBuf,
    /// Size of a new testnet; for an existing one, must match it when given.
    pub validators: Option<usize>,
    pub port_base: Option<u16>,
    /// Stop and wipe an existing testnet first.
    pub reset: bool,
    /// Funded bench accounts of a new testnet; for an existing one, must match when given.
    pub accounts: Option<u32>,
    pub ordering_only: bool,
    /// A new testnet's block gas limit [default: the genesis default].
    pub block_gas_limit: Option<u64>,
    /// Serve the test-only partition endpoint (`rpc.fault_injection`) on a new testnet.
    pub fault_injection: bool,
    /// Applied to each validator's config of a new testnet (tests and the fault suite).
    pub configure: Option<fn(&mut ordo_node::NodeConfig)>,
    /// Leave the last `offline` validators stopped (crash faults for the benchmark).
    pub offline: usize,
    /// How long to wait for every validator to answer and see its peers.
    pub ready_timeout: Duration,
}

impl UpOptions {
    pub fn new(dir: PathBuf) -> Self {
        UpOptions {
            dir,
            validators: None,
            port_base: None,
            reset: false,
            accounts: None,
            ordering_only: false,
            block_gas_limit: None,
            fault_injection: false,
            configure: None,
            offline: 0,
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// One validator as `up` leaves it.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatorInfo {
    pub index: usize,
    pub peer_id: String,
    pub rpc: String,
    pub metrics: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub pid: Option<i32>,
    /// Started by this `up` (false: it was running already, or left offline).
    pub started: bool,
    pub running: bool,
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub dir: PathBuf,
    pub chain_id: u64,
    pub generated: bool,
    pub ordering_only: bool,
    pub dev_key: PathBuf,
    pub validators: Vec<ValidatorInfo>,
    /// The Ethereum JSON-RPC endpoint (validator 0's RPC address; every validator serves
    /// one at its own).
    pub json_rpc: String,
    /// The standard development accounts this chain's genesis funds (none on an
    /// ordering-only network, or on one generated before they were added).
    pub dev_accounts: Vec<DevAccount>,
}

/// One validator as `status` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatorStatus {
    pub index: usize,
    pub pid: Option<i32>,
    pub running: bool,
    pub rpc: String,
    pub height: Option<u64>,
    pub round: Option<u64>,
    pub executed_height: Option<u64>,
    pub state_root: Option<String>,
    pub peers: Option<u64>,
    /// Why a running validator's status could not be read.
    pub error: Option<String>,
}

/// What `down` did to one validator.
#[derive(Debug, Clone, Serialize)]
pub struct DownEntry {
    pub index: usize,
    pub pid: i32,
    /// `terminated` (clean exit after SIGTERM) or `killed` (SIGKILL after the grace period).
    pub outcome: &'static str,
}

/// A testnet folder.
#[derive(Debug, Clone)]
pub struct Testnet {
    pub net: Localnet,
}

/// Whether `dir` holds a generated testnet.
pub fn exists(dir: &Path) -> bool {
    dir.join("genesis.json").is_file()
}

impl Testnet {
    /// Opens the testnet in `dir`.
    pub fn open(dir: &Path) -> Result<Testnet> {
        if !exists(dir) {
            return Err(TestnetError::NoTestnet {
                dir: dir.to_path_buf(),
            });
        }
        let dir = dir
            .canonicalize()
            .map_err(|e| TestnetError::io(format!("open {}", dir.display()), e))?;
        Ok(Testnet {
            net: localnet::open(&dir)?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.net.dir
    }

    pub fn len(&self) -> usize {
        self.net.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.net.validators.is_empty()
    }

    pub fn chain_id(&self) -> u64 {
        self.net.genesis.chain_id
    }

    /// The development accounts genesis funds (none on ordering-only networks).
    pub fn dev_accounts(&self) -> Vec<DevAccount> {
        dev_accounts()
            .into_iter()
            .filter(|d| {
                self.net
                    .genesis
                    .accounts
                    .iter()
                    .any(|a| a.address == d.address)
            })
            .collect()
    }

    /// How many bench accounts genesis funds: accounts 0, 1, ... of [`localnet::bench_key`]
    /// while they are there.
    pub fn bench_account_count(&self) -> usize {
        let funded: std::collections::HashSet<_> = self
            .net
            .genesis
            .accounts
            .iter()
            .map(|a| a.address)
            .collect();
        (0u32..)
            .take_while(|&i| funded.contains(&localnet::bench_key(self.chain_id(), i).address()))
            .count()
    }

    pub fn rpc(&self, index: usize) -> SocketAddr {
        self.net.validators[index].rpc
    }

    pub fn pid_file(&self, index: usize) -> PathBuf {
        self.net.validators[index].dir.join("ordo.pid")
    }

    pub fn log_file(&self, index: usize) -> PathBuf {
        self.net.validators[index].log_path.clone()
    }

    pub fn check_index(&self, index: usize) -> Result<()> {
        if index < self.len() {
            Ok(())
        } else {
            Err(TestnetError::NoSuchValidator {
                index,
                count: self.len(),
            })
        }
    }

    /// Validator `index`'s process id, if it is running.
    pub fn running_pid(&self, index: usize) -> Option<i32> {
        process::running_pid(
            &self.pid_file(index),
            &self.net.validators[index].config_path,
        )
    }

    fn ports(&self, index: usize) -> ValidatorPorts {
        let v = &self.net.validators[index];
        let p2p = tcp_port(&v.config.network.listen.to_string()).unwrap_or(0);
        ValidatorPorts {
            p2p,
            rpc: v.rpc.port(),
            metrics: v.metrics.port(),
        }
    }

    /// Each validator's process and, for those running, its `/v1/status`.
    pub fn status(&self) -> Vec<ValidatorStatus> {
        (0..self.len())
            .map(|i| {
                let pid = self.running_pid(i);
                let mut s = ValidatorStatus {
                    index: i,
                    pid,
                    running: pid.is_some(),
                    rpc: client::rpc_url(self.rpc(i)),
                    height: None,
                    round: None,
                    executed_height: None,
                    state_root: None,
                    peers: None,
                    error: None,
                };
                if pid.is_some() {
                    match client::status(self.rpc(i), Duration::from_secs(3)) {
                        Ok(v) => {
                            s.height = v["height"].as_u64();
                            s.round = v["round"].as_u64();
                            s.executed_height = v["executed_height"].as_u64();
                            s.state_root = v["state_root"].as_str().map(str::to_string);
                            s.peers = v["peers"].as_u64();
                        }
                        Err(e) => s.error = Some(e.to_string()),
                    }
                }
                s
            })
            .collect()
    }

    /// Stops every running validator: SIGTERM, a wait of at most `grace`, then SIGKILL for
    /// the rest; removes the pid files.
    pub fn down(&self, grace: Duration) -> Vec<DownEntry> {
        let running: Vec<(usize, i32)> = (0..self.len())
            .filter_map(|i| self.running_pid(i).map(|pid| (i, pid)))
            .collect();
        let pids: Vec<i32> = running.iter().map(|(_, pid)| *pid).collect();
        let outcomes = process::stop(&pids, grace);
        for i in 0..self.len() {
            let _ = std::fs::remove_file(self.pid_file(i));
        }
        running
            .iter()
            .zip(outcomes)
            .map(|(&(index, pid), outcome)| DownEntry {
                index,
                pid,
                outcome: match outcome {
                    Stopped::Terminated => "terminated",
                    Stopped::Killed => "killed",
                },
            })
            .collect()
    }

    /// SIGKILLs validator `index` (a crash fault) and waits for it to be gone.
    pub fn crash(&self, index: usize) -> Option<i32> {
        let pid = self.running_pid(index)?;
        process::signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while process::is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(self.pid_file(index));
        Some(pid)
    }

    /// Starts validator `index` unless it is running, without waiting for it: a restarted
    /// validator catches up on its own. Returns its process id.
    pub fn start(&self, index: usize) -> Result<i32> {
        self.check_index(index)?;
        if let Some(pid) = self.running_pid(index) {
            return Ok(pid);
        }
        let v = &self.net.validators[index];
        let bin = process::validator_binary()?;
        let child =
            process::spawn_validator(&bin, &v.config_path, &v.log_path, &self.pid_file(index))?;
        Ok(child.id() as i32)
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) validator `index`: a process that stops
    /// answering without losing anything, as under a long GC pause or a suspended VM.
    pub fn pause(&self, index: usize, paused: bool) -> Option<i32> {
        let pid = self.running_pid(index)?;
        process::signal(pid, if paused { libc::SIGSTOP } else { libc::SIGCONT });
        Some(pid)
    }

    /// Deletes validator `index`'s chain data (blocks, state, safety data), keeping its
    /// keys and config, as when a disk is replaced. Refused while it runs.
    pub fn wipe_data(&self, index: usize) -> Result<()> {
        self.check_index(index)?;
        if self.running_pid(index).is_some() {
            return Err(TestnetError::Usage(format!(
                "validator {index} is running: stop it before wiping its data"
            )));
        }
        let data = &self.net.validators[index].config.data_dir;
        if data.exists() {
            std::fs::remove_dir_all(data)
                .map_err(|e| TestnetError::io(format!("remove {}", data.display()), e))?;
        }
        Ok(())
    }

    fn info(&self, index: usize, pid: Option<i32>, started: bool) -> ValidatorInfo {
        let v = &self.net.validators[index];
        ValidatorInfo {
            index,
            peer_id: v.peer_id.clone(),
            rpc: client::rpc_url(v.rpc),
            metrics: format!("http://{}/metrics", v.metrics),
            data_dir: v.config.data_dir.clone(),
            log: v.log_path.clone(),
            pid,
            started,
            running: pid.is_some(),
        }
    }
}

/// The TCP port of a multiaddress such as `/ip4/127.0.0.1/tcp/7100`.
fn tcp_port(multiaddr: &str) -> Option<u16> {
    let mut parts = multiaddr.split('/');
    parts.find(|p| *p == "tcp")?;
    parts.next()?.parse().ok()
}

/// Removes what `generate` and the processes wrote, and nothing else.
fn wipe(net: &Testnet) -> Result<()> {
    let dir = net.dir();
    for i in 0..net.len() {
        let vdir = dir.join(format!("v{i}"));
        if vdir.exists() {
            std::fs::remove_dir_all(&vdir)
                .map_err(|e| TestnetError::io(format!("remove {}", vdir.display()), e))?;
        }
    }
    for name in ["genesis.json", "dev.key"] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .map_err(|e| TestnetError::io(format!("remove {}", path.display()), e))?;
        }
    }
    Ok(())
}

/// Executor threads per validator when `validators` processes share this machine.
fn executor_threads(validators: usize) -> usize {
    if validators <= 1 {
        return 0; // one per core
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / validators).max(1)
}

fn generate(opts: &UpOptions) -> Result<Testnet> {
    let validators = opts.validators.unwrap_or(DEFAULT_VALIDATORS);
    if validators == 0 {
        return Err(TestnetError::Usage(
            "--validators must be at least 1".into(),
        ));
    }
    let port_base = opts.port_base.unwrap_or(LocalnetSpec::default().port_base);
    if usize::from(port_base) + 3 * validators > usize::from(u16::MAX) || port_base < 1024 {
        return Err(TestnetError::Usage(format!(
            "--port-base {port_base} does not fit {validators} validators (3 ports each, from 1024 to 65535)"
        )));
    }
    let ports: Vec<(usize, ValidatorPorts)> = (0..validators)
        .map(|i| (i, ValidatorPorts::from_base(port_base, i)))
        .collect();
    ports::check_free(&ports)?;
    if opts.dir.exists()
        && std::fs::read_dir(&opts.dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(TestnetError::Usage(format!(
            "{} is not empty and holds no testnet: choose another --dir",
            opts.dir.display()
        )));
    }
    let spec = LocalnetSpec {
        validators,
        port_base,
        bench_accounts: opts.accounts.unwrap_or(DEFAULT_ACCOUNTS),
        ordering_only: opts.ordering_only,
        block_gas_limit: opts
            .block_gas_limit
            .unwrap_or(LocalnetSpec::default().block_gas_limit),
        ..LocalnetSpec::default()
    };
    let mut net = localnet::generate(&opts.dir, &spec)?;
    let threads = executor_threads(validators);
    for v in &mut net.validators {
        v.config.execution.threads = threads;
        v.config.rpc.fault_injection = opts.fault_injection;
        if let Some(configure) = opts.configure {
            configure(&mut v.config);
        }
        v.config.write(&v.config_path)?;
    }
    Ok(Testnet { net })
}

/// Refuses options that contradict an existing testnet.
fn check_matches(net: &Testnet, opts: &UpOptions) -> Result<()> {
    let dir = net.dir().display();
    if let Some(n) = opts.validators {
        if n != net.len() {
            return Err(TestnetError::Usage(format!(
                "the testnet in {dir} has {} validators, not {n}: add --reset to make a new one",
                net.len()
            )));
        }
    }
    if let Some(base) = opts.port_base {
        let have = net.ports(0).p2p;
        if base != have {
            return Err(TestnetError::Usage(format!(
                "the testnet in {dir} uses port base {have}, not {base}: add --reset to make a new one"
            )));
        }
    }
    if let Some(a) = opts.accounts {
        let have = net.bench_account_count();
        if a as usize != have {
            return Err(TestnetError::Usage(format!(
                "the testnet in {dir} funds {have} bench accounts, not {a}: add --reset to make a new one"
            )));
        }
    }
    if let Some(limit) = opts.block_gas_limit {
        let have = net.net.genesis.block_gas_limit;
        if limit != have {
            return Err(TestnetError::Usage(format!(
                "the testnet in {dir} has a block gas limit of {have}, not {limit}: add --reset to make a new one"
            )));
        }
    }
    if opts.ordering_only != net.net.genesis.ordering_only {
        let mode = |o: bool| if o { "ordering-only" } else { "executing" };
        return Err(TestnetError::Usage(format!(
            "the testnet in {dir} is {}, not {}: add --reset to make a new one",
            mode(net.net.genesis.ordering_only),
            mode(opts.ordering_only)
        )));
    }
    Ok(())
}

/// Brings the testnet in `opts.dir` up; `progress` hears what is happening.
pub fn up(opts: &UpOptions, progress: &mut dyn FnMut(&str)) -> Result<(Testnet, UpReport)> {
    let bin = process::validator_binary()?;
    let mut generated = false;
    if opts.reset && exists(&opts.dir) {
        let old = Testnet::open(&opts.dir)?;
        let stopped = old.down(Duration::from_secs(20));
        if !stopped.is_empty() {
            progress(&format!("stopped {} running validators", stopped.len()));
        }
        wipe(&old)?;
        progress(&format!("wiped the testnet in {}", old.dir().display()));
    }
    let net = if exists(&opts.dir) {
        let net = Testnet::open(&opts.dir)?;
        check_matches(&net, opts)?;
        net
    } else {
        let net = generate(opts)?;
        generated = true;
        progress(&format!(
            "generated {} validators in {} (chain {})",
            net.len(),
            net.dir().display(),
            net.chain_id()
        ));
        net
    };
    if opts.offline >= net.len() {
        return Err(TestnetError::Usage(format!(
            "{} offline validators leave none of {} running",
            opts.offline,
            net.len()
        )));
    }
    let online = net.len() - opts.offline;

    let running: Vec<Option<i32>> = (0..online).map(|i| net.running_pid(i)).collect();
    let to_start: Vec<usize> = (0..online).filter(|i| running[*i].is_none()).collect();
    let ports: Vec<(usize, ValidatorPorts)> = to_start.iter().map(|&i| (i, net.ports(i))).collect();
    ports::check_free(&ports)?;

    let mut children: Vec<(usize, Child)> = Vec::new();
    for &i in &to_start {
        let v = &net.net.validators[i];
        match process::spawn_validator(&bin, &v.config_path, &v.log_path, &net.pid_file(i)) {
            Ok(child) => children.push((i, child)),
            Err(e) => {
                stop_started(&net, &mut children);
                return Err(e);
            }
        }
    }
    if !to_start.is_empty() {
        progress(&format!(
            "started validators {:?}; waiting until they are ready",
            to_start
        ));
    }
    if let Err(e) = wait_ready(&net, online, &mut children, opts.ready_timeout) {
        stop_started(&net, &mut children);
        return Err(e);
    }
    let validators = (0..net.len())
        .map(|i| net.info(i, net.running_pid(i), to_start.contains(&i)))
        .collect();
    let report = UpReport {
        dir: net.dir().to_path_buf(),
        chain_id: net.chain_id(),
        generated,
        ordering_only: net.net.genesis.ordering_only,
        dev_key: net.net.dev_key_path.clone(),
        json_rpc: client::rpc_url(net.net.validators[0].rpc),
        dev_accounts: net.dev_accounts(),
        validators,
    };
    Ok((net, report))
}

fn stop_started(net: &Testnet, children: &mut Vec<(usize, Child)>) {
    let pids: Vec<i32> = children.iter().map(|(_, c)| c.id() as i32).collect();
    process::stop(&pids, Duration::from_secs(10));
    for (i, mut child) in children.drain(..) {
        let _ = child.try_wait();
        let _ = std::fs::remove_file(net.pid_file(i));
    }
}

/// Polls until each of the first `online` validators answers `/v1/status` and is
/// connected to the other `online - 1`; fails at once if a started process exits.
fn wait_ready(
    net: &Testnet,
    online: usize,
    children: &mut [(usize, Child)],
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut not_ready: Vec<Option<String>> = vec![Some("no answer yet".into()); online];
    loop {
        if interrupt::requested() {
            return Err(TestnetError::Interrupted);
        }
        for (i, child) in children.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = net.log_file(*i);
                return Err(TestnetError::ExitedEarly {
                    index: *i,
                    status: status.to_string(),
                    tail: process::tail(&log, 20),
                    log,
                });
            }
        }
        let mut all_ready = true;
        for (i, reason) in not_ready.iter_mut().enumerate() {
            *reason = match client::status(net.rpc(i), Duration::from_secs(2)) {
                Ok(v) => {
                    let peers = v["peers"].as_u64().unwrap_or(0) as usize;
                    (peers + 1 < online)
                        .then(|| format!("connected to {peers} of {} peers", online - 1))
                }
                Err(e) => Some(e.to_string()),
            };
            all_ready &= reason.is_none();
        }
        if all_ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let index = not_ready.iter().position(Option::is_some).unwrap_or(0);
            return Err(TestnetError::NotReady {
                index,
                waited_s: started.elapsed().as_secs(),
                reason: not_ready[index].clone().unwrap_or_default(),
                log: net.log_file(index),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A status row's fields as JSON (the `status` command's stable shape).
pub fn status_json(rows: &[ValidatorStatus]) -> Value {
    serde_json::json!({ "validators": rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_port_reads_a_multiaddress() {
        assert_eq!(tcp_port("/ip4/127.0.0.1/tcp/7100"), Some(7100));
        assert_eq!(tcp_port("/ip4/127.0.0.1/udp/7100"), None);
    }
}
