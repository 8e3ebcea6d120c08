//! Fuzz target bodies for every decoder of untrusted input that the validator runs, shared
//! by the cargo-fuzz crate (`fuzz/`) and the test suite so that the two exercise exactly the
//! same code. Compiled only for tests and the `fuzz` feature: a validator does not carry
//! them. The client's own decoder (HTTP answers) has its body in ordo-cli, checked by the
//! same harness ([`Suite`]).
//!
//! Each body takes arbitrary bytes and runs one decoder the way the node runs it: with the
//! node's size limit, and into the decoders the node applies next (an opaque sync request
//! is decoded again as a node request, a fetched batch's bytes as a batch). When the input
//! decodes, the body checks what must then hold:
//!
//! - binary wire formats are canonical (bincode with fixed-width integers, one encoding per
//!   value), so the decoded value re-encodes to exactly the input;
//! - text formats (TOML, JSON) accept many spellings of one value, so the value written
//!   back out parses to an equal value;
//! - whatever the node derives from a decoded value at once (hashes, digests, log lines,
//!   committees from a genesis file) is computed too.
//!
//! Invariant: a body panics only when one of those properties fails. A panic on any input
//! is a bug in a decoder, which is what a fuzzer must report.

mod ethereum;
mod mutate;
mod seeds;
mod suite;
mod text;
mod wire;

#[cfg(test)]
mod tests;

pub use mutate::{apply, random_edits, Edit};
pub use suite::{binaries, run_reporting, Suite};

/// One fuzz target: a decoder of untrusted input and valid inputs to start from.
pub struct Target {
    /// The cargo-fuzz target's name, and the seed corpus folder's (`fuzz/seeds/<name>`).
    pub name: &'static str,
    /// Runs the decoder on `data`; true when the input was accepted (so its properties
    /// were checked), false when it was refused.
    pub run: fn(&[u8]) -> bool,
    /// Valid inputs: every one of them is accepted by `run`.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, in the order the long run and the tests go through them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "transaction",
        run: wire::transaction,
        seeds: seeds::transaction,
    },
    Target {
        name: "transaction_json",
        run: text::transaction_json,
        seeds: seeds::transaction_json,
    },
    Target {
        name: "rpc_transactions",
        run: wire::rpc_transactions,
        seeds: seeds::rpc_transactions,
    },
    Target {
        name: "rpc_payloads",
        run: wire::rpc_payloads,
        seeds: seeds::rpc_payloads,
    },
    Target {
        name: "consensus_message",
        run: wire::consensus_message,
        seeds: seeds::consensus_message,
    },
    Target {
        name: "batch_message",
        run: wire::batch_message,
        seeds: seeds::batch_message,
    },
    Target {
        name: "sync_request",
        run: wire::sync_request,
        seeds: seeds::sync_request,
    },
    Target {
        name: "sync_response",
        run: wire::sync_response,
        seeds: seeds::sync_response,
    },
    Target {
        name: "frames",
        run: wire::frames,
        seeds: seeds::frames,
    },
    Target {
        name: "node_message",
        run: wire::node_message,
        seeds: seeds::node_message,
    },
    Target {
        name: "node_request",
        run: wire::node_request,
        seeds: seeds::node_request,
    },
    Target {
        name: "node_response",
        run: wire::node_response,
        seeds: seeds::node_response,
    },
    Target {
        name: "config",
        run: text::config,
        seeds: seeds::config,
    },
    Target {
        name: "genesis_json",
        run: text::genesis_json,
        seeds: seeds::genesis_json,
    },
    Target {
        name: "genesis_toml",
        run: text::genesis_toml,
        seeds: seeds::genesis_toml,
    },
    Target {
        name: "keyfile",
        run: text::keyfile,
        seeds: seeds::keyfile,
    },
    Target {
        name: "eth_transaction",
        run: ethereum::eth_transaction,
        seeds: seeds::eth_transaction,
    },
    Target {
        name: "eth_json_rpc",
        run: ethereum::eth_json_rpc,
        seeds: seeds::eth_json_rpc,
    },
];

/// The node's bodies as the harness checks them.
pub const SUITE: Suite = Suite {
    package: "ordo-node",
    module: "ordo_node::fuzz_targets",
    targets: TARGETS,
};

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    SUITE.target(name)
}

/// Runs target `name` on `data`; the entry point of the node's cargo-fuzz targets.
///
/// # Panics
///
/// When `name` is not a target (a fuzz target naming a body that does not exist), or
/// when the body finds a bug.
pub fn run(name: &str, data: &[u8]) -> bool {
    SUITE.run(name, data)
}
