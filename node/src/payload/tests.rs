//! The payload owner's rules, checked over thousands of seeded schedules.
//!
//! Each seed builds a world: this validator's own batches with proofs that arrive late,
//! twice and out of order; an honest peer whose pushes arrive late, twice and out of
//! order while the chain commits a prefix of its batches (some notices before the push);
//! a peer that crashes partway; a Byzantine peer that pushes batches with any sequence
//! number (two batches for one), and announces commits of batches nobody pushed; a
//! stranger; checked proposals whose lookups end found or not, in any order; execution
//! lags that come and go. The checker then holds the owner to its invariants:
//! - each author's ready digests follow its sequence order;
//! - nothing is reported ready twice, or available twice, or available after ready;
//! - a proposal's digests are reported available only once their lookup found them;
//! - nothing is lost while its author is honest: at the end every own batch, and every
//!   honest peer's pushed batch above its last commit, was reported ready (unless the
//!   chain committed it meanwhile).
//!
//! A control runs the same worlds through a naive owner (each report as its input comes)
//! and requires the checker to catch it.

use std::collections::{HashMap, HashSet};

use ordo_network::BatchInfo;
use ordo_types::{Hash32, KeyPair, PublicKey, SeededRng};

use super::order::{Input, Output, PayloadOrder};

const POOL: usize = 16_384;
const SEEDS: u64 = 2_000;
const FIRST_OWN_SEQ: u64 = 1_000;

fn key(i: u8) -> PublicKey {
    KeyPair::from_seed([i + 1; 32]).public()
}

fn digest(author: u8, seq: u64, variant: u8) -> Hash32 {
    Hash32::digest_parts(b"payload-test\0", &[&[author, variant], &seq.to_le_bytes()])
}

/// Something that orders payload: the real owner, or the control's naive one.
trait Orderer {
    fn handle(&mut self, now_ms: u64, input: Input) -> Output;
}

impl Orderer for PayloadOrder {
    fn handle(&mut self, now_ms: u64, input: Input) -> Output {
        PayloadOrder::handle(self, now_ms, input)
    }
}

/// Reports everything as it comes: the rule the owner replaces.
#[derive(Default)]
struct Naive {
    seen: HashSet<Hash32>,
}

impl Orderer for Naive {
    fn handle(&mut self, _now_ms: u64, input: Input) -> Output {
        let mut out = Output::default();
        match input {
            Input::OwnProof { digest, .. } => out.ready.push(digest),
            Input::PeerStored(info) => out.ready.push(info.digest),
            Input::ProposalNamed(d) => out.fetch = d,
            Input::Fetched {
                digest,
                found: true,
            } => out.available.push(digest),
            _ => {}
        }
        out.ready.retain(|d| self.seen.insert(*d));
        out
    }
}

/// One world: the inputs in time order, and what the checker needs to know of them.
struct World {
    inputs: Vec<(u64, Input)>,
    /// digest -> (author index, sequence number), for every batch of a member.
    batches: HashMap<Hash32, (u8, u64)>,
    /// Batches that must come out ready by the end.
    required: HashSet<Hash32>,
    /// Own batches whose proof came after the hold passed them over: exempt from order.
    late: HashSet<Hash32>,
    committed: HashSet<Hash32>,
    end_ms: u64,
}

