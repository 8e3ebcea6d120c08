//! Following a transaction: the node's status answer read as an outcome, the long-poll
//! until it is final, and the outcome turned into the command's exit.
//!
//! A transaction is final once committed (successfully or not) or expired; "unknown" means
//! the node never saw it, which is not the same as expired. A committed transaction that
//! failed a precondition (a nonce already used, a fee it cannot pay) was included but not
//! executed: nothing changed and nothing was paid, and it is reported as such, never as a
//! successful inclusion.

use std::time::{Duration, Instant};

use ordo_types::Hash32;
use serde_json::Value;

use super::endpoint::Rpc;
use super::errors::ClientError;

/// The longest one long-poll asks the node to hold; nodes cap it too (30 s by default).
const MAX_POLL: Duration = Duration::from_secs(25);
/// Slack on top of a poll's wait for the answer to arrive.
const POLL_SLACK: Duration = Duration::from_secs(10);
/// If the node answers a poll sooner than this without news, pause before the next one,
/// so that a node configured with short waits is not hammered.
const MIN_POLL: Duration = Duration::from_millis(100);

/// Execution statuses of transactions that were included but not executed (see the table
/// in `ordo_execution::receipt`), for a node that does not say `executed` itself.
const NOT_EXECUTED: [&str; 5] = [
    "wrong_chain",
    "expired",
    "bad_nonce",
    "compute_limit_exceeded",
    "cannot_pay_fee",
];

/// What the node says about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        height: u64,
    },
    /// Executed: the fee was paid and the nonce used, but the payload failed.
    Failed {
        height: u64,
        reason: String,
    },
    /// Included in a block but not executed: nothing changed, nothing was paid.
    NotExecuted {
        height: u64,
        reason: String,
        /// For `bad_nonce`: the nonce it carried and the one the account expected, where
        /// the node could tell.
        nonce: Option<u64>,
        expected: Option<u64>,
    },
    Pending,
    Expired,
    /// Not known to the node; with the height below which it pruned history, if it did.
    Unknown {
        pruned_below: Option<u64>,
    },
}

