//! The fuzz targets as CI runs them, without a fuzzing engine: every seed, a bounded run
//! of mutated seeds per target, and proptest over arbitrary and mutated bytes. The long,
//! coverage-guided run is `scripts/fuzz.sh` (cargo-fuzz).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use proptest::collection::vec;
use proptest::prelude::*;

use super::{apply, random_edits, target, Edit, SplitMix64, Target, TARGETS};

/// Runs `target` on `input`, turning a panic into one that names the target and the input
/// in hex, so that a failure can be replayed (`fuzz/seeds` or a regression test).
fn run_reporting(target: &Target, input: &[u8], how: &str) -> bool {
    match catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        Ok(accepted) => accepted,
        Err(_) => panic!(
            "fuzz target {} panicked on {how}; input ({} bytes): {}",
            target.name,
            input.len(),
            hex::encode(input)
        ),
    }
}

/// The control: a body that panics is reported with its input, so the runs above can fail.
#[test]
#[should_panic(expected = "fuzz target control panicked on a seed; input (2 bytes): ff00")]
fn a_panicking_body_is_reported_with_its_input() {
    fn buggy_decoder(data: &[u8]) -> bool {
        assert!(data.first() != Some(&0xff), "a decoder bug");
        true
    }
    let control = Target {
        name: "control",
        run: buggy_decoder,
        seeds: Vec::new,
    };
    run_reporting(&control, &[0xff, 0], "a seed");
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn every_seed_is_accepted() {
    for target in TARGETS {
        let seeds = (target.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", target.name);
        for (i, seed) in seeds.iter().enumerate() {
            assert!(
                run_reporting(target, seed, "a seed"),
                "{}: seed {i} is refused: {}",
                target.name,
                String::from_utf8_lossy(seed)
            );
        }
    }
    assert!(target("config").is_some() && target("nonsense").is_none());
}

/// The committed seed corpus that `scripts/fuzz.sh` starts cargo-fuzz from is exactly
/// what the seed functions build; `ORDO_WRITE_FUZZ_SEEDS=1` rewrites it after a change.
#[test]
fn committed_seed_corpus_matches_the_seeds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let rewrite = std::env::var_os("ORDO_WRITE_FUZZ_SEEDS").is_some();
    for target in TARGETS {
        let dir = root.join(target.name);
        let seeds = (target.seeds)();
        if rewrite {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
            }
        }
        let mut committed: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        committed.sort();
        let expected: Vec<(String, Vec<u8>)> = seeds
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("seed-{i}"), s))
            .collect();
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        assert!(
            committed == expected_sorted,
            "{} is out of date: run ORDO_WRITE_FUZZ_SEEDS=1 cargo test -p ordo-node --lib fuzz_targets",
            dir.display()
        );
    }
}

/// Every body has its cargo-fuzz binary, and every binary runs the body of its name.
#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    let binaries = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(
        binaries,
        TARGETS.len(),
        "fuzz/fuzz_targets has a file per target"
    );
    for target in TARGETS {
        let name = target.name;
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml lacks the [[bin]] {name}"
        );
        let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs")));
        assert!(
            source.is_ok_and(|s| s.contains(&format!("fuzz_targets::run(\"{name}\", data)"))),
            "fuzz/fuzz_targets/{name}.rs must run the body {name}"
        );
    }
}

/// The engine-free fuzz run: each target over its seeds and a fixed number of mutated
/// seeds (`ORDO_FUZZ_ITERATIONS`, default 20,000; `ORDO_FUZZ_SEED` picks the run). Prints
/// executions per target; see them with `-- --nocapture`.
#[test]
fn mutated_seeds_never_panic() {
    let iterations = env_u64("ORDO_FUZZ_ITERATIONS", 20_000);
    let run_seed = env_u64("ORDO_FUZZ_SEED", 0x5eed);
    let started = Instant::now();
    let mut total = 0u64;
    // Splices take from every target's seeds: a valid prefix of one message followed by
    // another message reaches a decoder's odd corners.
    let pool: Vec<Vec<u8>> = TARGETS.iter().flat_map(|t| (t.seeds)()).collect();
    for target in TARGETS {
        let seeds = (target.seeds)();
        let mut rng = SplitMix64::new(run_seed ^ fnv(target.name));
        let mut accepted = 0u64;
        for seed in &seeds {
            accepted += u64::from(run_reporting(target, seed, "a seed"));
        }
        for i in 0..iterations {
            let edits = random_edits(&mut rng);
            let input = apply(&seeds[rng.below(seeds.len())], &edits, &pool);
            let how = format!("mutation {i} of run seed {run_seed} ({edits:?})");
            accepted += u64::from(run_reporting(target, &input, &how));
        }
        // Otherwise the mutations never got past the decoders' first checks.
        if iterations >= 1_000 {
            assert!(
                accepted > seeds.len() as u64,
                "{}: no mutated input was accepted",
                target.name
            );
        }
        let executions = seeds.len() as u64 + iterations;
        total += executions;
        eprintln!(
            "fuzz {:<18} {executions:>7} executions, {accepted:>6} accepted",
            target.name
        );
    }
    eprintln!(
        "fuzz: {total} executions over {} targets in {:.1} s (run seed {run_seed})",
        TARGETS.len(),
        started.elapsed().as_secs_f64()
    );
}

/// FNV-1a, so that each target gets its own stream of mutations from one run seed.
fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn edit() -> impl Strategy<Value = Edit> {
    (any::<u8>(), any::<usize>(), any::<u64>()).prop_map(|(k, at, x)| Edit::from_raw(k, at, x))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in vec(any::<u8>(), 0..2048)) {
        for target in TARGETS {
            run_reporting(target, &bytes, "arbitrary bytes");
        }
    }

    #[test]
    fn mutated_valid_encodings_never_panic(
        which in 0..TARGETS.len(),
        seed in any::<usize>(),
        edits in vec(edit(), 1..6),
    ) {
        let target = &TARGETS[which];
        let seeds = (target.seeds)();
        let input = apply(&seeds[seed % seeds.len()], &edits, &seeds);
        run_reporting(target, &input, "a mutated seed");
    }
}
