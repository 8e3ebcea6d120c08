//! One Byzantine validator among four, under transfer load: the chain keeps committing,
//! every validator names the same block and state root at every common height, the
//! benchmark accounts for every transaction, and the honest validators counted the bad
//! input. The misbehaviours are grouped into four runs to bound the suite's time.
//!
//! Needs an `ordo` built with the `byzantine` feature next to `ordo-testnet`:
//! `cargo test --workspace` builds one (this crate's dev-dependency turns the feature on);
//! a plain `cargo build -p ordo-cli` replaces it with one that refuses to misbehave.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ordo_testnet::bench::{self, BenchConfig, Faults, Load, Skew, Target, Workload};
use ordo_testnet::testnet::{self, Testnet, UpOptions};
use ordo_testnet::{client, ports};
use serde_json::Value;

mod common;

/// One testnet at a time: they share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const VALIDATORS: usize = 4;
const BYZANTINE: usize = VALIDATORS - 1;

/// Stops the testnet's validators however the test ends.
struct Running {
    net: Testnet,
    _tmp: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.net.down(Duration::from_secs(20));
    }
}

impl Running {
    fn rpc(&self, i: usize) -> SocketAddr {
        self.net.rpc(i)
    }

    fn metrics(&self, i: usize) -> String {
        client::metrics_text(self.net.net.validators[i].metrics, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("metrics of validator {i}: {e}"))
    }
}

/// Three honest validators, then the last one with `behaviours`; waits until the
/// Byzantine one answers its RPC.
fn start(behaviours: &[&str]) -> Running {
    start_with(behaviours, 1_000)
}