impl Outcome {
    /// Reads a `GET /v1/transactions/{hash}` answer.
    pub fn of(status: &Value) -> Result<Outcome, String> {
        match status["status"].as_str() {
            Some("committed") => {
                let height = status["height"]
                    .as_u64()
                    .ok_or("a committed transaction without a height")?;
                if status["success"].as_bool() == Some(true) {
                    return Ok(Outcome::Succeeded { height });
                }
                let reason = status["execution_status"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string();
                let executed = status["executed"]
                    .as_bool()
                    .unwrap_or_else(|| !NOT_EXECUTED.contains(&reason.as_str()));
                if executed {
                    Ok(Outcome::Failed { height, reason })
                } else {
                    Ok(Outcome::NotExecuted {
                        height,
                        reason,
                        nonce: status["nonce"].as_u64(),
                        expected: status["expected_nonce"].as_u64(),
                    })
                }
            }
            Some("pending") => Ok(Outcome::Pending),
            Some("expired") => Ok(Outcome::Expired),
            Some("unknown") => Ok(Outcome::Unknown {
                pruned_below: status["pruned_below"].as_u64(),
            }),
            other => Err(format!("a transaction status of {other:?}")),
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, Outcome::Pending | Outcome::Unknown { .. })
    }

    /// For a transaction signed with `nonce`: the account's next nonce when it was found
    /// committed with that nonce already used (`bad_nonce`, below the expected one). Such a
    /// transaction changed nothing, paid nothing and can never execute later (its nonce
    /// stays used), so sending a fresh one cannot do the work twice.
    pub fn stale_nonce(&self, nonce: u64) -> Option<u64> {
        match self {
            Outcome::NotExecuted {
                reason,
                expected: Some(expected),
                ..
            } if reason == "bad_nonce" && *expected > nonce => Some(*expected),
            _ => None,
        }
    }

    /// The command's result: success only for a successful commit, or for a pending
    /// transaction when nobody waited (`waited` is `None`).
    pub fn verdict(self, hash: Hash32, waited: Option<Duration>) -> Result<(), ClientError> {
        match self {
            Outcome::Succeeded { .. } => Ok(()),
            Outcome::Failed { height, reason } => Err(ClientError::Failed {
                hash,
                height,
                reason,
            }),
            Outcome::NotExecuted {
                height,
                reason,
                nonce,
                expected,
            } => Err(ClientError::NotExecuted {
                hash,
                height,
                reason,
                nonce,
                expected,
            }),
            Outcome::Expired => Err(ClientError::Expired { hash }),
            Outcome::Unknown { pruned_below } => Err(ClientError::Unknown { hash, pruned_below }),
            Outcome::Pending => match waited {
                None => Ok(()),
                Some(d) => Err(ClientError::Pending {
                    hash,
                    secs: d.as_secs(),
                }),
            },
        }
    }
}

/// Asks once, without waiting.
pub fn status_now(rpc: &Rpc, hash: &Hash32) -> Result<(Value, Outcome), ClientError> {
    let status = rpc.get(&format!("/v1/transactions/{hash}"))?;
    let outcome = Outcome::of(&status).map_err(|e| rpc.bad_answer(e))?;
    Ok((status, outcome))
}

/// Long-polls until the transaction is final or `deadline` passes; the last answer.
pub fn wait_until(
    rpc: &Rpc,
    hash: &Hash32,
    deadline: Instant,
) -> Result<(Value, Outcome), ClientError> {
    loop {
        let asked = Instant::now();
        let wait = deadline.saturating_duration_since(asked).min(MAX_POLL);
        let status = rpc.get_within(
            &format!("/v1/transactions/{hash}?wait_ms={}", wait.as_millis()),
            wait + POLL_SLACK,
        )?;
        let outcome = Outcome::of(&status).map_err(|e| rpc.bad_answer(e))?;
        if outcome.is_final() || Instant::now() >= deadline {
            return Ok((status, outcome));
        }
        let took = asked.elapsed();
        if took < MIN_POLL {
            std::thread::sleep(MIN_POLL - took);
        }
    }
}

/// A status answer as aligned rows (hash, status, height, result, fee).
pub fn status_rows(status: &Value) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("hash", text(&status["hash"])),
        ("status", text(&status["status"])),
    ];
    if status["status"] == "committed" {
        rows.push(("height", text(&status["height"])));
        let result = match Outcome::of(status) {
            Ok(Outcome::Succeeded { .. }) => "success".to_string(),
            Ok(Outcome::NotExecuted {
                reason,
                nonce,
                expected,
                ..
            }) => format!(
                "included, not executed: {}; nothing changed",
                not_executed_why(&reason, nonce, expected)
            ),
            _ if status["reason"].is_string() => format!(
                "failed: {} ({})",
                text(&status["execution_status"]),
                text(&status["reason"])
            ),
            _ => format!("failed: {}", text(&status["execution_status"])),
        };
        rows.push(("result", result));
        if !status["fee"].is_null() {
            rows.push(("fee", text(&status["fee"])));
        }
        if !status["evm"].is_null() {
            rows.extend(contract_rows(status));
        }
        let tx = &status["transaction"];
        if tx.is_object() {
            rows.push(("kind", text(&tx["kind"])));
            rows.push(("sender", text(&tx["sender"])));
            rows.push(("nonce", text(&tx["nonce"])));
            if !tx["expiry"].is_null() {
                rows.push(("expiry", text(&tx["expiry"])));
            }
            rows.push(("payload", tx["payload"].to_string()));
        }
    }
    rows
}

