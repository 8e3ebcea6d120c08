//! A validator whose internal task dies stops, names the task and exits non-zero, instead
//! of running on without it. Each run makes one task of a real `ordo run` process panic
//! through the `byzantine` build's fault hook (`ORDO_FAULT_PANIC_TASK`), the way a bug
//! would.
//!
//! Needs an `ordo` built with the `byzantine` feature next to `ordo-testnet`, as
//! tests/byzantine.rs does (`cargo test --workspace` builds one).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ordo_cli::localnet::{self, LocalnetSpec, ValidatorPorts};

mod common;

/// How long a validator may take to notice a dead task and exit: the hook fires a second
/// after start-up; shutting down takes a moment more.
const EXIT_WITHIN: Duration = Duration::from_secs(60);

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Starts a one-validator network whose task `task` panics; returns the exit status and
/// the log.
fn run_with_dying(task: &str) -> (std::process::ExitStatus, String) {
    let ordo = common::tool().with_file_name("ordo");
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let spec = LocalnetSpec {
        validators: 1,
        chain_id: 919,
        ports: Some(vec![ValidatorPorts {
            p2p: ports[0],
            rpc: ports[1],
            metrics: ports[2],
        }]),
        bench_accounts: 1,
        pools: 1,
        collections: 1,
        ..LocalnetSpec::default()
    };
    let net = localnet::generate(dir.path(), &spec).unwrap();
    let v = &net.validators[0];
    let log = std::fs::File::create(&v.log_path).unwrap();
    let mut child = Command::new(&ordo)
        .args(["run", "--config", v.config_path.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env("ORDO_FAULT_PANIC_TASK", task)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("ordo run starts");
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the validator kept running with task '{task}' dead:\n{}",
                std::fs::read_to_string(&v.log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status,
        std::fs::read_to_string(&v.log_path).unwrap_or_default(),
    )
}

#[test]
fn a_dead_task_stops_the_validator_which_names_it() {
    // (the task that dies, how the validator's failure names it): the dissemination
    // layer's tasks are reported through the node's "dissemination" task.
    for (task, named) in [
        ("payload", "task 'payload' failed: panicked: injected fault"),
        ("roots", "task 'roots' failed: panicked: injected fault"),
        (
            "quorum-waiter",
            "task 'dissemination' failed: panicked: quorum-waiter: injected fault",
        ),
    ] {
        let (status, log) = run_with_dying(task);
        assert!(
            !status.success(),
            "exited {status} with task '{task}' dead:\n{log}"
        );
        assert!(
            log.contains("FAULT INJECTION") && log.contains(named),
            "the log does not name the dead task '{task}' as \"{named}\":\n{log}"
        );
    }
}