/// As [`start`], with `accounts` funded accounts in genesis.
fn start_with(behaviours: &[&str], accounts: u32) -> Running {
    // The library starts `ordo` from next to the running executable unless told; a
    // caller's $ORDO_BIN wins (a build kept apart from a shared target folder).
    if std::env::var_os("ORDO_BIN").is_none() {
        std::env::set_var("ORDO_BIN", common::tool().with_file_name("ordo"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        validators: Some(VALIDATORS),
        port_base: Some(ports::find_free_base(VALIDATORS).unwrap()),
        accounts: Some(accounts),
        offline: 1,
        ready_timeout: Duration::from_secs(120),
        ..UpOptions::new(tmp.path().join("testnet"))
    };
    let (net, _) = testnet::up(&opts, &mut |_| {}).expect("the honest validators start");
    let running = Running { net, _tmp: tmp };
    let config: PathBuf = running.net.net.validators[BYZANTINE].config_path.clone();
    let list: Vec<String> = behaviours.iter().map(|b| format!("{b:?}")).collect();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[byzantine]\nbehaviours = [{}]\n",
        list.join(", ")
    ));
    std::fs::write(&config, text).unwrap();
    running.net.start(BYZANTINE).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client::status(running.rpc(BYZANTINE), Duration::from_secs(2)).is_err() {
        if running.net.running_pid(BYZANTINE).is_none() {
            let log = std::fs::read_to_string(running.net.log_file(BYZANTINE)).unwrap_or_default();
            panic!(
                "the Byzantine validator exited; if its log says the build lacks the feature, \
                 rebuild with `cargo build -p ordo-cli --bin ordo --features byzantine`:\n{log}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the Byzantine validator never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

/// A short open-loop transfer run against `targets`; returns the JSON report.
fn load(targets: Vec<SocketAddr>) -> Value {
    let cfg = BenchConfig {
        target: Target::Rpc(targets),
        load: Load::Open { rate: 1_000.0 },
        duration: Duration::from_secs(4),
        warmup: Duration::from_secs(1),
        drain: Duration::from_secs(20),
        workload: Workload::Transfer,
        tx_format: Default::default(),
        tx_size: 512,
        accounts: 1_000,
        skew: Skew::Uniform,
        compute_iterations: 10,
        faults: Faults { count: 0, at: None },
        batch_size: 200,
        senders_per_validator: 1,
        max_txs: None,
        ttl: Duration::from_secs(60),
        seed: 9,
        live: false,
    };
    let report = bench::run(&cfg, &mut |_| {}).expect("the benchmark runs");
    bench::report_json(&report)
}

fn u(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {report:#}"))
}

/// The accounting identity and the nothing-lost and same-root checks of the report.
fn assert_report_holds(r: &Value) {
    assert_eq!(
        u(r, "sent"),
        u(r, "committed") + u(r, "rejected") + u(r, "expired") + u(r, "in_flight"),
        "{r:#}"
    );
    assert_eq!(r["identity_holds"], true, "{r:#}");
    assert_eq!(u(r, "anomalies"), 0, "{r:#}");
    assert!(u(r, "committed") > 0, "{r:#}");
    let v = &r["verification"];
    assert_eq!(v["nothing_lost"], true, "{v:#}");
    assert_eq!(v["roots_agree"], true, "{v:#}");
}

/// Safety: every pair of validators names the same block, and the same state root where
/// both executed it, at every height both have.
fn assert_same_chain(run: &Running) {
    let heights: Vec<u64> = (0..VALIDATORS)
        .map(|i| {
            client::status(run.rpc(i), Duration::from_secs(5)).unwrap()["height"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let top = heights.iter().copied().max().unwrap();
    assert!(top > 0, "nothing committed: {heights:?}");
    for h in 1..=top {
        let blocks: Vec<Option<Value>> = (0..VALIDATORS)
            .filter(|&i| heights[i] >= h)
            .map(|i| client::block(run.rpc(i), h, Duration::from_secs(5)).unwrap())
            .collect();
        let hashes: Vec<&Value> = blocks.iter().flatten().map(|b| &b["hash"]).collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "height {h}: {hashes:?}"
        );
        let roots: Vec<&Value> = blocks
            .iter()
            .flatten()
            .map(|b| &b["state_root"])
            .filter(|r| !r.is_null())
            .collect();
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "height {h}: {roots:?}"
        );
    }
}

/// The sum of the samples of `name` whose labels contain `label` (all when empty).
fn counter(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}')?,
                None => ("", rest),
            };
            labels
                .contains(label)
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// `counter` summed over the honest validators.
fn honest(run: &Running, name: &str, label: &str) -> f64 {
    (0..BYZANTINE)
        .map(|i| counter(&run.metrics(i), name, label))
        .sum()
}

fn all_targets(run: &Running) -> Vec<SocketAddr> {
    (0..VALIDATORS).map(|i| run.rpc(i)).collect()
}

#[test]
fn equivocation_and_replays_do_not_break_safety() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = start(&["equivocate", "stale_messages"]);
    let report = load(all_targets(&run));
    assert_report_holds(&report);
    assert_same_chain(&run);
    let byz = run.metrics(BYZANTINE);
    let acts = |b: &str| counter(&byz, "ordo_byzantine_actions_total", b);
    assert!(acts("equivocate") > 0.0, "{byz}");
    let replays = acts("stale_messages");
    assert!(replays > 0.0, "{byz}");
    let equivocations = honest(&run, "ordo_consensus_equivocations_total", "proposal");
    let stale = honest(&run, "ordo_consensus_stale_messages_total", "");
    eprintln!(
        "committed {}, proposal equivocations {equivocations}, replays {replays}, stale {stale}",
        u(&report, "committed"),
    );
    assert!(equivocations > 0.0, "no proposal equivocation seen");
    // Each replay went to three honest validators; they drop it as stale.
    assert!(
        stale >= replays,
        "{stale} stale messages counted, {replays} replayed"
    );
}

/// Alone: a validator whose votes never count soon stops being chosen as leader (leader
/// reputation), which would starve the behaviours that need it to lead.
#[test]
fn double_votes_are_refused() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = start(&["double_vote"]);
    let report = load(all_targets(&run));
    assert_report_holds(&report);
    assert_same_chain(&run);
    let byz = run.metrics(BYZANTINE);
    assert!(counter(&byz, "ordo_byzantine_actions_total", "double_vote") > 0.0);
    let equivocations = honest(&run, "ordo_consensus_equivocations_total", "vote");
    eprintln!(
        "committed {}, vote equivocations {equivocations}",
        u(&report, "committed")
    );
    assert!(equivocations > 0.0, "no vote equivocation seen");
}

#[test]
fn bad_signatures_and_withheld_batches_are_survived() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = start(&["invalid_signatures", "withhold_batches"]);
    let report = load(all_targets(&run));
    assert_report_holds(&report);
    assert_same_chain(&run);
    let rejected = honest(&run, "ordo_network_batches_rejected_total", "invalid");
    assert!(rejected > 0.0, "no corrupted batch rejected");
    // The Byzantine validator's batches reached one honest validator only; the others
    // fetched them from it, since their author would not serve them.
    let fetched = honest(&run, "ordo_node_batches_fetched_total", "");
    eprintln!(
        "committed {}, corrupted batches rejected {rejected}, batches fetched {fetched}; \
         rejected {} expired {} in flight {} {}",
        u(&report, "committed"),
        u(&report, "rejected"),
        u(&report, "expired"),
        u(&report, "in_flight"),
        report["rejected_by_reason"]
    );
    assert!(fetched > 0.0, "no batch fetched from an honest holder");
}

#[test]
fn oversized_frames_get_their_sender_dropped() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = start(&["oversized_messages"]);
    // Its peers drop it for a while after each frame, so it takes no load of its own.
    let report = load((0..BYZANTINE).map(|i| run.rpc(i)).collect());
    assert_report_holds(&report);
    assert_same_chain(&run);
    let peer = format!("peer=\"{BYZANTINE}\"");
    let errors = honest(&run, "ordo_network_decode_errors_total", &peer);
    eprintln!(
        "committed {}, oversized frames counted {errors}",
        u(&report, "committed")
    );
    assert!(errors > 0.0, "no oversized frame counted");
    assert!(honest(&run, "ordo_network_peers_dropped_total", "") > 0.0);
}

/// A validator wiped while one of its peers serves corrupted snapshot chunks restores the
/// snapshot anyway: every chunk the Byzantine peer sends fails its hash, is counted, and is
/// fetched from an honest peer; the restored validator then agrees with the others.
#[test]
fn a_wiped_validator_restores_a_snapshot_past_a_peer_that_corrupts_chunks() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A state of several 1 MiB chunks, so that every peer is asked for some.
    let run = start_with(&["corrupt_snapshot_chunks"], 40_000);
    let executed = |i: usize| {
        client::status(run.rpc(i), Duration::from_secs(2))
            .ok()
            .and_then(|s| s["executed_height"].as_u64())
            .unwrap_or(0)
    };
    let log_tails = || {
        (0..VALIDATORS)
            .map(|i| {
                let log = std::fs::read_to_string(run.net.log_file(i)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                format!(
                    "validator {i}:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                log_tails()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Every validator snapshots every 10 blocks: restarted with that setting, one at a
    // time, each back and the chain moving before the next.
    for i in 0..VALIDATORS {
        let path = &run.net.net.validators[i].config_path;
        let mut config = ordo_node::config::NodeConfig::load(path).unwrap();
        config.storage.snapshot_interval_blocks = 10;
        config.write(path).unwrap();
        let before = (0..VALIDATORS).map(executed).max().unwrap_or(0);
        run.net.crash(i);
        run.net.start(i).unwrap();
        wait_for("a restarted validator", &|| {
            client::status(run.rpc(i), Duration::from_secs(2)).is_ok()
                && (0..VALIDATORS).map(executed).max().unwrap_or(0) > before
        });
    }
    // The wipe comes right after a height every other validator, the Byzantine one
    // included, has a snapshot of, and before the next: that snapshot is then the newest
    // offered alike, and the Byzantine peer is one of those asked for its chunks.
    const WIPED: usize = 2;
    let others = [0, 1, BYZANTINE];
    let snapshot_height =
        |i: usize| counter(&run.metrics(i), "ordo_storage_snapshot_height", "") as u64;
    wait_for("a snapshot height every other validator has", &|| {
        let heights: Vec<u64> = others.iter().map(|&i| snapshot_height(i)).collect();
        heights[0] >= 10 && heights.iter().all(|&h| h == heights[0]) && executed(0) < heights[0] + 6
    });
    run.net.crash(WIPED);
    let wiped_at = executed(0);
    run.net.wipe_data(WIPED).unwrap();
    run.net.start(WIPED).unwrap();
    wait_for("the wiped validator to rejoin", &|| {
        executed(WIPED) >= wiped_at + 3
    });

    let wiped = run.metrics(WIPED);
    let restored = counter(&wiped, "ordo_statesync_restored_height", "");
    let rejected = counter(&wiped, "ordo_statesync_chunks_total", "rejected");
    let applied = counter(&wiped, "ordo_statesync_chunks_total", "applied");
    let corrupted = counter(
        &run.metrics(BYZANTINE),
        "ordo_byzantine_actions_total",
        "corrupt_snapshot_chunks",
    );
    eprintln!(
        "wiped at {wiped_at}: restored {restored}, chunks applied {applied}, rejected {rejected}, \
         corrupted by the Byzantine peer {corrupted}"
    );
    assert!(restored > 0.0, "no snapshot restored\n{wiped}");
    assert!(rejected > 0.0, "no corrupted chunk was refused\n{wiped}");
    assert!(
        rejected <= corrupted,
        "refused {rejected} chunks, {corrupted} were corrupted"
    );
    assert_same_chain(&run);
}
