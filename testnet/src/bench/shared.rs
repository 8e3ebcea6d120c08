//! The state one benchmark run shares between its sender lanes, its tracker and the main
//! loop: the signed items, per item when it was submitted, how the node answered and when
//! it was first seen in a block, and running counters.
//!
//! Times are microseconds since the run's start plus one, so that zero means "not yet".

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ordo_types::Hash32;
use parking_lot::{Condvar, Mutex};

use super::workload::Item;

/// How the node answered an item's submission.
pub mod outcome {
    pub const UNSENT: u8 = 0;
    pub const ACCEPTED: u8 = 1;
    pub const REJECTED: u8 = 2;
    /// The request went out but no answer came back: the node may hold it or not.
    pub const UNANSWERED: u8 = 3;
}

/// A latency histogram in microseconds, 1 µs to 1 hour at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// What happened during one second of the run, by when commits were seen.
pub struct Second {
    pub committed: u64,
    pub latency: Histogram<u64>,
}

#[derive(Default)]
pub struct Counters {
    /// Items in requests that were answered or went unanswered.
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub unanswered: AtomicU64,
    /// Appearances of the run's items in blocks (a duplicate counts twice).
    pub committed: AtomicU64,
    /// Items seen in a block at least once.
    pub committed_distinct: AtomicU64,
    pub duplicates: AtomicU64,
    /// Whole requests answered `busy` and sent again.
    pub busy_retries: AtomicU64,
    /// Items sent again to a live validator after theirs crashed.
    pub resubmitted: AtomicU64,
    pub requests: AtomicU64,
    /// Lanes that sent their last item before the end (closed loop with too few signed).
    pub exhausted_lanes: AtomicU64,
}

pub struct Shared {
    pub start: Instant,
    pub items: Vec<Item>,
    pub index: HashMap<Hash32, u32>,
    pub submitted_us: Vec<AtomicU64>,
    pub seen_us: Vec<AtomicU64>,
    /// The height at which the tracker saw each item committed (0: not seen).
    pub seen_height: Vec<AtomicU64>,
    pub outcome: Vec<AtomicU8>,
    pub counters: Counters,
    pub rejected_by: Mutex<BTreeMap<String, u64>>,
    /// Validators' RPC addresses; lane `l` starts on validator `l mod targets`.
    pub targets: Vec<SocketAddr>,
    /// The target each lane sends to now (changes when its validator is crashed).
    pub lane_target: Vec<AtomicUsize>,
    pub dead: Vec<AtomicBool>,
    pub stop_sending: AtomicBool,
    /// The height up to which the tracker has read every height.
    pub tracked_height: AtomicU64,
    pub stop_tracking: AtomicBool,
    /// Closed loop: items sent (or being sent) and not yet seen committed or rejected.
    /// Lower it with [`Shared::release`], which wakes lanes waiting in
    /// [`Shared::wait_for_room`].
    pub outstanding: AtomicI64,
    room_lock: Mutex<()>,
    room: Condvar,
    /// Lanes waiting in [`Shared::wait_for_room`] (changed under `room_lock`).
    waiting: AtomicUsize,
    /// The measurement window, in microseconds since the start.
    pub window_us: (u64, u64),
    /// Latency of the items submitted inside the window.
    pub latency: Mutex<Histogram<u64>>,
    pub seconds: Mutex<Vec<Second>>,
}

