//! The node's fuzz targets as CI runs them, without a fuzzing engine: every seed, a bounded
//! run of mutated seeds per target, and proptest over arbitrary and mutated bytes. The
//! long, coverage-guided run is `scripts/fuzz.sh` (cargo-fuzz).

use proptest::collection::vec;
use proptest::prelude::*;

use super::{apply, binaries, run_reporting, target, Edit, Target, SUITE, TARGETS};

/// The control: a body that panics is reported with its input, so the runs below can fail.
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

#[test]
fn every_seed_is_accepted() {
    SUITE.check_seeds();
    assert!(target("config").is_some() && target("nonsense").is_none());
}

#[test]
fn committed_seed_corpus_matches_the_seeds() {
    SUITE.check_seed_corpus();
}

/// Each of the node's bodies has its cargo-fuzz binary, and every binary runs the body of
/// its own name (the node's, or another crate's, which that crate's tests check).
#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    SUITE.check_binaries();
    for (name, source) in binaries() {
        assert!(
            source.contains(&format!("::fuzz_targets::run(\"{name}\", data)")),
            "fuzz/fuzz_targets/{name}.rs must run the body {name}"
        );
    }
}

#[test]
fn mutated_seeds_never_panic() {
    // Splices take from every target's seeds: a valid prefix of one message followed by
    // another message reaches a decoder's odd corners.
    let pool: Vec<Vec<u8>> = TARGETS.iter().flat_map(|t| (t.seeds)()).collect();
    SUITE.check_mutated_seeds(&pool);
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
