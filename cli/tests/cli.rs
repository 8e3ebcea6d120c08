//! The `ordo` binary as a user runs it: exit codes, one-line errors, JSON output, key files.
//! With `--json`, stdout carries exactly one JSON document whichever way a command ends.

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
    one_document(output)
}

/// The one JSON document on stdout; fails if there are none, several or trailing text.
fn one_document(output: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}"));
    assert_eq!(
        docs.len(),
        1,
        "stdout holds {} documents: {text}",
        docs.len()
    );
    docs.into_iter().next().unwrap()
}

/// A `--json` failure: one document on stdout with the reason and exit status, nothing
/// on stderr.
fn json_failure(output: &Output, code: i32) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    let error = one_document(output);
    assert_eq!(error["exit_code"], code, "{error}");
    assert!(
        error["error"].as_str().is_some_and(|e| !e.contains('\n')),
        "{error}"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    error
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
    // The one account space's 20-byte address, as Ethereum tools print it.
    let address = created["address"].as_str().unwrap();
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );

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
    let error = json_failure(&missing, 1);
    assert!(error["error"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn usage_errors_with_json_are_one_document() {
    for args in [
        &["--json"][..],
        &["--json", "bogus"],
        &["transfer", "--amount", "x", "--json"],
        &["tx", "--json"],
        &["--json", "block", "not-a-height"],
    ] {
        let error = json_failure(&ordo(args), 2);
        assert_eq!(error["kind"], "bad_input", "{args:?}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains("ordo --help"),
            "{error}"
        );
    }
    // Help and version stay text, and succeed.
    let help = ordo(&["--json", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
    // Without --json a usage error is clap's text on stderr, as before.
    let plain = ordo(&["bogus"]);
    assert_eq!(plain.status.code(), Some(2));
    assert!(plain.stdout.is_empty());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("bogus"));
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
