//! The partition switch behind [`NetworkHandle::set_partitioned`]: the validators whose
//! traffic this endpoint drops, both ways, read by the handle on the way out and by the
//! readers on the way in.
//!
//! Connections stay up, as with a filtering firewall, so healing needs no redial; nothing
//! but a test or an operator's admin call ever sets it.
//!
//! Invariant: the endpoint's own index is never blocked.
//!
//! [`NetworkHandle::set_partitioned`]: super::NetworkHandle::set_partitioned

use std::sync::atomic::{AtomicBool, Ordering};

/// Validators whose traffic this endpoint drops, by committee index.
pub(super) struct PeerFilter {
    blocked: Vec<AtomicBool>,
}

impl PeerFilter {
    pub(super) fn new(size: usize) -> PeerFilter {
        PeerFilter {
            blocked: (0..size).map(|_| Default::default()).collect(),
        }
    }

    pub(super) fn blocks(&self, index: usize) -> bool {
        self.blocked
            .get(index)
            .is_some_and(|b| b.load(Ordering::Relaxed))
    }

    /// Blocks exactly `indices`, except `local_index`; unknown indices are ignored.
    pub(super) fn set(&self, indices: &[usize], local_index: Option<usize>) {
        for (i, blocked) in self.blocked.iter().enumerate() {
            let on = indices.contains(&i) && Some(i) != local_index;
            blocked.store(on, Ordering::Relaxed);
        }
    }

    /// The indices now blocked.
    pub(super) fn blocked(&self) -> Vec<usize> {
        (0..self.blocked.len())
            .filter(|&i| self.blocks(i))
            .collect()
    }
}
