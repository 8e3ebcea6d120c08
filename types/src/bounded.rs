//! A set that remembers at most a fixed number of members, forgetting the oldest first:
//! the "seen" window that deduplication, verification caches and replay guards need
//! wherever input is unbounded.
//!
//! Invariant: `members` and `order` hold the same elements, `order` oldest first, and
//! there are never more than `capacity` of them.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

#[derive(Debug, Clone)]
pub struct BoundedSet<T> {
    members: HashSet<T>,
    order: VecDeque<T>,
    capacity: usize,
}

impl<T: Eq + Hash + Clone> BoundedSet<T> {
    /// A set of at most `capacity` (at least 1) members.
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            members: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds `value`; false if it was a member already. Forgets the oldest member when full.
    pub fn insert(&mut self, value: T) -> bool {
        if !self.members.insert(value.clone()) {
            return false;
        }
        self.order.push_back(value);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.members.remove(&old);
            }
        }
        true
    }

    pub fn contains(&self, value: &T) -> bool {
        self.members.contains(value)
    }

    /// Forgets `value` (costs a scan of the order: for rare removals).
    pub fn remove(&mut self, value: &T) -> bool {
        if !self.members.remove(value) {
            return false;
        }
        self.order.retain(|v| v != value);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_members_only() {
        let mut s = BoundedSet::new(3);
        assert!(s.insert(1));
        assert!(!s.insert(1), "a member already");
        s.insert(2);
        s.insert(3);
        s.insert(4);
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&1), "the oldest was forgotten");
        assert!(s.contains(&4));
        assert!(s.remove(&3));
        assert!(!s.contains(&3));
        assert!(s.insert(1), "forgotten members may come back");
        assert_eq!(s.len(), 3);
    }
}