fn world(seed: u64) -> World {
    let mut rng = SeededRng::new(seed);
    let mut inputs: Vec<(u64, u64, Input)> = Vec::new();
    let mut order = 0u64;
    let mut at = |inputs: &mut Vec<(u64, u64, Input)>, t: u64, i: Input| {
        order += 1;
        inputs.push((t, order, i));
    };
    let mut batches = HashMap::new();
    let mut required = HashSet::new();
    let mut committed = HashSet::new();
    let mut late = HashSet::new();
    let horizon = 20_000;

    // Own batches: proofs late, twice, out of order; each eventually.
    let own = 1 + rng.below(30);
    for i in 0..own {
        let seq = FIRST_OWN_SEQ + i;
        let d = digest(0, seq, 0);
        batches.insert(d, (0, seq));
        required.insert(d);
        let t = i * 50 + rng.below(400);
        // A few proofs come late; a very few after their successors waited out the hold
        // (those may come out of order, but must come out).
        let t = if rng.chance(0.05) {
            t + 8_000
        } else if rng.chance(0.02) {
            late.insert(d);
            t + 15_000
        } else {
            t
        };
        at(&mut inputs, t, Input::OwnProof { seq, digest: d });
        if rng.chance(0.1) {
            at(
                &mut inputs,
                t + rng.below(500),
                Input::OwnProof { seq, digest: d },
            );
        }
    }

    // An honest peer (1) and one that crashes (2): pushes late, twice, out of order;
    // the chain commits a prefix of each in order, the last commit after every push.
    for author in [1u8, 2] {
        let start = 5_000 + rng.below(1_000_000);
        let count = 2 + rng.below(40);
        let pushed = if author == 2 {
            1 + rng.below(count)
        } else {
            count
        };
        let commits = 1 + rng.below(pushed.min(count - 1));
        let mut last_push = 0;
        for i in 0..count {
            let seq = start + i;
            let d = digest(author, seq, 0);
            batches.insert(d, (author, seq));
            if i >= pushed {
                continue;
            }
            let t = i * 60 + rng.below(600);
            last_push = last_push.max(t);
            let info = BatchInfo {
                author: key(author),
                seq,
                digest: d,
                num_txs: 1,
                gas: 0,
                bytes: 100,
            };
            at(&mut inputs, t, Input::PeerStored(info));
            if rng.chance(0.1) {
                at(&mut inputs, t + rng.below(1_000), Input::PeerStored(info));
            }
        }
        for i in 0..commits {
            let seq = start + i;
            let d = digest(author, seq, 0);
            committed.insert(d);
            let t = if i + 1 == commits {
                last_push + 1 + rng.below(500)
            } else {
                rng.below(last_push + 1)
            };
            at(
                &mut inputs,
                t,
                Input::Committed(vec![(key(author), seq, d)]),
            );
        }
        if author == 1 {
            for i in commits..count {
                required.insert(digest(author, start + i, 0));
            }
        }
    }

    // A Byzantine peer (3): any sequence number, two batches for one, commits of
    // batches nobody pushed; and a stranger (9).
    for _ in 0..rng.below(60) {
        let seq = rng.below(50);
        let variant = rng.below(2) as u8;
        let d = digest(3, seq, variant);
        batches.entry(d).or_insert((3, seq));
        let t = rng.below(horizon);
        if rng.chance(0.7) {
            let info = BatchInfo {
                author: key(3),
                seq,
                digest: d,
                num_txs: 1,
                gas: 0,
                bytes: 100,
            };
            at(&mut inputs, t, Input::PeerStored(info));
        } else {
            committed.insert(d);
            at(&mut inputs, t, Input::Committed(vec![(key(3), seq, d)]));
        }
    }
    for seq in 0..rng.below(5) {
        let info = BatchInfo {
            author: key(9),
            seq,
            digest: digest(9, seq, 0),
            num_txs: 1,
            gas: 0,
            bytes: 100,
        };
        at(&mut inputs, rng.below(horizon), Input::PeerStored(info));
    }

    // Checked proposals: known and unknown digests (each named once), lookups ending in
    // any order.
    let known: Vec<Hash32> = batches.keys().copied().collect();
    let mut named = HashSet::new();
    let mut t = 0;
    for _ in 0..rng.below(8) {
        t += rng.below(2_000);
        let mut digests = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let d = if rng.chance(0.5) && !known.is_empty() {
                known[rng.below(known.len() as u64) as usize]
            } else {
                Hash32::digest(b"unknown\0", &rng.next_u64().to_le_bytes())
            };
            if named.insert(d) {
                digests.push(d);
            }
        }
        at(&mut inputs, t, Input::ProposalNamed(digests.clone()));
        for d in digests {
            let found = rng.chance(0.8);
            at(
                &mut inputs,
                t + 1 + rng.below(1_500),
                Input::Fetched { digest: d, found },
            );
        }
    }

    // Execution lags that come and go; ticks now and then.
    for _ in 0..rng.below(4) {
        let from = rng.below(horizon);
        at(&mut inputs, from, Input::Lagging(true));
        at(&mut inputs, from + rng.below(3_000), Input::Lagging(false));
    }
    for t in (0..horizon).step_by(250) {
        at(&mut inputs, t, Input::Tick);
    }
    let end_ms = horizon + 30_000;
    at(&mut inputs, end_ms, Input::Lagging(false));
    at(&mut inputs, end_ms, Input::Tick);
    inputs.sort_by_key(|(t, o, _)| (*t, *o));
    World {
        inputs: inputs.into_iter().map(|(t, _, i)| (t, i)).collect(),
        batches,
        required,
        late,
        committed,
        end_ms,
    }
}

