//! `ordo testnet` as a user runs it, with real `ordo run` processes on 127.0.0.1 in a
//! temporary folder: up, status with heights advancing, a second up that starts only what
//! is missing, a busy port named at once, down (no process left), and up after down
//! resuming the same chain.
//!
//! Needs the `ordo` binary next to `ordo-testnet` (`cargo test --workspace` builds it;
//! else `cargo build -p ordo-cli --bin ordo`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ordo_testnet::ports::find_free_base;
use ordo_testnet::process;
use ordo_testnet::testnet::Testnet;
use serde_json::Value;

mod common;
use common::tool;

fn run(args: &[&str]) -> Output {
    Command::new(tool())
        .args(args)
        .output()
        .expect("ordo-testnet runs")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON document")
}

/// Stops whatever the test started in `dir`, even when it fails half-way.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(net) = Testnet::open(&self.0) {
            net.down(Duration::from_secs(10));
        }
    }
}

fn status(dir: &str) -> Vec<Value> {
    let v = json_of(&run(&["--json", "testnet", "status", "--dir", dir]));
    v["validators"].as_array().unwrap().clone()
}

fn min_height(rows: &[Value]) -> u64 {
    rows.iter()
        .map(|r| r["height"].as_u64().unwrap_or(0))
        .min()
        .unwrap_or(0)
}

/// Polls `cond` every 100 ms until it holds or `within` passes.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pids(up: &Value) -> Vec<i64> {
    up["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pid"].as_i64().expect("a running validator has a pid"))
        .collect()
}

