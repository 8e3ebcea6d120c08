//! The client's failures, each with its exit status and a one-line, actionable message.
//!
//! The exit statuses are documented in `ordo --help` (`cli::EXIT_CODES`); keep both in step.

use ordo_types::Hash32;

/// Something went wrong talking to a node or with the transaction it was asked about.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Input(String),
    #[error("no node answers at {url} ({reason}): is the testnet up? try `ordo testnet up` or --rpc URL")]
    NoNode { url: String, reason: String },
    #[error("no local testnet in {dir} ({reason}): start one with `ordo testnet up`, or name a node with --rpc URL")]
    NoTestnet { dir: String, reason: String },
    #[error("the node at {url} did not answer ({reason}): it may be overloaded or stuck; check `ordo status`")]
    NoAnswer { url: String, reason: String },
    #[error("{}", explain_refusal(.code, .message))]
    Refused { code: String, message: String },
    #[error("transaction {hash} was committed at height {height} but failed: {}", explain_execution(.reason))]
    Failed {
        hash: Hash32,
        height: u64,
        reason: String,
    },
    #[error("transaction {hash} was included at height {height} but not executed: {}; nothing changed and no fee was paid; {}", super::follow::not_executed_why(.reason, *.nonce, *.expected), resend_advice(.reason, *.nonce, *.expected))]
    NotExecuted {
        hash: Hash32,
        height: u64,
        reason: String,
        nonce: Option<u64>,
        expected: Option<u64>,
    },
    #[error("transaction {hash} expired: no block included it before its expiry; send it again with a later expiry (--expires-in)")]
    Expired { hash: Hash32 },
    #[error("transaction {hash} is still pending after {secs} s; follow it with `ordo tx {hash} --wait`")]
    Pending { hash: Hash32, secs: u64 },
    #[error("the node does not know transaction {hash}: it was never submitted to this node, or the node restarted since (is --rpc the node you sent it to?){}", pruned_note(*pruned_below))]
    Unknown {
        hash: Hash32,
        /// The height below which the node pruned its history, if it did.
        pruned_below: Option<u64>,
    },
    #[error("unexpected answer from {url}: {what}")]
    BadAnswer { url: String, what: String },
    #[error("the read-only call did not succeed: {status}{reason}")]
    CallFailed { status: String, reason: String },
}

impl ClientError {
    /// The process's exit status for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Input(_) => 2,
            ClientError::NoNode { .. }
            | ClientError::NoTestnet { .. }
            | ClientError::NoAnswer { .. } => 3,
            ClientError::Refused { .. } => 4,
            ClientError::Failed { .. } => 5,
            ClientError::Expired { .. } => 6,
            ClientError::Pending { .. } => 7,
            ClientError::Unknown { .. } => 8,
            ClientError::NotExecuted { .. } => 9,
            ClientError::BadAnswer { .. } => 1,
            ClientError::CallFailed { .. } => 5,
        }
    }

    /// A stable name for `--json` error output.
    pub fn kind(&self) -> String {
        match self {
            ClientError::Input(_) => "bad_input".into(),
            ClientError::NoNode { .. } => "no_node".into(),
            ClientError::NoTestnet { .. } => "no_testnet".into(),
            ClientError::NoAnswer { .. } => "no_answer".into(),
            ClientError::Refused { code, .. } => code.clone(),
            ClientError::Failed { .. } => "execution_failed".into(),
            ClientError::NotExecuted { .. } => "not_executed".into(),
            ClientError::Expired { .. } => "expired".into(),
            ClientError::Pending { .. } => "pending".into(),
            ClientError::Unknown { .. } => "unknown".into(),
            ClientError::BadAnswer { .. } => "bad_answer".into(),
            ClientError::CallFailed { .. } => "call_failed".into(),
        }
    }
}