/// A contract transaction's rows: the created contract, the revert reason, the decoded
/// return values and each event (decoded where the client knew the ABI).
fn contract_rows(status: &Value) -> Vec<(&'static str, String)> {
    let mut rows = vec![("gas", text(&status["gas_used"]))];
    if let Some(created) = status["evm"]["created"].as_str() {
        rows.push(("contract", created.to_string()));
    }
    if let Some(reason) = status["revert_reason"].as_str() {
        rows.push(("revert", reason.to_string()));
    } else if status["execution_status"] == "reverted" {
        rows.push(("revert", text(&status["evm"]["output"])));
    }
    for v in status["returns"].as_array().into_iter().flatten() {
        rows.push(("returns", text(v)));
    }
    for log in status["evm"]["logs"].as_array().into_iter().flatten() {
        let line = match log["event"].as_str() {
            Some(name) => {
                let args: Vec<String> = log["args"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect();
                format!("{name}({}) at {}", args.join(", "), text(&log["address"]))
            }
            None => format!(
                "{} topics from {}",
                log["topics"].as_array().map_or(0, Vec::len),
                text(&log["address"])
            ),
        };
        rows.push(("event", line));
    }
    rows
}

/// Why a transaction was included but not executed, in a few words.
pub fn not_executed_why(reason: &str, nonce: Option<u64>, expected: Option<u64>) -> String {
    match (reason, nonce, expected) {
        ("bad_nonce", Some(n), Some(e)) if n < e => {
            format!("nonce {n} already used (the account's next nonce was {e})")
        }
        ("bad_nonce", Some(n), Some(e)) => {
            format!("nonce {n} ahead of the account's next nonce {e}")
        }
        ("bad_nonce", None, Some(e)) => {
            format!("its nonce was not the account's next nonce ({e})")
        }
        ("bad_nonce", _, _) => "its nonce was not the account's next nonce".into(),
        ("cannot_pay_fee", ..) => "the sender could not pay the fee".into(),
        ("expired", ..) => "it had expired when its block executed".into(),
        ("wrong_chain", ..) => "it is for another chain".into(),
        ("compute_limit_exceeded", ..) => "it asks for more than the compute limit".into(),
        ("evm_invalid", ..) => {
            "the EVM refused it before running (gas limit, funds for gas and value, or block gas)"
                .into()
        }
        (other, ..) => other.to_string(),
    }
}

/// A JSON scalar as plain text (strings without quotes).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn outcomes_and_their_verdicts() {
        let hash = Hash32([1; 32]);
        let ok = json!({"status": "committed", "height": 5, "success": true});
        assert_eq!(Outcome::of(&ok), Ok(Outcome::Succeeded { height: 5 }));
        let failed = json!({"status": "committed", "height": 6, "success": false,
                            "execution_status": "insufficient_balance"});
        let failed = Outcome::of(&failed).unwrap();
        assert!(failed.is_final());
        let e = failed.verdict(hash, None).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("height 6"), "{e}");

        // Expired and unknown are different answers with different exits.
        let expired = Outcome::of(&json!({"status": "expired"})).unwrap();
        let unknown = Outcome::of(&json!({"status": "unknown"})).unwrap();
        assert!(expired.is_final() && !unknown.is_final());
        assert_eq!(expired.verdict(hash, None).unwrap_err().exit_code(), 6);
        assert_eq!(unknown.verdict(hash, None).unwrap_err().exit_code(), 8);
        let pruned = Outcome::of(&json!({"status": "unknown", "pruned_below": 9000})).unwrap();
        let e = pruned.verdict(hash, None).unwrap_err();
        assert!(e.to_string().contains("below height 9000"), "{e}");

        // Pending is an answer when asked once, a timeout when waited for.
        assert!(Outcome::Pending.verdict(hash, None).is_ok());
        let e = Outcome::Pending
            .verdict(hash, Some(Duration::from_secs(9)))
            .unwrap_err();
        assert_eq!(e.exit_code(), 7);

        assert!(Outcome::of(&json!({"status": "committed"})).is_err());
        assert!(Outcome::of(&json!({"status": "weird"})).is_err());
    }

    #[test]
    fn a_stale_nonce_is_included_but_not_executed() {
        let hash = Hash32([2; 32]);
        let stale = json!({"status": "committed", "height": 7, "success": false,
                           "executed": false, "execution_status": "bad_nonce",
                           "nonce": 3, "expected_nonce": 5, "fee": "0"});
        let outcome = Outcome::of(&stale).unwrap();
        assert!(outcome.is_final());
        assert_eq!(outcome.stale_nonce(3), Some(5));
        // A nonce ahead of the account's is not stale: that transaction may still run.
        assert_eq!(outcome.stale_nonce(6), None);
        let rows = status_rows(&stale);
        let result = &rows.iter().find(|(l, _)| *l == "result").unwrap().1;
        assert!(
            result.contains("not executed") && result.contains("nonce 3 already used"),
            "{result}"
        );
        let e = outcome.verdict(hash, None).unwrap_err();
        assert_eq!(e.exit_code(), 9);
        let line = e.to_string();
        assert!(
            line.contains("not executed") && line.contains("fresh nonce"),
            "{line}"
        );

        // A node without the `executed` field: the status name decides.
        let old = json!({"status": "committed", "height": 7, "success": false,
                         "execution_status": "cannot_pay_fee"});
        assert!(matches!(Outcome::of(&old), Ok(Outcome::NotExecuted { .. })));
        let charged = json!({"status": "committed", "height": 7, "success": false,
                             "execution_status": "insufficient_balance"});
        assert!(matches!(Outcome::of(&charged), Ok(Outcome::Failed { .. })));
        assert_eq!(Outcome::of(&charged).unwrap().stale_nonce(0), None);
    }

    #[test]
    fn committed_rows_show_the_result() {
        let s = json!({"hash": "ab", "status": "committed", "height": 3, "success": false,
                       "execution_status": "slippage_exceeded", "fee": "10"});
        let rows = status_rows(&s);
        assert!(rows.contains(&("result", "failed: slippage_exceeded".into())));
        assert!(rows.contains(&("height", "3".into())));
        let rows = status_rows(&json!({"hash": "ab", "status": "pending"}));
        assert_eq!(rows.len(), 2);
    }
}
