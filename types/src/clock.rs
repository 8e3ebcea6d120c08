//! The wall clock, in the one unit the chain uses: Unix milliseconds.
//!
//! Consensus takes time as an input and never reads this; block timestamps, expiries and
//! client latencies do, and they all read it here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is set before it.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
