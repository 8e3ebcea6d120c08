//! The tracker: walks one validator's executed blocks (committed ones on an ordering-only
//! network) height by height with long polls, and records when each of the run's items
//! first appears. That instant minus the submission instant is the item's latency.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::client;

/// How long one long poll waits for the next height.
const POLL_MS: u64 = 500;
/// Consecutive failing polls tolerated before the tracker gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
pub struct Tracked {
    /// The last height whose transaction list was read.
    pub last_height: u64,
    pub blocks: u64,
    pub error: Option<String>,
}

pub fn track(shared: &Shared, addr: SocketAddr, start_height: u64, closed_loop: bool) -> Tracked {
    let mut tracked = Tracked {
        last_height: start_height,
        ..Tracked::default()
    };
    shared.tracked_height.store(start_height, Ordering::SeqCst);
    let mut failing_since: Option<Instant> = None;
    while !shared.stop_tracking.load(Ordering::SeqCst) {
        let height = tracked.last_height + 1;
        match client::block_transactions(addr, height, POLL_MS) {
            Ok(Some(hashes)) => {
                shared.record_block(height, &hashes, closed_loop);
                tracked.last_height = height;
                shared.tracked_height.store(height, Ordering::SeqCst);
                tracked.blocks += 1;
                failing_since = None;
            }
            Ok(None) => failing_since = None,
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > GIVE_UP_AFTER {
                    tracked.error = Some(e.to_string());
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    tracked
}