fn started(up: &Value) -> Vec<bool> {
    up["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["started"].as_bool().unwrap())
        .collect()
}

#[test]
fn up_status_partial_restart_down_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir_path = tmp.path().join("net");
    let dir = dir_path.to_str().unwrap();
    let _cleanup = Cleanup(dir_path.clone());
    let base = find_free_base(3).unwrap().to_string();

    let up = json_of(&run(&[
        "--json",
        "testnet",
        "up",
        "--validators",
        "3",
        "--dir",
        dir,
        "--port-base",
        &base,
        "--accounts",
        "100",
    ]));
    let validators = up["validators"].as_array().unwrap();
    assert_eq!(validators.len(), 3);
    for (i, v) in validators.iter().enumerate() {
        assert_eq!(v["index"], i);
        assert!(v["peer_id"].as_str().unwrap().starts_with("12D3KooW"));
        let rpc_port: u16 = base.parse::<u16>().unwrap() + 3 * i as u16 + 1;
        assert_eq!(v["rpc"], format!("http://127.0.0.1:{rpc_port}"));
        assert!(v["metrics"].as_str().unwrap().ends_with("/metrics"));
        assert!(Path::new(v["data_dir"].as_str().unwrap()).is_dir());
        assert!(Path::new(v["log"].as_str().unwrap()).is_file());
    }
    assert!(Path::new(up["dev_key"].as_str().unwrap()).is_file());
    assert_eq!(started(&up), vec![true; 3]);
    let first_pids = pids(&up);

    // Running, and the chain grows.
    let rows = status(dir);
    assert!(rows.iter().all(|r| r["running"] == true), "{rows:?}");
    let h0 = min_height(&rows);
    assert!(
        wait_for(Duration::from_secs(30), || min_height(&status(dir))
            >= h0 + 3),
        "heights did not advance from {h0}: {:?}",
        status(dir)
    );
    let rows = status(dir);
    for r in &rows {
        assert!(r["executed_height"].as_u64().is_some());
        assert_eq!(r["state_root"].as_str().unwrap().len(), 64);
        assert_eq!(
            r["pid"].as_i64(),
            Some(first_pids[r["index"].as_u64().unwrap() as usize])
        );
    }

    // A second up changes nothing.
    let again = json_of(&run(&["--json", "testnet", "up", "--dir", dir]));
    assert_eq!(started(&again), vec![false; 3]);
    assert_eq!(pids(&again), first_pids);

    // One validator crashes: up starts that one only.
    process::signal(first_pids[1] as i32, libc::SIGKILL);
    assert!(wait_for(Duration::from_secs(10), || !process::is_alive(
        first_pids[1] as i32
    )));
    assert_eq!(status(dir)[1]["running"], false);
    let partial = json_of(&run(&["--json", "testnet", "up", "--dir", dir]));
    assert_eq!(started(&partial), vec![false, true, false]);
    let partial_pids = pids(&partial);
    assert_eq!(partial_pids[0], first_pids[0]);
    assert_eq!(partial_pids[2], first_pids[2]);
    assert_ne!(partial_pids[1], first_pids[1]);

    // Logs: the tail of one validator.
    let logs = run(&["testnet", "logs", "0", "--lines", "5", "--dir", dir]);
    assert!(logs.status.success());
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(!text.is_empty() && text.lines().count() <= 5, "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour escapes in the log: {text}"
    );
    let bad = run(&["testnet", "logs", "7", "--dir", dir]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no validator 7"));

    // Down: every process gone, pid files removed.
    let height_before_down = min_height(&status(dir));
    let down = json_of(&run(&["--json", "testnet", "down", "--dir", dir]));
    let stopped = down["stopped"].as_array().unwrap();
    assert_eq!(stopped.len(), 3);
    assert!(
        stopped.iter().all(|s| s["outcome"] == "terminated"),
        "{down}"
    );
    for pid in &partial_pids {
        assert!(!process::is_alive(*pid as i32), "pid {pid} still alive");
    }
    for i in 0..3 {
        assert!(!dir_path.join(format!("v{i}/ordo.pid")).exists());
    }
    assert!(status(dir).iter().all(|r| r["running"] == false));

    // Up after down resumes the same chain.
    let resumed = json_of(&run(&["--json", "testnet", "up", "--dir", dir]));
    assert_eq!(started(&resumed), vec![true; 3]);
    assert_eq!(
        resumed["validators"][0]["peer_id"],
        up["validators"][0]["peer_id"]
    );
    let rows = status(dir);
    assert!(
        min_height(&rows) >= height_before_down,
        "height went back from {height_before_down}: {rows:?}"
    );
    assert!(
        wait_for(Duration::from_secs(30), || min_height(&status(dir))
            > height_before_down),
        "the resumed chain does not grow past {height_before_down}"
    );
    json_of(&run(&["--json", "testnet", "down", "--dir", dir]));
}

#[test]
fn a_busy_port_is_named_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir_path = tmp.path().join("net");
    let dir = dir_path.to_str().unwrap();
    let _cleanup = Cleanup(dir_path.clone());
    // Free when picked is not free for ever: another test may take the port meanwhile.
    let (base, busy, _holder) = (0..20)
        .find_map(|_| {
            let base = find_free_base(2).ok()?;
            let busy = base + 4; // validator 1's RPC
            let holder = TcpListener::bind(("127.0.0.1", busy)).ok()?;
            Some((base, busy, holder))
        })
        .expect("no free block of ports to test with");
    let started = Instant::now();
    let out = run(&[
        "testnet",
        "up",
        "--validators",
        "2",
        "--dir",
        dir,
        "--port-base",
        &base.to_string(),
        "--accounts",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("port {busy} (rpc of validator 1)")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing was generated or started.
    assert!(!dir_path.join("genesis.json").exists());
}

#[test]
fn commands_without_a_testnet_or_binary_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("none");
    let out = run(&["testnet", "status", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ordo testnet up"));

    let out = Command::new(tool())
        .args(["testnet", "up", "--dir", dir.to_str().unwrap()])
        .env("ORDO_BIN", tmp.path().join("missing-ordo"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo build -p ordo-cli --bin ordo"),
        "{stderr}"
    );
}
