//! Micro-benchmark of the primitives every transaction pays for: signature checks (one at
//! a time, in batches of 64 and 1,024, and in batches of 16 to 1,024 with the sender keys
//! already decompressed, as validators cache them), canonical encoding and decoding, and hashing.
//!
//! `cargo run --release -p ordo-types --bin crypto-bench [-- --json] [--seconds S]`
//!
//! Prints ns/op per operation; batch rows also give ns per signature. Single-threaded:
//! figures are per core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ordo_types::{Address, KeyPair, Payload, SignedTransaction, Transaction};

struct Row {
    name: String,
    ns_per_op: f64,
    per_signature: Option<f64>,
}

/// Runs `op` repeatedly for about `budget` and returns nanoseconds per call.
fn measure(budget: Duration, mut op: impl FnMut()) -> f64 {
    // Warm up and find an iteration count that fills roughly a tenth of the budget.
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            op();
        }
        if start.elapsed() > budget / 10 {
            break;
        }
        iterations *= 2;
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iterations {
            op();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / iterations as f64);
    }
    best
}

fn sample_transactions(n: usize) -> Vec<SignedTransaction> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = KeyPair::from_seed(seed);
            Transaction {
                chain_id: 1,
                sender: key.public(),
                nonce: i as u64,
                expiry: u64::MAX,
                payload: Payload::Transfer {
                    to: Address([7; 20]),
                    amount: 10,
                },
            }
            .sign(&key)
        })
        .collect()
}

fn main() {
    let mut json = false;
    let mut seconds = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage("--seconds needs a number"))
            }
            "-h" | "--help" => {
                println!("usage: crypto-bench [--json] [--seconds S]\n\nMeasures ns/op of signature verification (single, batches of 64 and 1024, and batches of 16 to 1024 with sender keys already decompressed), Ethereum sender recovery, transaction encode/decode and hashing on one core.");
                return;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let budget = Duration::from_secs_f64(seconds);
    let txs = sample_transactions(1024);
    let mut rows = Vec::new();

    let one = &txs[0];
    rows.push(Row {
        name: "crypto::verify/single".into(),
        ns_per_op: measure(budget, || black_box(one).verify().unwrap()),
        per_signature: None,
    });
    for n in [64usize, 1024] {
        let batch = &txs[..n];
        let ns = measure(budget, || {
            SignedTransaction::verify_many(black_box(batch)).unwrap()
        });
        rows.push(Row {
            name: format!("crypto::verify_batch/n={n}"),
            ns_per_op: ns,
            per_signature: Some(ns / n as f64),
        });
    }
    // What a validator pays once sender keys are cached (decompressed): the batch size is
    // then what decides the cost per signature.
    for n in [16usize, 64, 128, 256, 512, 1024] {
        let batch = &txs[..n];
        let keys: Vec<ed25519_dalek::VerifyingKey> = batch
            .iter()
            .map(|t| t.as_ordo().expect("an Ordo transaction"))
            .map(|t| ed25519_dalek::VerifyingKey::from_bytes(&t.tx.sender.0).unwrap())
            .collect();
        let hashes: Vec<_> = batch.iter().map(SignedTransaction::hash).collect();
        let messages: Vec<&[u8]> = hashes.iter().map(|h| h.as_bytes().as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> = batch
            .iter()
            .map(|t| t.as_ordo().expect("an Ordo transaction"))
            .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
            .collect();
        let ns = measure(budget, || {
            ed25519_dalek::verify_batch(black_box(&messages), &signatures, &keys).unwrap()
        });
        rows.push(Row {
            name: format!("crypto::verify_batch_cached_keys/n={n}"),
            ns_per_op: ns,
            per_signature: Some(ns / n as f64),
        });
    }
    // An Ethereum transaction's sender is recovered (secp256k1), one at a time: decoding
    // and recovery from fresh bytes each time, as a validator meets them.
    let key = ordo_types::EthKey::from_seed(b"crypto-bench");
    let raw = key.sign_raw(ordo_types::ethereum::eip1559(
        1,
        0,
        Some(ordo_types::Address([1; 20])),
        1,
        vec![],
        21_000,
        1,
    ));
    rows.push(Row {
        name: "crypto::eth_decode".into(),
        ns_per_op: measure(budget, || {
            black_box(ordo_types::EthTransaction::from_raw(black_box(raw.clone())).unwrap());
        }),
        per_signature: None,
    });
    let eth = ordo_types::EthTransaction::from_raw(raw).unwrap();
    rows.push(Row {
        name: "crypto::eth_recover/single".into(),
        ns_per_op: measure(budget, || {
            black_box(black_box(&eth).recover_uncached().unwrap());
        }),
        per_signature: None,
    });
    let bytes = one.encode();
    rows.push(Row {
        name: "tx::encode".into(),
        ns_per_op: measure(budget, || {
            black_box(black_box(one).encode());
        }),
        per_signature: None,
    });
    rows.push(Row {
        name: "tx::decode".into(),
        ns_per_op: measure(budget, || {
            black_box(SignedTransaction::decode(black_box(&bytes)).unwrap());
        }),
        per_signature: None,
    });
    rows.push(Row {
        name: "tx::hash".into(),
        ns_per_op: measure(budget, || {
            black_box(black_box(one).hash());
        }),
        per_signature: None,
    });

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if json {
        for row in &rows {
            let mut line = format!(
                "{{\"name\":\"{}\",\"value\":{:.1},\"unit\":\"ns/op\",\"cores\":{cores}",
                row.name, row.ns_per_op
            );
            if let Some(per) = row.per_signature {
                line.push_str(&format!(",\"ns_per_signature\":{per:.1}"));
            }
            line.push('}');
            println!("{line}");
        }
    } else {
        println!(
            "one thread; machine has {cores} cores; tx encoding is {} bytes",
            bytes.len()
        );
        println!("{:<42} {:>14} {:>16}", "operation", "ns/op", "ns/signature");
        for row in &rows {
            let per = row
                .per_signature
                .map_or_else(|| "-".to_string(), |p| format!("{p:.0}"));
            println!("{:<42} {:>14.0} {:>16}", row.name, row.ns_per_op, per);
        }
    }
}

fn usage(message: &str) -> ! {
    eprintln!("crypto-bench: {message}\nusage: crypto-bench [--json] [--seconds S]");
    std::process::exit(2);
}
