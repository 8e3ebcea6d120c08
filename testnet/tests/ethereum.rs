//! Ethereum tools against a local testnet, unchanged: ethers.js (a real client library,
//! from `contracts/node_modules`) drives four real `ordo run` processes through the
//! JSON-RPC of validator 0 with the standard development accounts, and every validator
//! then serves the same receipts and agrees on the state root.
//!
//! Needs Node.js and `(cd contracts && npm ci)`, which `scripts/test.sh` runs first, and
//! the `ordo` binary next to `ordo-testnet` (`cargo build -p ordo-cli --bin ordo`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Signature, U256};
use ordo_testnet::ports::find_free_base;
use ordo_testnet::testnet::Testnet;
use ordo_types::ethereum::eip1559;
use ordo_types::{Address, EthKey};
use serde_json::{json, Value};

mod common;
use common::tool;

/// The longest the client script may take (it waits for about six commits).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(net) = Testnet::open(&self.0) {
            net.down(Duration::from_secs(10));
        }
    }
}

fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// One JSON-RPC request (or a batch) over plain HTTP.
fn post(url: &str, body: &Value) -> Value {
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .expect("an http://IP:PORT URL");
    let response = ordo_cli::http::post_json(addr, "/", body, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    response
        .json()
        .unwrap_or_else(|| panic!("POST {url}: the answer is not JSON"))
}

fn rpc(url: &str, method: &str, params: Value) -> Value {
    post(
        url,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }),
    )
}

