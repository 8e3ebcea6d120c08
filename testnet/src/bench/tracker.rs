//! The tracker: walks one validator's executed blocks (committed ones on an ordering-only
//! network) with long polls, and records when each of the run's items first appears. That
//! instant minus the submission instant is the item's latency.
//!
//! [`FETCHERS`] threads read the heights in turn (thread k reads start + 1 + k, then
//! every `FETCHERS`-th height after it), so that a validator slow to answer one request
//! does not make the tracker fall behind the chain. `tracked_height` is the highest height
//! up to which every height has been read; when the threads stop, the gaps below the
//! highest height read are filled, so that the report's range holds everything recorded.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::shared::Shared;
use crate::client;

/// How long one long poll waits for the next height.
const POLL_MS: u64 = 500;
/// Consecutive failing polls tolerated before the tracker gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);
/// Heights read at once. A saturated validator (twice capacity offered on the cores it
/// shares with the load generator) took tens of milliseconds to answer one height's
/// list, and one request at a time fell seconds behind 100,000 payloads a second; at an
/// idle one a long poll per thread costs nothing.
const FETCHERS: u64 = 4;

#[derive(Debug, Clone, Default)]
pub struct Tracked {
    /// The last height up to which every transaction list was read.
    pub last_height: u64,
    pub error: Option<String>,
}

/// Which heights have been read: every one up to `through`, and some above it.
struct Progress {
    through: u64,
    above: BTreeSet<u64>,
    error: Option<String>,
}

impl Progress {
    fn read(&mut self, height: u64) -> u64 {
        self.above.insert(height);
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
        self.through
    }
}

pub fn track(shared: &Shared, addr: SocketAddr, start_height: u64, closed_loop: bool) -> Tracked {
    shared.tracked_height.store(start_height, Ordering::SeqCst);
    let progress = Mutex::new(Progress {
        through: start_height,
        above: BTreeSet::new(),
        error: None,
    });
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for k in 0..FETCHERS {
            let (progress, failed) = (&progress, &failed);
            s.spawn(move || {
                let mut height = start_height + 1 + k;
                let mut failing_since: Option<Instant> = None;
                while !shared.stop_tracking.load(Ordering::SeqCst) && !failed.load(Ordering::SeqCst)
                {
                    match client::block_transactions(addr, height, POLL_MS) {
                        Ok(Some(hashes)) => {
                            shared.record_block(height, &hashes, closed_loop);
                            let through = progress.lock().read(height);
                            shared.tracked_height.fetch_max(through, Ordering::SeqCst);
                            height += FETCHERS;
                            failing_since = None;
                        }
                        Ok(None) => failing_since = None,
                        Err(e) => {
                            let since = *failing_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > GIVE_UP_AFTER {
                                progress.lock().error.get_or_insert(e.to_string());
                                failed.store(true, Ordering::SeqCst);
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            });
        }
    });
    let mut progress = progress.into_inner();
    // A thread may have read a height above one that another stopped before reading: read
    // the gap, so that every item recorded lies at or below `last_height` (the range the
    // report checks on the validators).
    let deadline = Instant::now() + GIVE_UP_AFTER;
    while !progress.above.is_empty() && Instant::now() < deadline {
        let gap = progress.through + 1;
        match client::block_transactions(addr, gap, POLL_MS) {
            Ok(Some(hashes)) => {
                shared.record_block(gap, &hashes, closed_loop);
                let through = progress.read(gap);
                shared.tracked_height.fetch_max(through, Ordering::SeqCst);
            }
            Ok(None) | Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    if !progress.above.is_empty() {
        progress.error.get_or_insert(format!(
            "height {} could not be read; items seen above it are reported as not found",
            progress.through + 1
        ));
    }
    Tracked {
        last_height: progress.through,
        error: progress.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_only_heights_read_without_a_gap() {
        let mut p = Progress {
            through: 10,
            above: BTreeSet::new(),
            error: None,
        };
        assert_eq!(p.read(12), 10, "11 is missing");
        assert_eq!(p.read(13), 10);
        assert_eq!(p.read(11), 13, "the gap closes");
        assert_eq!(p.read(14), 14);
        assert!(p.above.is_empty());
    }
}
