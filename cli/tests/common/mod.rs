//! Helpers shared by the process-level tests that start the `ordo` binary.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ordo_cli::localnet::ValidatorPorts;
use ordo_types::SeededRng;

/// Ports handed out by [`free_ports`] in this test process, never handed out twice: the
/// tests of one file run at once.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` ports free right now (bound, then released), drawn below the kernel's ephemeral
/// range: a port the OS hands out for outgoing connections (these tests' HTTP polls, the
/// validators' dials) can be taken between this check and a validator's bind, and the
/// validator then fails to start. Drawn at random so that test processes running at once
/// rarely pick the same ones.
pub fn free_ports(n: usize) -> Vec<u16> {
    const FIRST: u64 = 10_000;
    let low = ephemeral_low().max(FIRST + 1_000);
    // Entropy rather than a timestamp: tells apart processes and calls.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = SeededRng::new(u64::from(std::process::id()) ^ nanos);
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let mut ports = Vec::with_capacity(n);
    let mut draws = 0;
    while ports.len() < n {
        draws += 1;
        assert!(
            draws <= 100_000,
            "found no {n} free ports on 127.0.0.1 below {low}"
        );
        let port = (FIRST + rng.below(low - FIRST)) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            ports.push(port);
        }
    }
    ports
}

/// The first port of the kernel's range for outgoing connections (Linux's default if it
/// cannot be read).
fn ephemeral_low() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Polls `cond` every 100 ms until it holds or `within` passes.
#[allow(dead_code)] // not every test file waits
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Free p2p, RPC and metrics ports for `n` validators of a local network (see
/// [`free_ports`]).
pub fn validator_ports(n: usize) -> Vec<ValidatorPorts> {
    free_ports(3 * n)
        .chunks(3)
        .map(|p| ValidatorPorts {
            p2p: p[0],
            rpc: p[1],
            metrics: p[2],
        })
        .collect()
}
