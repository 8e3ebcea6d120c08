//! Port checks before any validator starts: every port is bound once on 127.0.0.1 and
//! released, so that a busy port fails `up` at once with its name instead of a validator
//! dying later with a bind error in its log.

use std::net::TcpListener;

use ordo_cli::localnet::ValidatorPorts;
use ordo_types::SeededRng;

use crate::error::{Result, TestnetError};

/// Fails with the first port of `validators` (index, ports) that cannot be bound now.
pub fn check_free(validators: &[(usize, ValidatorPorts)]) -> Result<()> {
    for (index, ports) in validators {
        for (role, port) in [
            ("p2p", ports.p2p),
            ("rpc", ports.rpc),
            ("metrics", ports.metrics),
        ] {
            if !is_free(port) {
                return Err(TestnetError::PortBusy {
                    port,
                    role,
                    index: *index,
                });
            }
        }
    }
    Ok(())
}

/// Whether `port` can be bound on 127.0.0.1 right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A base port whose `3 * validators` consecutive ports are all free now, below the
/// kernel's ephemeral range: a port the OS hands out for outgoing connections (the load's
/// own HTTP requests, dials) can be taken again at any moment, and a validator restarted
/// on it would fail to bind. Bases are drawn at random, so concurrent runs rarely collide.
pub fn find_free_base(validators: usize) -> Result<u16> {
    let span = 3 * validators.max(1) as u32;
    let (low, _) = ephemeral_range();
    let first = 10_000u32;
    let last = low.saturating_sub(span).max(first + 1);
    // Entropy rather than a timestamp: the process id and the nanoseconds tell apart callers
    // in other processes and in other threads of this one.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = SeededRng::new(u64::from(std::process::id()) ^ nanos);
    for _ in 0..256 {
        let base = first + rng.below(u64::from(last - first)) as u32;
        if base + span > u32::from(u16::MAX) {
            continue;
        }
        let base = base as u16;
        if (0..span as u16).all(|i| is_free(base + i)) {
            return Ok(base);
        }
    }
    Err(TestnetError::Usage(format!(
        "found no {span} consecutive free ports on 127.0.0.1 below {low}; pass --port-base"
    )))
}

/// The kernel's range for outgoing connections' local ports (Linux's default elsewhere).
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_named() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = holder.local_addr().unwrap().port();
        let ports = ValidatorPorts {
            p2p: find_free_base(1).unwrap(),
            rpc: busy,
            metrics: busy,
        };
        match check_free(&[(2, ports)]) {
            Err(TestnetError::PortBusy { port, role, index }) => {
                assert_eq!((port, role, index), (busy, "rpc", 2));
            }
            other => panic!("expected a busy port, got {other:?}"),
        }
    }

    #[test]
    fn a_found_base_is_free() {
        // Another test of this binary probes ports at the same time, so a block found free
        // may be taken by the time it is bound again: a few tries, each bound as a whole.
        let held = (0..3).find_map(|_| {
            let base = find_free_base(4).unwrap();
            // Out of the range the OS picks outgoing connections' ports from.
            assert!(u32::from(base) + 12 <= ephemeral_range().0);
            (0..12)
                .map(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
                .collect::<Option<Vec<_>>>()
        });
        assert!(held.is_some(), "no block found free could be bound");
    }
}