impl Shared {
    pub fn new(
        items: Vec<Item>,
        targets: Vec<SocketAddr>,
        lanes: usize,
        window: (Duration, Duration),
    ) -> Self {
        let n = items.len();
        let index = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.hash, i as u32))
            .collect();
        Shared {
            start: Instant::now(),
            index,
            items,
            submitted_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seen_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seen_height: (0..n).map(|_| AtomicU64::new(0)).collect(),
            outcome: (0..n).map(|_| AtomicU8::new(outcome::UNSENT)).collect(),
            counters: Counters::default(),
            rejected_by: Mutex::new(BTreeMap::new()),
            lane_target: (0..lanes)
                .map(|l| AtomicUsize::new(l % targets.len().max(1)))
                .collect(),
            dead: targets.iter().map(|_| AtomicBool::new(false)).collect(),
            targets,
            stop_sending: AtomicBool::new(false),
            tracked_height: AtomicU64::new(0),
            stop_tracking: AtomicBool::new(false),
            outstanding: AtomicI64::new(0),
            room_lock: Mutex::new(()),
            room: Condvar::new(),
            waiting: AtomicUsize::new(0),
            window_us: (window.0.as_micros() as u64, window.1.as_micros() as u64),
            latency: Mutex::new(histogram()),
            seconds: Mutex::new(Vec::new()),
        }
    }

    /// Closed loop: `n` outstanding items were settled (committed or refused).
    pub fn release(&self, n: i64) {
        if n == 0 {
            return;
        }
        self.outstanding.fetch_sub(n, Ordering::SeqCst);
        // Under the lock, so that a lane between its check and its wait cannot miss it.
        let _guard = self.room_lock.lock();
        self.room.notify_all();
    }

    /// Closed loop: waits until `want` more items fit under `max_in_flight`, or `timeout`
    /// passed. Waking on each release, rather than polling, matters: sixteen lanes polling
    /// every half millisecond were tens of thousands of context switches a second on the
    /// cores the validators share.
    pub fn wait_for_room(&self, want: i64, max_in_flight: i64, timeout: Duration) {
        let mut guard = self.room_lock.lock();
        if self.outstanding.load(Ordering::SeqCst) + want > max_in_flight {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.room.wait_for(&mut guard, timeout);
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Restarts the clock: call right before the first send.
    pub fn start_now(&mut self) {
        self.start = Instant::now();
    }

    /// Microseconds since the start, plus one (never zero).
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64 + 1
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sent items not (yet) seen committed nor refused.
    pub fn in_flight(&self) -> u64 {
        let c = &self.counters;
        (c.accepted.load(Ordering::Relaxed) + c.unanswered.load(Ordering::Relaxed))
            .saturating_sub(c.committed_distinct.load(Ordering::Relaxed))
    }

    pub fn reject(&self, code: &str, count: u64) {
        *self.rejected_by.lock().entry(code.to_string()).or_default() += count;
    }

    /// Marks validator `dead_target` as crashed: its lanes move to live validators.
    pub fn crash_target(&self, dead_target: usize) {
        self.dead[dead_target].store(true, Ordering::SeqCst);
        let live: Vec<usize> = (0..self.targets.len())
            .filter(|&t| !self.dead[t].load(Ordering::SeqCst))
            .collect();
        if live.is_empty() {
            return;
        }
        for (lane, target) in self.lane_target.iter().enumerate() {
            if target.load(Ordering::SeqCst) == dead_target {
                target.store(live[lane % live.len()], Ordering::SeqCst);
            }
        }
    }

    /// Records the items of the block at `height` as seen now; returns how many were the
    /// run's.
    pub fn record_block(&self, height: u64, hashes: &[Hash32], closed_loop: bool) -> u64 {
        let now = self.now_us();
        let mut ours = 0;
        let mut released = 0;
        let mut latencies = Vec::new();
        for hash in hashes {
            let Some(&i) = self.index.get(hash) else {
                continue;
            };
            ours += 1;
            let i = i as usize;
            self.counters.committed.fetch_add(1, Ordering::Relaxed);
            if self.seen_us[i]
                .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.seen_height[i].store(height, Ordering::SeqCst);
            self.counters
                .committed_distinct
                .fetch_add(1, Ordering::Relaxed);
            if closed_loop {
                released += 1;
            }
            let submitted = self.submitted_us[i].load(Ordering::SeqCst);
            if submitted != 0 {
                latencies.push((submitted, now.saturating_sub(submitted).max(1)));
            }
        }
        if ours == 0 {
            return 0;
        }
        self.release(released);
        let second = ((now - 1) / 1_000_000) as usize;
        {
            let mut seconds = self.seconds.lock();
            while seconds.len() <= second {
                seconds.push(Second {
                    committed: 0,
                    latency: histogram(),
                });
            }
            let s = &mut seconds[second];
            s.committed += latencies.len() as u64;
            for (_, l) in &latencies {
                let _ = s.latency.record(*l);
            }
        }
        let (from, to) = self.window_us;
        let mut overall = self.latency.lock();
        for (submitted, l) in latencies {
            if submitted > from && submitted <= to + 1 {
                let _ = overall.record(l);
            }
        }
        ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane waiting for room wakes when items are released, not when its timeout ends.
    #[test]
    fn a_release_wakes_a_lane_waiting_for_room() {
        const TIMEOUT: Duration = Duration::from_secs(60);
        let shared = Shared::new(Vec::new(), Vec::new(), 1, (Duration::ZERO, Duration::ZERO));
        shared.outstanding.store(10, Ordering::SeqCst);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let started = Instant::now();
                shared.wait_for_room(1, 10, TIMEOUT);
                started.elapsed()
            });
            // The count rises under the lock that the wait gives up, so once it is 1 the
            // release below can only take the lock when the lane is really waiting.
            while shared.waiting.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
            shared.release(1);
            let waited = waiter.join().unwrap();
            assert!(waited < TIMEOUT / 2, "woke only after {waited:?}");
        });
        assert_eq!(shared.outstanding.load(Ordering::SeqCst), 9);
    }
}
