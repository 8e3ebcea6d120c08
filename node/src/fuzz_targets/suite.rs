//! The engine-free checks of a crate's fuzz bodies, one harness for every crate that has
//! some (the node's, and ordo-cli's for the HTTP client), so that all bodies are held to the
//! same rules wherever they live: every seed is accepted, the committed seed corpus is
//! exactly what the seed functions build, every body has its cargo-fuzz binary, and a
//! bounded run of mutated seeds never panics.
//!
//! Invariant: a failure names the target and, for a panic, the input in hex, so that it can
//! be replayed (`fuzz/seeds` or a regression test).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use ordo_types::SeededRng;

use super::{apply, random_edits, Target};

/// The fuzz bodies of one crate.
pub struct Suite {
    /// The package whose tests run the checks: named in the command that rewrites the
    /// committed seeds.
    pub package: &'static str,
    /// The module whose `run` the cargo-fuzz binaries call, as they spell it
    /// (`ordo_node::fuzz_targets`).
    pub module: &'static str,
    pub targets: &'static [Target],
}

/// The cargo-fuzz crate: a folder beside the workspace's members, outside the workspace.
fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// FNV-1a, so that each target gets its own stream of mutations from one run seed.
fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `target` on `input`, turning a panic into one that names the target and the input
/// in hex.
pub fn run_reporting(target: &Target, input: &[u8], how: &str) -> bool {
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

impl Suite {
    /// The target called `name`.
    pub fn target(&self, name: &str) -> Option<&'static Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Runs target `name` on `data`.
    ///
    /// # Panics
    ///
    /// When `name` is not a target of this suite (a fuzz binary naming a body that does
    /// not exist), or when the body finds a bug.
    pub fn run(&self, name: &str, data: &[u8]) -> bool {
        match self.target(name) {
            Some(t) => (t.run)(data),
            None => panic!("no fuzz target called {name} in {}", self.module),
        }
    }

    /// Every target has seeds, and each of them is accepted.
    pub fn check_seeds(&self) {
        for target in self.targets {
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
    }

    /// The committed seed corpus that `scripts/fuzz.sh` starts cargo-fuzz from
    /// (`fuzz/seeds/<target>/seed-<i>`) is exactly what the seed functions build;
    /// `ORDO_WRITE_FUZZ_SEEDS=1` rewrites it after a change.
    pub fn check_seed_corpus(&self) {
        let root = fuzz_dir().join("seeds");
        let rewrite = std::env::var_os("ORDO_WRITE_FUZZ_SEEDS").is_some();
        for target in self.targets {
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
            let mut expected: Vec<(String, Vec<u8>)> = seeds
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("seed-{i}"), s))
                .collect();
            expected.sort();
            assert!(
                committed == expected,
                "{} is out of date: run ORDO_WRITE_FUZZ_SEEDS=1 cargo test -p {} --lib fuzz_targets",
                dir.display(),
                self.package
            );
        }
    }

    /// Every body has its cargo-fuzz binary (a `[[bin]]` in `fuzz/Cargo.toml` and a file in
    /// `fuzz/fuzz_targets/` that runs the body of its name), and no other binary runs a
    /// body of this suite.
    pub fn check_binaries(&self) {
        let fuzz = fuzz_dir();
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        let call = format!("{}::run(", self.module);
        let mut claimed: Vec<String> = binaries()
            .into_iter()
            .filter(|(_, source)| source.contains(&call))
            .map(|(name, _)| name)
            .collect();
        claimed.sort();
        let mut names: Vec<String> = self.targets.iter().map(|t| t.name.to_owned()).collect();
        names.sort();
        assert_eq!(
            claimed, names,
            "fuzz/fuzz_targets has one binary per body of {}",
            self.module
        );
        for target in self.targets {
            let name = target.name;
            assert!(
                manifest.contains(&format!(
                    "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
                )),
                "fuzz/Cargo.toml lacks the [[bin]] {name}"
            );
            let source = std::fs::read_to_string(fuzz.join(format!("fuzz_targets/{name}.rs")));
            assert!(
                source.is_ok_and(|s| s.contains(&format!("{call}\"{name}\", data)"))),
                "fuzz/fuzz_targets/{name}.rs must run the body {name} of {}",
                self.module
            );
        }
    }

    /// The engine-free fuzz run: each target over its seeds and a fixed number of mutated
    /// seeds (`ORDO_FUZZ_ITERATIONS`, default 20,000; `ORDO_FUZZ_SEED` picks the run).
    /// Splices take from `pool`. Prints executions per target; see them with
    /// `-- --nocapture`.
    pub fn check_mutated_seeds(&self, pool: &[Vec<u8>]) {
        let iterations = env_u64("ORDO_FUZZ_ITERATIONS", 20_000);
        let run_seed = env_u64("ORDO_FUZZ_SEED", 0x5eed);
        let started = Instant::now();
        let mut total = 0u64;
        for target in self.targets {
            let seeds = (target.seeds)();
            let mut rng = SeededRng::new(run_seed ^ fnv(target.name));
            let mut accepted = 0u64;
            for seed in &seeds {
                accepted += u64::from(run_reporting(target, seed, "a seed"));
            }
            for i in 0..iterations {
                let edits = random_edits(&mut rng);
                let seed = &seeds[rng.below(seeds.len() as u64) as usize];
                let input = apply(seed, &edits, pool);
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
            "fuzz: {total} executions over {} targets of {} in {:.1} s (run seed {run_seed})",
            self.targets.len(),
            self.module,
            started.elapsed().as_secs_f64()
        );
    }
}

/// Every cargo-fuzz binary, whichever crate's body it runs: its name and its source.
pub fn binaries() -> Vec<(String, String)> {
    std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}
