//! The link-delay switch behind [`NetworkHandle::set_link_delay`]: a one-way latency and a
//! jitter per peer, added to everything this endpoint sends it, for measuring under
//! wide-area conditions on one machine (whose kernel may lack `netem`). Set the same on
//! every endpoint, a one-way delay of d gives a round-trip time of 2d.
//!
//! The writers hold each message for its delay in a line of their own, in order: a
//! message's due time is never before the previous one's, as on a TCP connection, so
//! jitter delays but never reorders. Requests (block and batch sync) wait the round trip
//! before they are sent. Nothing but a test, a benchmark or an operator's admin call ever
//! sets it; unset, the writers pay one atomic read per message.
//!
//! [`NetworkHandle::set_link_delay`]: super::NetworkHandle::set_link_delay

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A delay set for one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkDelay {
    pub one_way: Duration,
    /// Each message waits a further uniform draw in `0..=jitter`.
    pub jitter: Duration,
}

impl LinkDelay {
    pub fn is_none(&self) -> bool {
        self.one_way.is_zero() && self.jitter.is_zero()
    }
}

/// The most a link may be delayed: far beyond any planet-scale round trip, and short
/// enough that the writers' lines stay bounded.
pub const MAX_LINK_DELAY: Duration = Duration::from_secs(2);

/// Delays by committee index, in microseconds; never one at the endpoint's own index.
pub(super) struct LinkDelays {
    one_way_us: Vec<AtomicU64>,
    jitter_us: Vec<AtomicU64>,
    local_index: Option<usize>,
}

impl LinkDelays {
    pub(super) fn new(size: usize, local_index: Option<usize>) -> LinkDelays {
        LinkDelays {
            one_way_us: (0..size).map(|_| AtomicU64::new(0)).collect(),
            jitter_us: (0..size).map(|_| AtomicU64::new(0)).collect(),
            local_index,
        }
    }

    pub(super) fn of(&self, index: usize) -> LinkDelay {
        let us = |v: &Vec<AtomicU64>| {
            Duration::from_micros(v.get(index).map_or(0, |a| a.load(Ordering::Relaxed)))
        };
        LinkDelay {
            one_way: us(&self.one_way_us),
            jitter: us(&self.jitter_us),
        }
    }

    /// Sets `delay` (capped at [`MAX_LINK_DELAY`]) for `indices`, or for every peer when
    /// `None`; unknown indices are ignored.
    pub(super) fn set(&self, indices: Option<&[usize]>, delay: LinkDelay) {
        let cap = |d: Duration| d.min(MAX_LINK_DELAY).as_micros() as u64;
        for i in 0..self.one_way_us.len() {
            if Some(i) != self.local_index && indices.is_none_or(|set| set.contains(&i)) {
                self.one_way_us[i].store(cap(delay.one_way), Ordering::Relaxed);
                self.jitter_us[i].store(cap(delay.jitter), Ordering::Relaxed);
            }
        }
    }

    /// Every peer's delay, by index.
    pub(super) fn all(&self) -> Vec<LinkDelay> {
        (0..self.one_way_us.len()).map(|i| self.of(i)).collect()
    }
}
