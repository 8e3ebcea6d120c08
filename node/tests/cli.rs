//! The `ordo` binary as a user runs it: exit codes, one-line errors, JSON output, key files.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn ordo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(args)
        .output()
        .expect("the ordo binary runs")
}

fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON value")
}

#[test]
fn keys_new_writes_a_private_key_file_and_show_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let path_str = path.to_str().unwrap();

    let created = stdout_json(&ordo(&["keys", "new", "--out", path_str, "--json"]));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(created["path"], path_str);
    assert_eq!(created["address"].as_str().unwrap().len(), 64);

    let shown = stdout_json(&ordo(&["keys", "show", path_str, "--json"]));
    assert_eq!(shown["address"], created["address"]);
    assert_eq!(shown["public_key"], created["public_key"]);
    let text = std::fs::read_to_string(&path).unwrap();
    let secret: serde_json::Value = serde_json::from_str(&text).unwrap();
    let secret = secret["secret_key"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&ordo(&["keys", "show", path_str]).stdout).contains(secret));
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let path_str = path.to_str().unwrap();
    assert!(ordo(&["keys", "new", "--out", path_str]).status.success());

    let again = ordo(&["keys", "new", "--out", path_str]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("already exists"), "{stderr}");

    let missing = ordo(&[
        "keys",
        "show",
        dir.path().join("none").to_str().unwrap(),
        "--json",
    ]);
    assert!(!missing.status.success());
    let error: serde_json::Value = serde_json::from_slice(&missing.stderr).unwrap();
    assert!(error["error"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn every_command_has_help_and_version() {
    for args in [
        &["--help"][..],
        &["keys", "--help"],
        &["keys", "new", "--help"],
        &["keys", "show", "--help"],
        &["run", "--help"],
    ] {
        let output = ordo(args);
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
    let version = ordo(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ordo "));
}

#[test]
fn run_refuses_a_bad_config_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(
        &path,
        "data_dir = \"d\"\ngenesis = \"g.json\"\nvalidator_key = \"v.key\"\n\
         network_key = \"n.key\"\n[network]\nlisten = \"not-a-multiaddr\"\n",
    )
    .unwrap();
    let out = ordo(&["run", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("network.listen"), "{stderr}");

    std::fs::write(
        &path,
        "data_dir = \"d\"\ngenesis = \"g.json\"\nvalidator_key = \"v.key\"\n\
         network_key = \"n.key\"\n[network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("g.json"), "{\"chain_id\": 1}").unwrap();
    let out = ordo(&["run", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fee_sink"), "{stderr}");
}
