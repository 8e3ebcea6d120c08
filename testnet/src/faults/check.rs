//! The checks after the faults: one chain everywhere, every accepted transaction settled,
//! nothing applied twice, no panic in any log.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use ordo_cli::localnet::bench_key;
use serde::Serialize;

use super::load::{executed_timestamp_ms, tx_status, Accepted, RPC_TIMEOUT};
use crate::client;
use crate::testnet::Testnet;

/// What the checks saw; `violations` is empty when everything held.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Checked {
    /// Heights compared on every validator (block hash and state root).
    pub heights: u64,
    pub accepted: u64,
    pub committed_ok: u64,
    pub committed_failed: u64,
    /// Accepted, never committed, and past expiry on the executed chain.
    pub expired: u64,
    pub senders: u64,
    pub violations: Vec<String>,
}

/// Block hash and state root at each height `1..=top` on every validator agree.
pub fn same_chain(rpcs: &[SocketAddr], top: u64, out: &mut Checked) {
    let chains: Vec<Result<Vec<(String, String)>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = rpcs
            .iter()
            .map(|&addr| s.spawn(move || chain(addr, top)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("checker panicked".into())))
            .collect()
    });
    let mut reference: Option<(usize, &Vec<(String, String)>)> = None;
    for (i, c) in chains.iter().enumerate() {
        match c {
            Err(e) => out
                .violations
                .push(format!("validator {i}: cannot read its chain: {e}")),
            Ok(c) => match reference {
                None => reference = Some((i, c)),
                Some((r, rc)) => {
                    if let Some(h) = (0..c.len()).find(|&h| c[h] != rc[h]) {
                        out.violations.push(format!(
                            "validators {r} and {i} differ at height {}: block {} root {} against block {} root {}",
                            h + 1,
                            rc[h].0,
                            rc[h].1,
                            c[h].0,
                            c[h].1
                        ));
                    }
                }
            },
        }
    }
    out.heights = top;
}

fn chain(addr: SocketAddr, top: u64) -> Result<Vec<(String, String)>, String> {
    (1..=top)
        .map(|h| {
            let b = client::block(addr, h, RPC_TIMEOUT)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no block at height {h}"))?;
            let root = b["state_root"]
                .as_str()
                .ok_or_else(|| format!("block {h} is not executed"))?;
            Ok((
                b["hash"].as_str().unwrap_or_default().to_string(),
                root.to_string(),
            ))
        })
        .collect()
}

/// Every accepted transaction committed, or expired on the executed chain; successes are
/// one per nonce, contiguous from 0, and account for each sender's nonce on the chain.
pub fn settled(
    addr: SocketAddr,
    chain_id: u64,
    accepted: &[Accepted],
    out: &mut Checked,
) -> crate::Result<()> {
    let tip_ms = executed_timestamp_ms(addr)?;
    let mut successes: HashMap<u32, Vec<u64>> = HashMap::new();
    for a in accepted {
        let status = tx_status(addr, &a.hash)?;
        if status["status"] == "committed" {
            if status["success"].as_bool() == Some(true) {
                out.committed_ok += 1;
                successes.entry(a.sender).or_default().push(a.nonce);
            } else {
                out.committed_failed += 1;
            }
        } else if a.expiry_ms < tip_ms {
            out.expired += 1;
        } else {
            out.violations.push(format!(
                "transaction {} (sender {}, nonce {}) accepted by validator {} is neither committed nor expired",
                a.hash, a.sender, a.nonce, a.validator
            ));
        }
    }
    out.accepted = accepted.len() as u64;
    let senders: BTreeMap<u32, ()> = accepted.iter().map(|a| (a.sender, ())).collect();
    out.senders = senders.len() as u64;
    for &sender in senders.keys() {
        let mut nonces = successes.remove(&sender).unwrap_or_default();
        nonces.sort_unstable();
        let before = nonces.len();
        nonces.dedup();
        if nonces.len() != before {
            out.violations.push(format!(
                "sender {sender}: a nonce succeeded twice ({} successes, {} nonces)",
                before,
                nonces.len()
            ));
        }
        let (_, chain_nonce) =
            client::account(addr, &bench_key(chain_id, sender).address(), RPC_TIMEOUT)?;
        let contiguous = nonces.iter().enumerate().all(|(i, n)| *n == i as u64);
        if !contiguous || chain_nonce != nonces.len() as u64 {
            out.violations.push(format!(
                "sender {sender}: the chain says nonce {chain_nonce}, the accepted transactions that succeeded hold nonces {:?}",
                summary(&nonces)
            ));
        }
    }
    Ok(())
}

fn summary(nonces: &[u64]) -> String {
    if nonces.len() <= 8 {
        return format!("{nonces:?}");
    }
    format!(
        "{:?} ... {:?} ({} in all)",
        &nonces[..4],
        &nonces[nonces.len() - 4..],
        nonces.len()
    )
}

/// Lines of any validator's log that report a panic.
pub fn panics(net: &Testnet, out: &mut Checked) {
    for i in 0..net.len() {
        let log = std::fs::read_to_string(net.log_file(i)).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
            out.violations
                .push(format!("validator {i} panicked: {}", line.trim()));
        }
    }
}