/// Runs `world` through `orderer`; returns every broken invariant.
fn check(world: &World, orderer: &mut dyn Orderer) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ready: HashSet<Hash32> = HashSet::new();
    let mut available: HashSet<Hash32> = HashSet::new();
    let mut last_seq: HashMap<u8, u64> = HashMap::new();
    let mut fetched_found: HashMap<Hash32, bool> = HashMap::new();
    let mut fetch_order: Vec<Hash32> = Vec::new();
    let mut available_order: Vec<Hash32> = Vec::new();
    // Batches stored here (own with their proof, peers' pushed): a proposal naming one
    // must not wait for anything but its own report.
    // A committed batch may be gone from the store once executed: one named again is not
    // counted here.
    let mut here: HashSet<Hash32> = HashSet::new();
    let mut committed: HashSet<Hash32> = HashSet::new();
    for (now, input) in &world.inputs {
        match input {
            Input::Fetched { digest, found } => {
                fetched_found.insert(*digest, *found);
            }
            Input::OwnProof { digest, .. } if !committed.contains(digest) => {
                here.insert(*digest);
            }
            Input::PeerStored(info) if !committed.contains(&info.digest) => {
                here.insert(info.digest);
            }
            Input::Committed(batches) => {
                for (_, _, d) in batches {
                    here.remove(d);
                    committed.insert(*d);
                }
            }
            _ => {}
        }
        let out = orderer.handle(*now, input.clone());
        fetch_order.extend(out.fetch.iter().copied());
        if let Input::ProposalNamed(named) = input {
            for d in named.iter().filter(|d| here.contains(*d)) {
                let reported = ready.contains(d)
                    || available.contains(d)
                    || out.ready.contains(d)
                    || out.available.contains(d)
                    || out.fetch.contains(d);
                if !reported {
                    problems.push(format!(
                        "{} is here and a proposal names it, but the vote waits (at {now} ms)",
                        d.short()
                    ));
                }
            }
        }
        for d in &out.ready {
            if !ready.insert(*d) {
                problems.push(format!("{} reported ready twice", d.short()));
            }
            if let Some((author, seq)) = world.batches.get(d).filter(|_| !world.late.contains(d)) {
                if let Some(last) = last_seq.insert(*author, *seq) {
                    if *seq <= last {
                        problems.push(format!(
                            "author {author}: batch {seq} reported ready after {last}"
                        ));
                    }
                }
            }
        }
        for d in &out.available {
            if !here.contains(d) {
                available_order.push(*d);
            }
            if ready.contains(d) {
                problems.push(format!("{} reported available after ready", d.short()));
            }
            if !available.insert(*d) {
                problems.push(format!("{} reported available twice", d.short()));
            }
            if fetched_found.get(d) != Some(&true) && !here.contains(d) {
                problems.push(format!("{} reported available but not here", d.short()));
            }
        }
    }
    // Only digests whose lookup was started, or that were here, are made available.
    let started: HashSet<Hash32> = fetch_order.iter().copied().collect();
    for d in &available_order {
        if !started.contains(d) {
            problems.push(format!("{} made available without a lookup", d.short()));
        }
    }
    for d in &world.required {
        if !ready.contains(d) && !world.committed.contains(d) {
            let (author, seq) = world.batches[d];
            problems.push(format!(
                "author {author}'s batch {seq} was never reported ready (end {} ms)",
                world.end_ms
            ));
        }
    }
    problems
}

#[test]
fn the_owner_keeps_its_invariants_over_thousands_of_seeded_worlds() {
    let mut failing = Vec::new();
    let mut reports = (0usize, 0usize);
    for seed in 0..SEEDS {
        let world = world(seed);
        let mut owner = PayloadOrder::new(FIRST_OWN_SEQ, (0..4).map(key), POOL);
        let problems = check(&world, &mut owner);
        reports.0 += world.inputs.len();
        reports.1 += world.required.len();
        if !problems.is_empty() {
            failing.push(format!("seed {seed}: {}", problems.join("; ")));
        }
    }
    println!(
        "{SEEDS} worlds, {} inputs, {} batches required to come out",
        reports.0, reports.1
    );
    for f in failing.iter().take(12) {
        println!("{f}");
    }
    assert!(
        failing.is_empty(),
        "{} failing worlds, first: {}",
        failing.len(),
        failing[0]
    );
}

#[test]
fn control_a_naive_owner_is_caught() {
    let caught = (0..SEEDS)
        .filter(|seed| !check(&world(*seed), &mut Naive::default()).is_empty())
        .count();
    println!("the naive owner broke an invariant in {caught} of {SEEDS} worlds");
    assert!(
        caught > SEEDS as usize / 2,
        "only {caught} worlds caught it"
    );
}