#[test]
fn ethers_js_deploys_and_calls_a_token_and_every_validator_agrees() {
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node_ok,
        "Node.js is missing: scripts/test.sh installs it (scripts/ensure-deps.sh --contracts)"
    );
    assert!(
        contracts_dir().join("node_modules/ethers").is_dir(),
        "ethers.js is missing: run `(cd contracts && npm ci)` (scripts/test.sh does)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let _cleanup = Cleanup(dir.clone());
    let base = find_free_base(4).unwrap().to_string();
    let up = Command::new(tool())
        .args([
            "--json",
            "testnet",
            "up",
            "--validators",
            "4",
            "--accounts",
            "10",
        ])
        .arg("--dir")
        .arg(&dir)
        .args(["--port-base", &base])
        .output()
        .expect("ordo-testnet runs");
    assert!(
        up.status.success(),
        "testnet up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let up: Value = serde_json::from_slice(&up.stdout).expect("one JSON document");
    let url = up["json_rpc"].as_str().expect("a JSON-RPC URL").to_string();
    let chain_id = up["chain_id"].as_u64().expect("a chain id");
    let dev = up["dev_accounts"].to_string();

    // The client, bounded in time.
    let mut child = Command::new("node")
        .arg("test/eth_client.mjs")
        .args([&url, &chain_id.to_string(), &dev])
        .current_dir(contracts_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the ethers.js client did not finish within {CLIENT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "the ethers.js client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .as_bytes(),
    )
    .expect("the client prints one JSON line");
    let payment = report["payment"].as_str().unwrap();
    let deploy = report["deploy"].as_str().unwrap();
    let transfer = report["transfer"].as_str().unwrap();
    let token = report["token"].as_str().unwrap();
    let block = report["block"].as_u64().unwrap();

    // Every validator serves the same receipt and the token's code, from its own state.
    let urls: Vec<String> = up["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rpc"].as_str().unwrap().to_string())
        .collect();
    let mut roots = Vec::new();
    let mut receipts: Vec<Value> = Vec::new();
    for url in &urls {
        // Every receipt of the client's transactions, the same on every validator.
        for (i, hash) in [deploy, transfer, payment].iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(30);
            let receipt = loop {
                let r = rpc(url, "eth_getTransactionReceipt", json!([hash]));
                if !r["result"].is_null() || Instant::now() >= deadline {
                    break r["result"].clone();
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            assert_eq!(receipt["status"], "0x1", "{url}: {receipt}");
            match receipts.get(i) {
                Some(first) => assert_eq!(&receipt, first, "{url} differs on {hash}"),
                None => receipts.push(receipt),
            }
        }
        assert_eq!(receipts[2]["blockNumber"], format!("{block:#x}"), "{url}");
        let code = rpc(url, "eth_getCode", json!([token, "latest"]));
        assert!(code["result"].as_str().unwrap().len() > 2, "{url}: {code}");
        let at = rpc(
            url,
            "eth_getBlockByNumber",
            json!([format!("{block:#x}"), false]),
        );
        roots.push(at["result"]["stateRoot"].clone());
    }
    assert!(
        roots.iter().all(|r| r == &roots[0] && r.as_str().is_some()),
        "state roots at block {block} differ: {roots:?}"
    );

    // Ordo's own CLI sees the same transactions, from another validator: the payment whole
    // (an Ethereum transaction from the first development account) and carol's balance.
    let ordo = tool().with_file_name("ordo");
    let cli = |args: &[&str]| -> Value {
        let out = Command::new(&ordo)
            .args(["--json", "--rpc", &urls[2]])
            .args(args)
            .output()
            .expect("ordo runs");
        assert!(
            out.status.success(),
            "ordo {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    };
    let shown = cli(&["tx", payment]);
    assert_eq!(shown["status"], "committed", "{shown}");
    assert_eq!(shown["transaction"]["kind"], "ethereum", "{shown}");
    assert_eq!(shown["transaction"]["type"], 2, "{shown}");
    let sender = shown["transaction"]["sender"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert_eq!(
        sender,
        up["dev_accounts"][0]["address"]
            .as_str()
            .unwrap()
            .to_lowercase()
    );
    assert_eq!(
        shown["transaction"]["payload"]["value"], "1500000000000000000",
        "{shown}"
    );
    let carol = cli(&["account", report["carol"].as_str().unwrap()]);
    assert_eq!(carol["balance"], "10001500000000000000000", "{carol}");

    // What clients match on: bytes that are no transaction, an unknown method, a batch
    // (answered in order, each with its id).
    for garbage in ["0x02", "0xf8ff00", "0x", "0xzz"] {
        let answer = rpc(&urls[1], "eth_sendRawTransaction", json!([garbage]));
        assert!(answer["error"]["code"].is_i64(), "{garbage}: {answer}");
        assert!(
            answer["error"]["message"].is_string(),
            "{garbage}: {answer}"
        );
    }
    let foreign = EthKey::from_seed(b"another chain").sign_raw(eip1559(
        chain_id + 1,
        0,
        Some(Address([1; 20])),
        0,
        vec![],
        21_000,
        1,
    ));
    let foreign: String = foreign.iter().map(|b| format!("{b:02x}")).collect();
    let foreign = format!("0x{foreign}");
    let wrong_chain = rpc(&urls[1], "eth_sendRawTransaction", json!([foreign]));
    assert!(
        wrong_chain["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid chain id"),
        "{wrong_chain}"
    );
    // A bad signature, in the malleable form (the high-s twin of a valid one, from which
    // the same key recovers, but which EIP-2 forbids) and a plainly broken one (r zero).
    let tx = eip1559(chain_id, 0, Some(Address([1; 20])), 0, vec![], 21_000, 1);
    let raw = EthKey::from_seed(b"malleable").sign_raw(tx.clone());
    let Ok(TxEnvelope::Eip1559(signed)) = TxEnvelope::decode_2718_exact(&raw) else {
        panic!("an EIP-1559 envelope");
    };
    let sig = *signed.signature();
    // The order of secp256k1's group.
    let n: U256 = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        .parse()
        .unwrap();
    for (what, forged) in [
        ("high-s", Signature::new(sig.r(), n - sig.s(), !sig.v())),
        ("r zero", Signature::new(U256::ZERO, sig.s(), sig.v())),
    ] {
        let bytes = TxEnvelope::from(tx.clone().into_signed(forged)).encoded_2718();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let answer = rpc(
            &urls[1],
            "eth_sendRawTransaction",
            json!([format!("0x{hex}")]),
        );
        assert_eq!(answer["error"]["code"], -32000, "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("invalid sender"),
            "{what}: {answer}"
        );
    }

    // Too many requests in one batch, and a body over the limit: refused, and the
    // validator goes on answering.
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_chainId" }))
        .collect();
    let refused = post(&urls[1], &Value::Array(too_many));
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let huge = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                       "params": [format!("0x{}", "00".repeat(3 << 20))] });
    let refused = post(&urls[1], &huge);
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let still = rpc(&urls[1], "eth_chainId", json!([]));
    assert_eq!(still["result"], format!("{chain_id:#x}"), "{still}");
    let unknown = rpc(&urls[2], "eth_mine", json!([]));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let batch = post(
        &urls[3],
        &json!([
            { "jsonrpc": "2.0", "id": 7, "method": "eth_chainId" },
            { "jsonrpc": "2.0", "id": 8, "method": "eth_blockNumber", "params": [] },
        ]),
    );
    assert_eq!(batch[0]["id"], 7, "{batch}");
    assert_eq!(batch[0]["result"], format!("{chain_id:#x}"), "{batch}");
    assert_eq!(batch[1]["id"], 8, "{batch}");
    assert!(
        batch[1]["result"].as_str().unwrap().starts_with("0x"),
        "{batch}"
    );
}
