//! The client commands against a real one-validator network: a real `ordo run` process on
//! free 127.0.0.1 ports, driven by the real `ordo` binary with `--testnet-dir`. With
//! `--json` every command, on every exit path, prints exactly one JSON document on stdout.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ordo_cli::http;
use ordo_cli::localnet::{self, LocalnetSpec};
use serde_json::Value;

mod common;
use common::{free_ports, validator_ports};

const CHAIN: u64 = 777;
/// 1,234 coins of 10^18 base units: an amount wider than a u64.
const WIDE: &str = "1234000000000000000000";

/// One validator process, killed when dropped.
struct Validator {
    child: Child,
    rpc: SocketAddr,
    metrics: SocketAddr,
    log: std::path::PathBuf,
}

impl Validator {
    /// Generates a one-validator network in `dir` and starts it.
    fn start(dir: &Path) -> Validator {
        let spec = LocalnetSpec {
            validators: 1,
            chain_id: CHAIN,
            ports: Some(validator_ports(1)),
            bench_accounts: 1,
            pools: 1,
            collections: 1,
            ..LocalnetSpec::default()
        };
        let net = localnet::generate(dir, &spec).unwrap();
        let v = &net.validators[0];
        let mut config = v.config.clone();
        config.execution.threads = 1;
        config.write(&v.config_path).unwrap();
        let log = std::fs::File::create(&v.log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ordo"))
            .args(["run", "--config", v.config_path.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ordo run starts");
        Validator {
            child,
            rpc: v.rpc,
            metrics: v.metrics,
            log: v.log_path.clone(),
        }
    }

    /// Waits until the node answers and has committed a block.
    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let height = http::get(self.rpc, "/v1/status", Duration::from_secs(2))
                .ok()
                .and_then(|r| r.json())
                .and_then(|s| s["height"].as_u64());
            if height.is_some_and(|h| h > 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the validator did not commit a block within {within:?}\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ordo --testnet-dir DIR ARGS…` without any testnet setting from the environment.
fn ordo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("--testnet-dir")
        .arg(dir)
        .args(args)
        .env_remove("ORDO_TESTNET_DIR")
        .output()
        .expect("the ordo binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON on stdout of a command that must have succeeded.
fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    one_json(o)
}

/// The one JSON document on stdout: exactly one, nothing before or after it.
fn one_json(o: &Output) -> Value {
    let text = stdout(o);
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&text)
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

/// A `--json` run that failed with `code`: its one document names the failure (containing
/// `needle`) and its exit status; stderr stays empty.
fn json_fails_with(o: &Output, code: i32, needle: &str) -> Value {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
    let doc = one_json(o);
    assert_eq!(doc["exit_code"], code, "{doc}");
    let error = doc["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "{error:?} lacks {needle:?}");
    assert!(!error.contains('\n'), "{error:?}");
    assert!(stderr(o).is_empty(), "{}", stderr(o));
    doc
}

/// Asserts exit status `code` and a one-line error on stderr containing `needle`.
fn fails_with(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{}{err}", stdout(o));
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

#[test]
fn client_commands_against_one_validator() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let node = Validator::start(&dir);
    node.wait_ready(Duration::from_secs(20));

    // status: the fields scripts rely on.
    let status = ok_json(&ordo(&dir, &["status", "--json"]));
    for field in ["height", "round", "executed_height", "state_root", "peers"] {
        assert!(!status[field].is_null(), "status lacks {field}: {status}");
    }
    assert_eq!(status["chain_id"], CHAIN);
    assert_eq!(status["rpc"], format!("http://{}", node.rpc));
    let text = stdout(&ordo(&dir, &["status"]));
    assert!(text.contains("executed height"), "{text}");

    // A transfer from the dev key to a new key, waited for by default.
    let alice_path = tmp.path().join("alice.key");
    let alice = ok_json(&ordo(
        &dir,
        &[
            "keys",
            "new",
            "--out",
            alice_path.to_str().unwrap(),
            "--json",
        ],
    ));
    let alice_addr = alice["address"].as_str().unwrap().to_string();
    let sent = ok_json(&ordo(
        &dir,
        &["transfer", "--to", &alice_addr, "--amount", WIDE, "--json"],
    ));
    assert_eq!(sent["status"], "committed", "{sent}");
    assert_eq!(sent["success"], true, "{sent}");
    let height = sent["height"].as_u64().expect("a height");
    assert!(sent["latency_ms"].is_u64(), "{sent}");
    let hash = sent["hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);

    // The recipient's balance and the sender's nonce.
    let account = ok_json(&ordo(&dir, &["account", &alice_addr, "--json"]));
    assert_eq!(account["address"], alice_addr);
    // Wider than a u64, and a decimal string in JSON so that no client rounds it.
    assert_eq!(account["balance"], WIDE);
    assert_eq!(account["nonce"], 0);
    let dev_key = dir.join("dev.key");
    let dev = ok_json(&ordo(
        &dir,
        &["account", dev_key.to_str().unwrap(), "--json"],
    ));
    assert_eq!(dev["nonce"], 1, "{dev}");
    let text = stdout(&ordo(&dir, &["account", &alice_addr]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("balance ") && l.ends_with(&format!(" {WIDE}"))),
        "{text}"
    );

    // tx: committed at the transfer's height.
    let tx = ok_json(&ordo(&dir, &["tx", &hash, "--json"]));
    assert_eq!(
        (
            tx["hash"].as_str(),
            tx["status"].as_str(),
            tx["height"].as_u64()
        ),
        (Some(hash.as_str()), Some("committed"), Some(height))
    );
    let text = stdout(&ordo(&dir, &["tx", &hash]));
    assert!(
        text.contains("committed") && text.contains("success"),
        "{text}"
    );

    // block: the latest, and the transfer's by height.
    let latest = ok_json(&ordo(&dir, &["block", "--json"]));
    assert!(latest["height"].as_u64().unwrap() >= height, "{latest}");
    let block = ok_json(&ordo(&dir, &["block", &height.to_string(), "--json"]));
    assert_eq!(block["height"], height);
    assert!(!block["hash"].is_null());
    let text = stdout(&ordo(&dir, &["block", &height.to_string()]));
    assert!(text.contains("state root"), "{text}");
    fails_with(
        &ordo(&dir, &["block", "99999999"]),
        4,
        "no committed block at height 99999999",
    );

    // The same nonce again is refused as too low.
    let again = ordo(
        &dir,
        &[
            "transfer",
            "--to",
            &alice_addr,
            "--amount",
            "1",
            "--nonce",
            "0",
        ],
    );
    fails_with(&again, 4, "nonce too low");

    // More than the balance: committed, but failed, with the reason.
    let too_much = ordo(
        &dir,
        &[
            "transfer",
            "--to",
            &alice_addr,
            "--amount",
            // 2^128 - 1: more than the dev key holds.
            "340282366920938463463374607431768211455",
            "--json",
        ],
    );
    // One document with both the transaction's status and the failure.
    let report = json_fails_with(&too_much, 5, "insufficient balance");
    assert_eq!(
        (
            report["status"].as_str(),
            report["success"].as_bool(),
            report["executed"].as_bool()
        ),
        (Some("committed"), Some(false), Some(true)),
        "{report}"
    );
    assert_eq!(report["kind"], "execution_failed", "{report}");
    let failed_hash = report["hash"].as_str().unwrap().to_string();
    let again = json_fails_with(
        &ordo(&dir, &["tx", &failed_hash, "--json"]),
        5,
        "insufficient balance",
    );
    assert_eq!(again["status"], "committed", "{again}");

    // Swap and mint share the submit path; a swap under its minimum fails with the reason.
    let swap = ok_json(&ordo(
        &dir,
        &[
            "swap",
            "--pool",
            "0",
            "--amount-in",
            "1000",
            "--min-out",
            "1",
            "--direction",
            "a-to-b",
            "--json",
        ],
    ));
    assert_eq!(swap["status"], "committed", "{swap}");
    let greedy = ordo(
        &dir,
        &[
            "swap",
            "--pool",
            "0",
            "--amount-in",
            "1000",
            "--min-out",
            "1000000",
            "--direction",
            "a-to-b",
        ],
    );
    fails_with(&greedy, 5, "min-out");
    let minted = ok_json(&ordo(
        &dir,
        &["mint", "--collection", "0", "--no-wait", "--json"],
    ));
    assert_eq!(minted["status"], "pending", "{minted}");
    let mint_hash = minted["hash"].as_str().unwrap();
    let waited = ok_json(&ordo(&dir, &["tx", mint_hash, "--wait", "--json"]));
    assert_eq!(waited["status"], "committed", "{waited}");
    assert!(waited["height"].is_u64());

    // A hash the node never saw is unknown (not expired), with its own exit status.
    let random = "ab".repeat(32);
    let unknown = ordo(&dir, &["tx", &random, "--json"]);
    let answer = json_fails_with(&unknown, 8, "does not know");
    assert_eq!(answer["status"], "unknown");
    fails_with(&ordo(&dir, &["tx", &random]), 8, "does not know");
    fails_with(&ordo(&dir, &["tx", "xyz"]), 2, "not a transaction hash");

    // More failure paths, each one document with --json.
    json_fails_with(
        &ordo(&dir, &["block", "99999999", "--json"]),
        4,
        "no committed block",
    );
    json_fails_with(
        &ordo(&dir, &["tx", "xyz", "--json"]),
        2,
        "not a transaction hash",
    );
    json_fails_with(
        &ordo(&dir, &["account", "nope", "--json"]),
        2,
        "neither an address",
    );
    json_fails_with(
        &ordo(
            &dir,
            &[
                "transfer",
                "--to",
                &alice_addr,
                "--amount",
                "1",
                "--nonce",
                "0",
                "--json",
            ],
        ),
        4,
        "nonce too low",
    );

    // Two transactions with one nonce: the second is included but not executed, and says
    // so (exit 9, `executed: false`), never as a successful inclusion. Both go in one
    // request, so that the first cannot execute before the second is admitted (sent one
    // after the other, the second was now and then refused `nonce_too_low` instead).
    let next = ok_json(&ordo(
        &dir,
        &["account", dev_key.to_str().unwrap(), "--json"],
    ))["next_nonce"]
        .as_u64()
        .expect("next_nonce");
    let dev = ordo_types::keyfile::read(&dev_key).expect("the dev key");
    let alice: ordo_types::Address = alice_addr.parse().expect("an address");
    let same_nonce: Vec<ordo_types::SignedTransaction> = [5, 6]
        .into_iter()
        .map(|amount| {
            ordo_types::Transaction {
                chain_id: CHAIN,
                sender: dev.public(),
                nonce: next,
                expiry: ordo_types::now_ms() + 60_000,
                payload: ordo_types::Payload::Transfer { to: alice, amount },
            }
            .sign(&dev)
        })
        .collect();
    let r = http::post_bytes(
        node.rpc,
        "/v1/transactions/batch",
        &ordo_types::codec::encode(&same_nonce),
        Duration::from_secs(10),
    )
    .expect("the batch is answered");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (first_hash, second_hash) = (
        same_nonce[0].hash().to_string(),
        same_nonce[1].hash().to_string(),
    );
    // The node counts what it accepted and has not executed yet, once: the next nonce is
    // one above, whether the pair is still pending or already executed.
    let account = ok_json(&ordo(
        &dir,
        &["account", dev_key.to_str().unwrap(), "--json"],
    ));
    assert_eq!(account["next_nonce"], next + 1, "{account}");
    ok_json(&ordo(&dir, &["tx", &first_hash, "--wait", "--json"]));
    let stale = ordo(&dir, &["tx", &second_hash, "--wait", "--json"]);
    let doc = json_fails_with(&stale, 9, "not executed");
    assert_eq!(
        (
            doc["status"].as_str(),
            doc["executed"].as_bool(),
            doc["execution_status"].as_str(),
            doc["nonce_already_used"].as_bool(),
        ),
        (
            Some("committed"),
            Some(false),
            Some("bad_nonce"),
            Some(true)
        ),
        "{doc}"
    );
    assert_eq!(doc["kind"], "not_executed");
    assert!(
        doc["error"].as_str().unwrap().contains("already used"),
        "{doc}"
    );
    let text = ordo(&dir, &["tx", &second_hash]);
    assert!(
        stdout(&text).contains("included, not executed")
            && stdout(&text).contains("nothing changed"),
        "{}",
        stdout(&text)
    );
    fails_with(&text, 9, "fresh nonce");

    // The metrics port serves metrics and health, and nothing that changes state.
    let r = http::get(node.metrics, "/metrics", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("ordo_"));
    assert_eq!(
        http::get(node.metrics, "/health", Duration::from_secs(5))
            .unwrap()
            .status,
        200
    );
    let post = http::post_json(
        node.metrics,
        "/v1/transactions",
        &serde_json::json!({}),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(post.status, 404, "{}", String::from_utf8_lossy(&post.body));
    for path in ["/v1/status", "/v1/admin/partition"] {
        let r = http::get(node.metrics, path, Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 404, "{path}");
    }

    // --rpc reaches the same node in either spelling.
    for url in [format!("http://{}", node.rpc), node.rpc.to_string()] {
        let s = ok_json(&ordo(tmp.path(), &["--rpc", &url, "status", "--json"]));
        assert_eq!(s["chain_id"], CHAIN);
    }
    eprintln!("client test took {:?}", started.elapsed());
}

#[test]
fn a_closed_port_is_no_node_at_once() {
    let port = free_ports(1)[0];
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = ordo(
        tmp.path(),
        &[
            "--rpc",
            &format!("127.0.0.1:{port}"),
            "account",
            &"00".repeat(20),
        ],
    );
    fails_with(&out, 3, "no node answers");
    assert!(stderr(&out).contains("ordo testnet up"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let out = ordo(
        tmp.path(),
        &["--rpc", &format!("127.0.0.1:{port}"), "status", "--json"],
    );
    assert_eq!(out.status.code(), Some(3));
    let error = json_fails_with(&out, 3, "no node answers");
    assert_eq!(error["kind"], "no_node");
}

#[test]
fn without_a_testnet_the_client_says_how_to_get_one() {
    let tmp = tempfile::tempdir().unwrap();
    fails_with(&ordo(tmp.path(), &["status"]), 3, "ordo testnet up");
    let to = "11".repeat(20);
    fails_with(
        &ordo(tmp.path(), &["transfer", "--to", &to, "--amount", "1"]),
        2,
        "--key FILE",
    );
    fails_with(
        &ordo(tmp.path(), &["--rpc", "https://127.0.0.1:1", "status"]),
        2,
        "plain HTTP",
    );
}

#[test]
fn help_lists_every_command_and_the_exit_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    let help = stdout(&ordo(tmp.path(), &["--help"]));
    for command in [
        "testnet", "bench", "account", "transfer", "swap", "mint", "tx", "block", "status",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "--help lacks {command}\n{help}"
        );
    }
    assert!(help.contains("Exit status"), "{help}");
    for command in [
        "account", "transfer", "swap", "mint", "tx", "block", "status",
    ] {
        let out = ordo(tmp.path(), &[command, "--help"]);
        assert!(out.status.success(), "{command}");
        assert!(stdout(&out).contains("Usage:"), "{command}");
    }
}

/// `ordo testnet` runs `ordo-testnet` when it is built next to `ordo`, else says to build it;
/// which one holds depends on what was built before this test, so either is accepted.
#[test]
fn testnet_is_delegated_to_ordo_testnet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(["testnet", "--help"])
        .env("ORDO_TESTNET_DIR", tmp.path())
        .output()
        .unwrap();
    let tool = Path::new(env!("CARGO_BIN_EXE_ordo")).with_file_name("ordo-testnet");
    if tool.is_file() {
        assert!(out.status.success(), "{}", stderr(&out));
        // The usage line of ordo-testnet's own `testnet` command, not of ordo's stub.
        assert!(
            stdout(&out).contains("Usage: ordo testnet <COMMAND>"),
            "{}",
            stdout(&out)
        );
    } else {
        fails_with(&out, 1, "cargo build --release --workspace");
    }
}
