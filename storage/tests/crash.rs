//! Crash atomicity with a real process: the `storage-crash-child` binary commits blocks
//! in a loop and is killed with SIGKILL at random moments; after every kill the store
//! must reopen to a prefix of whole blocks whose state matches its stored root, and must
//! hold everything the child reported durable before it died.
//!
//! `ORDO_CRASH_ITERATIONS` raises the number of kills (default 50);
//! `ORDO_CRASH_SEED` replays one run's delays.

#[path = "../src/bin/crash_child/workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ordo_storage::{Storage, StorageConfig, TxLocation};
use rand::{Rng, SeedableRng};

/// What the child printed before it died: the last durable block and safety record.
#[derive(Default, Debug)]
struct Reported {
    executed: Option<u64>,
    safety: Option<u64>,
}

impl Reported {
    fn take(&mut self, line: &str) {
        if let Some(h) = line.strip_prefix("executed ") {
            self.executed = Some(h.parse().expect("child prints heights"));
        } else if let Some(n) = line.strip_prefix("safety ") {
            self.safety = Some(n.parse().expect("child prints counters"));
        } else {
            panic!("unexpected line from the child: {line:?}");
        }
    }
}

#[test]
fn sigkill_at_random_moments_leaves_whole_blocks_and_a_matching_root() {
    let iterations: usize = std::env::var("ORDO_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("ORDO_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test: {iterations} kills, ORDO_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();

    // The expected state after `model_height`, replayed from the workload.
    let mut model = BTreeMap::new();
    let mut model_height = 0u64;
    let mut last_executed = 0u64;
    let mut last_safety = 0u64;

    for iteration in 0..iterations {
        let mut child = Command::new(env!("CARGO_BIN_EXE_storage-crash-child"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });

        // Kill only once the child is committing: wait for its first durable block.
        let mut reported = Reported::default();
        while reported.executed.is_none() {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("iteration {iteration}: child made no progress"));
            reported.take(&line);
        }
        let delay = Duration::from_micros(rng.gen_range(0..30_000));
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL the child");
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child only ends when killed");
        reader.join().unwrap();
        for line in lines.try_iter() {
            reported.take(&line);
        }

        let (storage, recovery) = Storage::open(dir.path(), StorageConfig::small())
            .unwrap_or_else(|e| panic!("iteration {iteration}: reopen failed: {e}"));
        let executed = recovery
            .last_executed
            .expect("the child reported a committed block");

        // Nothing reported durable is lost, and nothing goes backwards.
        let reported_executed = reported.executed.unwrap();
        assert!(
            executed >= reported_executed && executed >= last_executed,
            "iteration {iteration}: reopened at {executed}, child reported {reported_executed}, \
             previously {last_executed}"
        );
        let safety = storage.safety_data().unwrap().map(|bytes| {
            String::from_utf8(bytes).unwrap()["safety ".len()..]
                .parse::<u64>()
                .unwrap()
        });
        if let Some(reported_safety) = reported.safety {
            assert!(
                safety >= Some(reported_safety),
                "iteration {iteration}: safety {safety:?} < reported {reported_safety}"
            );
        }
        assert!(safety.unwrap_or(0) >= last_safety);
        last_safety = safety.unwrap_or(0);

        // Every block up to `executed` is wholly present, and the next ones wholly absent.
        // Pruning (32 heights kept) marked the history below `pruned_below` pruned
        // (index and roots gone in one write); what a kill cut short of the rest goes at
        // the next prune.
        let pruned_below = storage.pruned_below().unwrap().max(1);
        for height in last_executed.saturating_sub(1).max(pruned_below)..=executed {
            assert_block_present(&storage, height);
        }
        for height in executed + 1..=executed + 3 {
            assert_block_absent(&storage, height);
        }
        // A few older blocks, chosen at random, are still whole, or whole pruned.
        for _ in 0..3 {
            assert_block_present(&storage, rng.gen_range(pruned_below..=executed));
            if pruned_below > 1 {
                let height = rng.gen_range(1..pruned_below);
                assert_eq!(storage.state_root_at(height).unwrap(), None);
                assert_eq!(storage.block_hash_at(height).unwrap(), None);
                assert_eq!(storage.block_at(height).unwrap(), None);
            }
        }
        // The committed chain runs a few blocks ahead (the child records each block as
        // committed before executing it, and up to three executed blocks wait for the
        // writer), and recovery lists exactly those blocks as pending.
        let committed = recovery.last_committed.unwrap();
        assert!(
            (executed..=executed + 4).contains(&committed),
            "committed {committed}, executed {executed}"
        );
        let pending: Vec<u64> = recovery.pending.iter().map(|p| p.height).collect();
        assert_eq!(pending, (executed + 1..=committed).collect::<Vec<_>>());
        for p in &recovery.pending {
            assert_eq!(p.hash, workload::block_hash(p.height));
        }

        // The stored state is exactly the replayed one, and its root is the stored root.
        workload::apply(&mut model, model_height + 1, executed);
        model_height = executed;
        let mut stored = BTreeMap::new();
        storage
            .for_each_state_entry(|k, v| {
                stored.insert(k.to_vec(), v.to_vec());
            })
            .unwrap();
        assert_eq!(
            stored, model,
            "iteration {iteration}: state after {executed}"
        );
        let recomputed = storage.recompute_accumulator().unwrap();
        assert_eq!(recomputed.root(), recovery.state_root);
        assert_eq!(recovery.accumulator, recomputed);
        assert_eq!(
            storage.state_root_at(executed).unwrap(),
            Some(recovery.state_root)
        );

        last_executed = executed;
        drop(storage);
    }
    assert!(
        last_executed > iterations as u64,
        "the child should commit blocks between kills"
    );
    eprintln!(
        "crash test: {iterations} kills, {last_executed} blocks, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn assert_block_present(storage: &Storage, height: u64) {
    assert!(
        storage.state_root_at(height).unwrap().is_some(),
        "root of {height}"
    );
    for i in 0..workload::TXS_PER_BLOCK {
        let hash = workload::tx_hash(height, i);
        assert_eq!(
            storage.tx_location(&hash).unwrap(),
            Some(TxLocation {
                height,
                position: i,
                status: workload::status(height, i)
            }),
            "transaction {i} of block {height}"
        );
        assert_eq!(
            storage.receipt(&hash).unwrap(),
            Some(workload::receipt(height, i))
        );
    }
    assert_eq!(
        storage.block_hash_at(height).unwrap(),
        Some(workload::block_hash(height))
    );
}

fn assert_block_absent(storage: &Storage, height: u64) {
    assert_eq!(storage.state_root_at(height).unwrap(), None);
    for i in 0..workload::TXS_PER_BLOCK {
        let hash = workload::tx_hash(height, i);
        assert_eq!(
            storage.tx_location(&hash).unwrap(),
            None,
            "tx {i} of {height}"
        );
        assert_eq!(storage.receipt(&hash).unwrap(), None);
    }
}
