//! After the run: nothing lost (every item the tracker saw committed is in the same
//! heights' blocks of every live validator, and nothing else of the run is; items the
//! tracker saw at heights a validator has pruned since are counted apart, not checked), the
//! validators agree on the state root at a common height, and the accounts' nonces moved
//! by as much as the committed transactions say.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ordo_cli::localnet::{BenchKey, TxFormat};
use ordo_types::Amount;
use serde::Serialize;

use super::shared::Shared;
use crate::client;
use crate::error::{Result, TestnetError};

/// Long poll per height while walking a validator that may be a little behind.
const WAIT_MS: u64 = 10_000;
/// Heights read at once from one validator.
const WORKERS: usize = 4;
/// The longest the whole check may take.
const DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Serialize)]
pub struct ValidatorCheck {
    pub validator: usize,
    pub rpc: String,
    /// Distinct items of the run found in its blocks.
    pub found: u64,
    /// Items the tracker saw committed that this validator's blocks lack.
    pub missing: u64,
    /// Items in this validator's blocks that the tracker did not see.
    pub extra: u64,
    /// Items the tracker saw committed at heights this validator pruned since (a run
    /// longer than its `storage.retain_blocks`): not checked there.
    pub pruned: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The heights compared, inclusive.
    pub from_height: u64,
    pub to_height: u64,
    pub validators: Vec<ValidatorCheck>,
    /// Every committed item was found on every checked validator, and nothing more.
    pub nothing_lost: bool,
    pub common_height: Option<u64>,
    pub state_roots: Vec<Option<String>>,
    /// `None` where there is no state (ordering-only) or no common height.
    pub roots_agree: Option<bool>,
}

/// Walks heights `from..=to` of validator `index` at `addr`, a few heights at a time.
fn check_one(
    shared: &Shared,
    index: usize,
    addr: SocketAddr,
    from: u64,
    to: u64,
    deadline: Instant,
) -> ValidatorCheck {
    let found: Vec<AtomicBool> = (0..shared.items.len())
        .map(|_| AtomicBool::new(false))
        .collect();
    let next = AtomicU64::new(from);
    // The highest height answered `pruned` (0: none).
    let pruned_through = AtomicU64::new(0);
    let failure = parking_lot::Mutex::new(None::<String>);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                if failure.lock().is_some() {
                    return;
                }
                let height = next.fetch_add(1, Ordering::SeqCst);
                if height > to {
                    return;
                }
                let stop = |reason: String| {
                    failure.lock().get_or_insert(reason);
                };
                if crate::interrupt::requested() {
                    return stop("interrupted".into());
                }
                if Instant::now() > deadline {
                    return stop(format!(
                        "stopped at height {height} after {} s",
                        DEADLINE.as_secs()
                    ));
                }
                match client::block_transactions_kept(addr, height, WAIT_MS) {
                    Ok(client::Kept::Here(hashes)) => {
                        for h in hashes {
                            if let Some(&i) = shared.index.get(&h) {
                                found[i as usize].store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(client::Kept::Pruned) => {
                        pruned_through.fetch_max(height, Ordering::SeqCst);
                    }
                    Ok(client::Kept::NotYet) => {
                        return stop(format!("height {height} not there after {WAIT_MS} ms"))
                    }
                    Err(e) => return stop(e.to_string()),
                }
            });
        }
    });
    let mut check = ValidatorCheck {
        validator: index,
        rpc: client::rpc_url(addr),
        found: 0,
        missing: 0,
        extra: 0,
        pruned: 0,
        error: failure.into_inner(),
    };
    let pruned_through = pruned_through.into_inner();
    for (i, f) in found.iter().enumerate() {
        let seen = shared.seen_us[i].load(Ordering::Relaxed) != 0;
        match (seen, f.load(Ordering::Relaxed)) {
            (true, true) => check.found += 1,
            (true, false) if shared.seen_height[i].load(Ordering::Relaxed) <= pruned_through => {
                check.pruned += 1
            }
            (true, false) => check.missing += 1,
            (false, true) => check.extra += 1,
            (false, false) => {}
        }
    }
    check
}

/// Checks `validators` (index, RPC) over heights `from..=to`.
pub fn verify(
    shared: &Shared,
    validators: &[(usize, SocketAddr)],
    from: u64,
    to: u64,
    has_state: bool,
) -> Verification {
    let deadline = Instant::now() + DEADLINE;
    let checks: Vec<ValidatorCheck> = std::thread::scope(|s| {
        let handles: Vec<_> = validators
            .iter()
            .map(|&(i, addr)| s.spawn(move || check_one(shared, i, addr, from, to, deadline)))
            .collect();
        handles
            .into_iter()
            .zip(validators)
            .map(|(h, &(i, addr))| {
                h.join().unwrap_or_else(|_| ValidatorCheck {
                    validator: i,
                    rpc: client::rpc_url(addr),
                    found: 0,
                    missing: 0,
                    extra: 0,
                    pruned: 0,
                    error: Some("the check panicked".into()),
                })
            })
            .collect()
    });
    let nothing_lost = !checks.is_empty()
        && checks
            .iter()
            .all(|c| c.error.is_none() && c.missing == 0 && c.extra == 0);

    let mut common_height = None;
    let mut state_roots = Vec::new();
    let mut roots_agree = None;
    if has_state {
        let heights: Vec<Option<u64>> = validators
            .iter()
            .map(|&(_, addr)| {
                client::status(addr, Duration::from_secs(5))
                    .ok()
                    .and_then(|s| s["executed_height"].as_u64())
            })
            .collect();
        if let Some(h) = heights
            .iter()
            .copied()
            .collect::<Option<Vec<u64>>>()
            .and_then(|h| h.into_iter().min())
        {
            common_height = Some(h);
            state_roots = validators
                .iter()
                .map(|&(_, addr)| {
                    client::block(addr, h, Duration::from_secs(5))
                        .ok()
                        .flatten()
                        .and_then(|b| b["state_root"].as_str().map(str::to_string))
                })
                .collect();
            roots_agree = Some(
                state_roots.iter().all(Option::is_some)
                    && state_roots.windows(2).all(|w| w[0] == w[1]),
            );
        }
    }
    Verification {
        from_height: from,
        to_height: to,
        validators: checks,
        nothing_lost,
        common_height,
        state_roots,
        roots_agree,
    }
}

/// Every bench account's (balance, next nonce) on `addr`, read with a few threads.
pub fn read_accounts(
    addr: SocketAddr,
    chain_id: u64,
    accounts: u32,
    format: TxFormat,
) -> Result<Vec<(Amount, u64)>> {
    const THREADS: u32 = 8;
    let chunks: Vec<Result<Vec<(Amount, u64)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let lo = accounts * t / THREADS;
                    let hi = accounts * (t + 1) / THREADS;
                    (lo..hi)
                        .map(|i| {
                            let address = BenchKey::new(chain_id, i, format).address();
                            client::account(addr, &address, Duration::from_secs(10))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(TestnetError::rpc(addr, "account reader panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(accounts as usize);
    for chunk in chunks {
        all.extend(chunk?);
    }
    Ok(all)
}
