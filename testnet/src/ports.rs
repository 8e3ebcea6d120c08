//! Port checks before any validator starts: every port is bound once on 127.0.0.1 and
//! released, so that a busy port fails `up` at once with its name instead of a validator
//! dying later with a bind error in its log.

use std::net::TcpListener;

use ordo_node::localnet::ValidatorPorts;

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

/// A base port whose `3 * validators` consecutive ports are all free now: the OS picks a
/// free port (bind to port 0) and the block starting there is checked, a few times over.
pub fn find_free_base(validators: usize) -> Result<u16> {
    let span = 3 * validators.max(1);
    for _ in 0..64 {
        let probe = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| TestnetError::io("bind a probe port on 127.0.0.1", e))?;
        let base = probe
            .local_addr()
            .map_err(|e| TestnetError::io("read a probe port", e))?
            .port();
        drop(probe);
        if usize::from(base) + span > usize::from(u16::MAX) {
            continue;
        }
        if (0..span).all(|i| is_free(base + i as u16)) {
            return Ok(base);
        }
    }
    Err(TestnetError::Usage(format!(
        "found no {span} consecutive free ports on 127.0.0.1; pass --port-base"
    )))
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
        let base = find_free_base(4).unwrap();
        assert!((0..12).all(|i| is_free(base + i)));
    }
}
