//! `ordo transfer`, `ordo swap`, `ordo mint`: one path that signs a payload, submits it and
//! (unless `--no-wait`) follows it until it is committed or expired.
//!
//! The chain id comes from the node's status and the nonce from the sender's account, so a
//! transaction is built for the network it is sent to.
//!
//! A nonce the client read (no `--nonce`) can be stale: the node asked may not have
//! executed the sender's previous transaction yet, sent through another validator. Such a
//! transaction is committed with `bad_nonce` below the account's next nonce: included, not
//! executed, nothing changed or paid, and it can never execute later. The client then signs
//! a fresh one, at most [`MAX_ATTEMPTS`] in all, saying so on stderr, and reports only the
//! last. A nonce the user gave is used once, as given.

use std::time::{Duration, Instant};

use anyhow::Result;
use ordo_types::{keyfile, now_ms, Hash32, KeyPair, Payload, SwapDirection, Transaction};
use serde_json::{json, Value};

use super::endpoint::{Rpc, Target};
use super::errors::ClientError;
use super::follow::{self, text, Outcome};
use super::parse;
use crate::cli::{Direction, MintArgs, SubmitArgs, SwapArgs, TransferArgs};
use crate::output::{self, Output};

/// How long past its expiry a transaction is still waited for: the node calls it expired
/// only once a block stamped after the expiry has executed.
const EXPIRY_GRACE: Duration = Duration::from_secs(15);
/// Transactions signed for one command when the nonce read turns out stale. A retry uses
/// at least the nonce the failed one's block expected, so a second stale read needs another
/// transaction of the sender to land in between; three covers that and stays short.
const MAX_ATTEMPTS: u32 = 3;

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

fn submit(payload: Payload, args: &SubmitArgs, target: &Target, out: &Output) -> Result<()> {
    submit_with(payload, args, target, out, &|_| {})
}

/// Like `submit`, with `decorate` adding to the final report before it is shown (decoded
/// return values, events, revert reasons).
pub fn submit_with(
    payload: Payload,
    args: &SubmitArgs,
    target: &Target,
    out: &Output,
    decorate: &dyn Fn(&mut Value),
) -> Result<()> {
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
    // The lowest nonce a fresh transaction may use: what the stale one's block expected.
    let mut floor = 0;
    let mut attempt = 1;
    // Latency counts from the first submission: a retry is part of what the user waited.
    let mut first_submitted = None;
    loop {
        let nonce = match args.nonce {
            Some(nonce) => nonce,
            None => read_nonce(&rpc, &key)?.max(floor),
        };
        let Sent {
            mut report,
            hash,
            followed,
        } = send_and_follow(
            &payload,
            args,
            &rpc,
            &key,
            (chain_id, nonce),
            &mut first_submitted,
        )?;
        let Some((outcome, latency)) = followed else {
            // --no-wait: accepted is all there is to say.
            out.emit(report, || {
                output::rows(&[
                    ("hash", hash.to_string()),
                    ("status", "pending".into()),
                    ("nonce", nonce.to_string()),
                    ("follow", format!("ordo tx {hash} --wait")),
                ])
            });
            return Ok(());
        };
        if args.nonce.is_none() && attempt < MAX_ATTEMPTS {
            if let Some(expected) = outcome.stale_nonce(nonce) {
                eprintln!(
                    "retrying: transaction {hash} was included with nonce {nonce}, already used \
                     (the account's next was {expected}; {} read a stale account); nothing \
                     changed; sending a fresh transaction (attempt {} of {MAX_ATTEMPTS})",
                    rpc.url(),
                    attempt + 1
                );
                floor = expected;
                attempt += 1;
                continue;
            }
        }
        report["attempts"] = attempt.into();
        decorate(&mut report);
        out.emit(report.clone(), || {
            let mut rows = follow::status_rows(&report);
            if !report["latency_ms"].is_null() {
                rows.push(("latency", format!("{} ms", text(&report["latency_ms"]))));
            }
            output::rows(&rows)
        });
        return outcome.verdict(hash, Some(latency)).map_err(Into::into);
    }
}

/// The sender's next nonce as the node knows it: `next_nonce` (which counts what it
/// accepted and has not executed yet), else `nonce` from a node that predates it.
fn read_nonce(rpc: &Rpc, key: &KeyPair) -> Result<u64, ClientError> {
    let account = rpc.account(&key.address())?;
    account["next_nonce"]
        .as_u64()
        .or_else(|| account["nonce"].as_u64())
        .ok_or_else(|| rpc.bad_answer("an account without a nonce"))
}

/// What became of one signed transaction.
struct Sent {
    /// What the command reports about it: the client's view merged with the node's.
    report: Value,
    hash: Hash32,
    /// Its final outcome and latency; `None` with `--no-wait`.
    followed: Option<(Outcome, Duration)>,
}

/// Signs `payload` for `(chain_id, nonce)`, submits it and, unless `--no-wait`, follows it
/// until it is final. The latency counts from `first_submitted`, set here if unset.
fn send_and_follow(
    payload: &Payload,
    args: &SubmitArgs,
    rpc: &Rpc,
    key: &KeyPair,
    (chain_id, nonce): (u64, u64),
    first_submitted: &mut Option<Instant>,
) -> Result<Sent> {
    let expiry = now_ms() + args.expires_in * 1000;
    let tx = Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        expiry,
        payload: payload.clone(),
    }
    .sign(key);
    let hash = tx.hash();

    let started = Instant::now();
    let first = *first_submitted.get_or_insert(started);
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
        return Ok(Sent {
            report,
            hash,
            followed: None,
        });
    }

    let deadline = started + Duration::from_secs(args.expires_in) + EXPIRY_GRACE;
    let (status, outcome) = follow::wait_until(rpc, &hash, deadline)?;
    let latency = first.elapsed();
    merge_status(&mut report, &status);
    if status["status"] == "committed" {
        report["latency_ms"] = (latency.as_millis() as u64).into();
    }
    Ok(Sent {
        report,
        hash,
        followed: Some((outcome, latency)),
    })
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
