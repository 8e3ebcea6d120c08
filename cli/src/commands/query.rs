//! `ordo account`, `ordo tx`, `ordo block`, `ordo status`: read-only questions to a node.
//! With `--json` each prints the node's own answer (plus `rpc` for `status`).

use std::time::{Duration, Instant};

use anyhow::Result;
use ordo_types::now_ms;
use serde_json::Value;

use super::endpoint::Target;
use super::follow::{self, text};
use super::parse;
use crate::cli::{AccountArgs, BlockArgs, TxArgs};
use crate::output::{self, Output};

pub fn account(args: &AccountArgs, target: &Target, out: &Output) -> Result<()> {
    let address = parse::address(&args.address, "ADDR")?;
    let rpc = target.connect()?;
    let account = rpc.account(&address)?;
    out.emit(account.clone(), || {
        output::rows(&[
            ("address", text(&account["address"])),
            ("balance", text(&account["balance"])),
            ("nonce", text(&account["nonce"])),
            ("next nonce", text(&account["next_nonce"])),
            ("as of height", text(&account["height"])),
        ])
    });
    Ok(())
}

pub fn tx(args: &TxArgs, target: &Target, out: &Output) -> Result<()> {
    let hash = parse::hash(&args.hash)?;
    let rpc = target.connect()?;
    let started = Instant::now();
    let (status, outcome) = if args.wait {
        follow::wait_until(&rpc, &hash, started + Duration::from_secs(args.timeout))?
    } else {
        follow::status_now(&rpc, &hash)?
    };
    // A committed transaction is shown whole: sender, nonce, payload, for either kind.
    let mut status = status;
    if status["status"] == "committed" {
        let whole = rpc.get(&format!("/v1/transactions/{hash}?transaction=true"))?;
        status["transaction"] = whole["transaction"].clone();
    }
    out.emit(status.clone(), || {
        output::rows(&follow::status_rows(&status))
    });
    let waited = args.wait.then(|| started.elapsed());
    outcome.verdict(hash, waited).map_err(Into::into)
}

pub fn block(args: &BlockArgs, target: &Target, out: &Output) -> Result<()> {
    let rpc = target.connect()?;
    let path = match args.height {
        Some(h) => format!("/v1/blocks/{h}"),
        None => "/v1/blocks/latest".to_string(),
    };
    let block = rpc.get(&path)?;
    out.emit(block.clone(), || block_text(&block));
    Ok(())
}

fn block_text(block: &Value) -> String {
    let batches = block["batches"].as_array().map_or(0, Vec::len);
    let time = match block["timestamp_ms"].as_u64() {
        Some(ms) => {
            format!(
                "{} ({:.1} s ago)",
                utc(ms),
                now_ms().saturating_sub(ms) as f64 / 1000.0
            )
        }
        None => "-".into(),
    };
    let executed = if block["executed"].as_bool() == Some(true) {
        "yes"
    } else {
        "not yet"
    };
    output::rows(&[
        ("height", text(&block["height"])),
        ("hash", text(&block["hash"])),
        ("parent", text(&block["parent"])),
        ("round", text(&block["round"])),
        ("epoch", text(&block["epoch"])),
        ("author", format!("validator {}", text(&block["author"]))),
        ("time", time),
        ("batches", batches.to_string()),
        ("certified round", text(&block["certified_round"])),
        ("executed", executed.into()),
        ("state root", text(&block["state_root"])),
    ])
}

pub fn status(target: &Target, out: &Output) -> Result<()> {
    let rpc = target.connect()?;
    let mut status = rpc.get("/v1/status")?;
    status["rpc"] = rpc.url().into();
    let yes_no = |v: &Value| {
        if v.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
        .to_string()
    };
    out.emit(status.clone(), || {
        output::rows(&[
            ("rpc", text(&status["rpc"])),
            ("chain id", text(&status["chain_id"])),
            ("height", text(&status["height"])),
            ("round", text(&status["round"])),
            ("executed height", text(&status["executed_height"])),
            ("state root", text(&status["state_root"])),
            ("peers", text(&status["peers"])),
            ("peer id", text(&status["peer_id"])),
            ("syncing", yes_no(&status["syncing"])),
            ("sync phase", text(&status["sync"]["phase"])),
            (
                "behind",
                format!(
                    "{} rounds, {} blocks to execute",
                    text(&status["sync"]["rounds_behind"]),
                    text(&status["sync"]["blocks_to_execute"])
                ),
            ),
            (
                "caught up on",
                format!("{} blocks", text(&status["sync"]["catch_up_blocks"])),
            ),
            ("voting", yes_no(&status["voting"])),
            (
                "mempool",
                format!("{} transactions", text(&status["mempool"])),
            ),
        ])
    });
    Ok(())
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss.mmm UTC` (proleptic Gregorian calendar).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date, counted in 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(super::utc(1_735_689_599_999), "2024-12-31 23:59:59.999 UTC");
    }
}
