//! The control for forged block sync: with the defences reverted (`--features
//! insecure-sync`, see `src/control.rs`), the simulator's forging validators must break
//! what the defences protect, and the simulator must say so. Run with
//! `cargo test -p consensus --features insecure-sync --test sync_control`.
//!
//! Forgeries that alter a certificate's parent fork the committed chain; forgeries of
//! signer lists make honest replicas commit one block with two signer lists (the input
//! of leader reputation). Pushed and misattributed responses need requests to ride on,
//! so they are counted, not required.

use ordo_consensus::sim::{run, scenario_seed, Fault, Forgery, SimConfig};

/// Scenarios tried per forgery before the control is declared blind.
const TRIES: u64 = 60;

fn first_violation(kind: Forgery, wanted: &str) -> Option<(u64, String)> {
    (0..TRIES).find_map(|i| {
        let seed = scenario_seed(0x0c04_7201, i);
        let n = [4, 7][(i % 2) as usize];
        let report = run(&SimConfig::new(n, seed, Fault::ForgedSync(kind)));
        report
            .safety_violations
            .iter()
            .find(|v| v.starts_with(wanted))
            .map(|v| (i + 1, v.clone()))
    })
}

#[test]
fn without_the_defences_forged_sync_forks_and_the_simulator_sees_it() {
    let fork = first_violation(Forgery::Certificate, "fork at height");
    println!("certificate: {fork:?}");
    let signers = first_violation(Forgery::Signers, "history divergence");
    println!("signers: {signers:?}");
    let misattributed = first_violation(Forgery::Misattributed, "fork at height");
    println!("misattributed: {misattributed:?}");
    let unrequested = first_violation(Forgery::Unrequested, "fork at height");
    println!("unrequested: {unrequested:?}");
    assert!(
        fork.is_some(),
        "no fork from forged certificates in {TRIES} scenarios"
    );
    assert!(
        signers.is_some(),
        "no divergent signer lists from forged ones in {TRIES} scenarios"
    );
    assert!(
        misattributed.is_some(),
        "no fork from misattributed responses in {TRIES} scenarios"
    );
}