/// What an RPC error code means for the user, with the node's own detail in brackets.
fn explain_refusal(code: &str, message: &str) -> String {
    let what = match code {
        "bad_signature" => "the node refused the transaction: its signature does not verify (is --key the sender's key file?)",
        "nonce_too_low" => "the node refused the transaction: nonce too low, that nonce is already used by a committed transaction; omit --nonce to use the account's next one",
        "nonce_too_high" => "the node refused the transaction: nonce too high, earlier nonces of this sender are missing; send those first or omit --nonce",
        "mempool_full" => "the node's mempool is full; retry shortly or send fewer transactions from this sender",
        "too_large" => "the node refused the request: too large",
        "expired" => "the node refused the transaction: already expired when it arrived; check this machine's clock or raise --expires-in",
        "wrong_chain" => "the node refused the transaction: it is for another chain (is --rpc the node of the network you meant?)",
        "malformed" => "the node could not decode the request",
        "duplicate" => "the node already has this transaction; follow it with `ordo tx HASH`",
        "busy" => "the node is busy; retry shortly",
        "behind" => "the node's execution is behind its consensus, so its answer could be stale; retry shortly or ask another validator with --rpc URL",
        "not_found" if !message.is_empty() => return message.to_string(),
        "not_found" => "not found",
        "internal" => "the node failed internally; see its log",
        other => return format!("the node refused the request ({other}): {message}"),
    };
    if message.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({message})")
    }
}

/// What to do about a transaction that was included but not executed.
fn resend_advice(reason: &str, nonce: Option<u64>, expected: Option<u64>) -> &'static str {
    match (reason, nonce, expected) {
        ("bad_nonce", Some(n), Some(e)) if n > e => {
            "send the missing nonces first, or send it again without --nonce"
        }
        ("bad_nonce", ..) => "send it again with a fresh nonce (omit --nonce)",
        ("cannot_pay_fee", ..) => "fund the sender's account and send it again",
        ("expired", ..) => "send it again with a later expiry (--expires-in)",
        _ => "send a corrected transaction",
    }
}

/// A failed execution status (see `ordo_node::status_name`) in words.
fn explain_execution(reason: &str) -> String {
    let what = match reason {
        "insufficient_balance" => "insufficient balance",
        "cannot_pay_fee" => "the sender cannot pay the fee",
        "bad_nonce" => "its nonce was not the sender's next nonce when it executed",
        "expired" => "it had expired by the time its block executed",
        "wrong_chain" => "it is for another chain",
        "compute_limit_exceeded" => "it exceeded the compute limit",
        "unknown_pool" => "no such pool",
        "slippage_exceeded" => "the swap would pay out less than --min-out",
        "unknown_collection" => "no such collection",
        "overflow" => "an amount would overflow",
        "reverted" => "the contract reverted (see revert)",
        "halted" => {
            "the EVM halted the contract (out of gas, an invalid opcode, call depth or code size)"
        }
        other => return other.to_string(),
    };
    format!("{what} ({reason})")
}

/// What an unknown transaction may also be, on a node that pruned its history.
fn pruned_note(pruned_below: Option<u64>) -> String {
    match pruned_below {
        Some(h) => {
            format!(", or it was committed below height {h}, whose history this node pruned")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_own_exit_code_and_one_line() {
        let hash = Hash32([7; 32]);
        let errors = [
            ClientError::Input("x".into()),
            ClientError::NoNode {
                url: "u".into(),
                reason: "r".into(),
            },
            ClientError::Refused {
                code: "nonce_too_low".into(),
                message: "nonce 0 is below the account's next nonce 1".into(),
            },
            ClientError::Failed {
                hash,
                height: 3,
                reason: "insufficient_balance".into(),
            },
            ClientError::Expired { hash },
            ClientError::Pending { hash, secs: 5 },
            ClientError::Unknown {
                hash,
                pruned_below: None,
            },
            ClientError::NotExecuted {
                hash,
                height: 4,
                reason: "bad_nonce".into(),
                nonce: Some(1),
                expected: Some(2),
            },
        ];
        let codes: Vec<i32> = errors.iter().map(ClientError::exit_code).collect();
        assert_eq!(codes, [2, 3, 4, 5, 6, 7, 8, 9]);
        for e in &errors {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let refused = errors[2].to_string();
        assert!(refused.contains("nonce too low") && refused.contains("next nonce 1"));
        assert!(errors[3].to_string().contains("insufficient balance"));
        assert_ne!(errors[4].kind(), errors[6].kind());
        let stale = errors[7].to_string();
        assert!(
            stale.contains("nonce 1 already used") && stale.contains("nothing changed"),
            "{stale}"
        );
        let behind = ClientError::Refused {
            code: "behind".into(),
            message: String::new(),
        };
        assert!(behind.to_string().contains("another validator"), "{behind}");
    }
}
