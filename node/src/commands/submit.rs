//! `ordo transfer`, `ordo swap`, `ordo mint`: one path that signs a payload, submits it and
//! (unless `--no-wait`) follows it until it is committed or expired.
//!
//! The chain id comes from the node's status and the nonce from the sender's account, so a
//! transaction is built for the network it is sent to.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use ordo_types::{keyfile, Payload, SwapDirection, Transaction};
use serde_json::{json, Value};

use super::endpoint::Target;
use super::follow::{self, text};
use super::parse;
use crate::cli::{Direction, MintArgs, SubmitArgs, SwapArgs, TransferArgs};
use crate::output::{self, Output};

/// How long past its expiry a transaction is still waited for: the node calls it expired
/// only once a block stamped after the expiry has executed.
const EXPIRY_GRACE: Duration = Duration::from_secs(15);

pub fn transfer(args: &TransferArgs, target: &Target, out: &Output) -> Result<()> {
    let to = parse::address(&args.to, "--to")?;
    let payload = Payload::Transfer {
        to,
        amount: args.amount,
    };
    submit(payload, &args.submit, target, out)
}

pub fn swap(args: &SwapArgs, target: &Target, out: &Output) -> Result<()> {
    let payload = Payload::Swap {
        pool: args.pool,
        amount_in: args.amount_in,
        min_out: args.min_out,
        direction: match args.direction {
            Direction::AToB => SwapDirection::AToB,
            Direction::BToA => SwapDirection::BToA,
        },
    };
    submit(payload, &args.submit, target, out)
}

pub fn mint(args: &MintArgs, target: &Target, out: &Output) -> Result<()> {
    let payload = Payload::Mint {
        collection: args.collection,
    };
    submit(payload, &args.submit, target, out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn submit(payload: Payload, args: &SubmitArgs, target: &Target, out: &Output) -> Result<()> {
    let key_path = match &args.key {
        Some(path) => path.clone(),
        None => target.dev_key()?,
    };
    let key = keyfile::read(&key_path)?;
    let rpc = target.connect()?;

    let status = rpc.get("/v1/status")?;
    let chain_id = status["chain_id"]
        .as_u64()
        .ok_or_else(|| rpc.bad_answer("a status without chain_id"))?;
    let nonce = match args.nonce {
        Some(nonce) => nonce,
        None => rpc.get(&format!("/v1/accounts/{}", key.address()))?["nonce"]
            .as_u64()
            .ok_or_else(|| rpc.bad_answer("an account without a nonce"))?,
    };
    let expiry = now_ms() + args.expires_in * 1000;
    let tx = Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        expiry,
        payload,
    }
    .sign(&key);
    let hash = tx.hash();

    let started = Instant::now();
    let accepted = rpc.submit(&tx)?;
    if accepted["hash"] != hash.to_string() {
        return Err(rpc
            .bad_answer(format!("accepted {} as {}", hash, accepted["hash"]))
            .into());
    }
    let mut report = json!({
        "hash": hash,
        "status": "pending",
        "sender": key.address(),
        "nonce": nonce,
        "expiry": expiry,
    });
    if args.no_wait {
        out.emit(report, || {
            output::rows(&[
                ("hash", hash.to_string()),
                ("status", "pending".into()),
                ("nonce", nonce.to_string()),
                ("follow", format!("ordo tx {hash} --wait")),
            ])
        });
        return Ok(());
    }

    let deadline = started + Duration::from_secs(args.expires_in) + EXPIRY_GRACE;
    let (status, outcome) = follow::wait_until(&rpc, &hash, deadline)?;
    let latency = started.elapsed();
    merge_status(&mut report, &status);
    if status["status"] == "committed" {
        report["latency_ms"] = (latency.as_millis() as u64).into();
    }
    out.emit(report.clone(), || {
        let mut rows = follow::status_rows(&report);
        if !report["latency_ms"].is_null() {
            rows.push(("latency", format!("{} ms", text(&report["latency_ms"]))));
        }
        output::rows(&rows)
    });
    outcome.verdict(hash, Some(latency)).map_err(Into::into)
}

/// Copies the node's view of the transaction (status, height, result, fee) into `report`.
fn merge_status(report: &mut Value, status: &Value) {
    if let (Some(report), Some(status)) = (report.as_object_mut(), status.as_object()) {
        for (k, v) in status {
            if k != "hash" {
                report.insert(k.clone(), v.clone());
            }
        }
    }
}
