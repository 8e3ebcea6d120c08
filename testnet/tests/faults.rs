//! The fault suite's short form, as CI runs it: real validator processes on 127.0.0.1
//! killed and restarted, frozen, wiped, partitioned 3|1 and 2|2, and flooded under load;
//! then the suite's own checks (one chain, nothing lost, nothing applied twice, recovery,
//! no panic). This test asserts that the suite ran every fault and that every check held.
//!
//! Needs the `ordo` binary next to `ordo-testnet` (`cargo test --workspace` builds it).

use std::process::Command;

use serde_json::Value;

mod common;
use common::tool;

#[test]
fn validators_survive_kills_pauses_wipes_partitions_and_a_flood() {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("faults.json");
    let output = Command::new(tool())
        .args(["faults", "--json"])
        .arg(&report)
        .arg("--dir")
        .arg(tmp.path().join("testnet"))
        .output()
        .expect("ordo-testnet runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}\n{stdout}");
    assert!(
        output.status.success(),
        "the fault suite failed (exit {:?}); its report is above",
        output.status.code()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();

    // Every kind of fault happened.
    assert!(r["kills"].as_u64().unwrap() >= 3, "kills: {}", r["kills"]);
    assert_eq!(r["pauses"], 1);
    assert_eq!(r["wipes"], 1);
    assert_eq!(r["partitions"], 2);

    // What the suite checked held, on real figures.
    let c = &r["checked"];
    assert_eq!(c["violations"], Value::Array(vec![]), "{c}");
    assert!(
        c["heights"].as_u64().unwrap() > 100,
        "heights: {}",
        c["heights"]
    );
    let accepted = c["accepted"].as_u64().unwrap();
    let settled = c["committed_ok"].as_u64().unwrap()
        + c["committed_failed"].as_u64().unwrap()
        + c["expired"].as_u64().unwrap();
    assert!(accepted > 500 && settled == accepted, "{c}");
    assert_eq!(r["split_commits"], 0, "the 2|2 split committed blocks");
    assert!(r["majority_commits"].as_u64().unwrap() > 0);
    assert!(r["final_recovery_s"].as_f64().unwrap() <= 30.0);

    // The flood was refused or absorbed without starving the honest load or the memory.
    let f = &r["flood"];
    assert!(f["offered"].as_u64().unwrap() > 0);
    assert!(f["honest_tps_during"].as_f64().unwrap() > 0.0, "{f}");
    for rss in f["peak_rss_mib"].as_array().unwrap() {
        let mib = rss.as_f64().expect("every validator ran through the flood");
        assert!(
            mib < 2048.0,
            "a validator grew to {mib} MiB under the flood"
        );
    }
}
