//! Who can reach whom before the network heals.
//!
//! Invariant: connectivity is a pure function of the scenario (its seed and fault), the
//! time and the message's round, so replaying a seed replays every partition.

use ordo_types::Hash32;
use rand::rngs::StdRng;
use rand::Rng;

use super::{Fault, SimConfig};
use crate::messages::Round;

/// Rounds that share one twins partition, so that a side can chain two QCs.
const TWINS_ROUNDS_PER_PARTITION: Round = 8;

pub struct Partitions {
    fault: Fault,
    seed: u64,
    /// For [`Fault::Partition`]: from this time, node `k` is in group `groups[k]`.
    schedule: Vec<(u64, Vec<u8>)>,
    /// Validators; twins' second copies are the nodes after them.
    n: usize,
    twins: usize,
    static_split: bool,
}

impl Partitions {
    pub fn new(cfg: &SimConfig, nodes: usize, twins: usize, rng: &mut StdRng) -> Self {
        let mut schedule = Vec::new();
        if cfg.fault == Fault::Partition {
            let mut t = 0;
            while t < cfg.heal_at_ms {
                let groups: Vec<u8> = if rng.gen_bool(0.3) {
                    vec![0; nodes]
                } else {
                    (0..nodes).map(|_| rng.gen_range(0..2)).collect()
                };
                schedule.push((t, groups));
                t += rng.gen_range(500..4_000);
            }
        }
        Self {
            fault: cfg.fault,
            seed: cfg.seed,
            schedule,
            n: cfg.n,
            twins,
            static_split: cfg.twins_static_split,
        }
    }

    pub fn connected(&self, i: usize, j: usize, now: u64, round: Option<Round>) -> bool {
        match self.fault {
            Fault::Partition => {
                let idx = self.schedule.partition_point(|(t, _)| *t <= now);
                match idx.checked_sub(1).and_then(|k| self.schedule.get(k)) {
                    Some((_, groups)) => groups.get(i) == groups.get(j),
                    None => true,
                }
            }
            Fault::Twins(_) | Fault::ForgedSync(_) => match round {
                Some(r) => self.twins_group(i, r) == self.twins_group(j, r),
                None => true,
            },
            _ => true,
        }
    }

    /// In a split, each twin's first copy sits on side 0 and its second on side 1;
    /// honest nodes are spread by the round's hash.
    fn twins_group(&self, node: usize, round: Round) -> u8 {
        if self.static_split {
            return if node < self.twins {
                0
            } else if node >= self.n {
                1
            } else {
                ((node - self.twins) % 2) as u8
            };
        }
        let slot = round / TWINS_ROUNDS_PER_PARTITION;
        let h = Hash32::digest_parts(
            b"ordo/sim-twins\0",
            &[&self.seed.to_le_bytes(), &slot.to_le_bytes()],
        );
        if h.0[0] % 3 == 0 {
            return 0;
        }
        if node < self.twins {
            0
        } else if node >= self.n {
            1
        } else {
            h.0[1 + node % 31] & 1
        }
    }
}
