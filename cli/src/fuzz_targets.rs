//! The fuzz body of the client's own decoder of untrusted input: a node's HTTP answer as
//! [`http::parse`] reads it. It lives beside the client it exercises and goes through the
//! node's harness ([`Suite`]) like the node's bodies do. Compiled only for tests and the
//! `fuzz` feature (which the cargo-fuzz crate, `fuzz/`, turns on).
//!
//! Invariant: the body panics only when the parser does, which is what a fuzzer must
//! report.

use ordo_node::fuzz_targets::{Suite, Target};

use crate::http;

/// Every target of this crate.
pub const TARGETS: &[Target] = &[Target {
    name: "http_response",
    run: http_response,
    seeds: http_response_seeds,
}];

/// This crate's bodies as the harness checks them.
pub const SUITE: Suite = Suite {
    package: "ordo-cli",
    module: "ordo_cli::fuzz_targets",
    targets: TARGETS,
};

/// Runs target `name` on `data`; the entry point of this crate's cargo-fuzz targets.
///
/// # Panics
///
/// When `name` is not a target of this crate, or when the body finds a bug.
pub fn run(name: &str, data: &[u8]) -> bool {
    SUITE.run(name, data)
}

/// A whole HTTP response as the CLI's client reads it from a node.
fn http_response(data: &[u8]) -> bool {
    let Ok(response) = http::parse(data) else {
        return false;
    };
    let _ = response.json();
    true
}

/// A plain answer and a chunked one with a chunk extension.
fn http_response_seeds() -> Vec<Vec<u8>> {
    vec![
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"ok\"}\n"
            .to_vec(),
        b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\n"
            .to_vec(),
    ]
}

#[cfg(test)]
mod tests {
    use ordo_node::fuzz_targets::{apply, run_reporting, Edit, TARGETS as NODE_TARGETS};
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_seed_is_accepted() {
        SUITE.check_seeds();
    }

    #[test]
    fn committed_seed_corpus_matches_the_seeds() {
        SUITE.check_seed_corpus();
    }

    #[test]
    fn every_target_has_a_cargo_fuzz_binary() {
        SUITE.check_binaries();
    }

    #[test]
    fn mutated_seeds_never_panic() {
        // Splices take from the node's seeds too: a JSON body or a binary message after a
        // valid header is what a confused or hostile node would send.
        let pool: Vec<Vec<u8>> = TARGETS
            .iter()
            .chain(NODE_TARGETS)
            .flat_map(|t| (t.seeds)())
            .collect();
        SUITE.check_mutated_seeds(&pool);
    }

    fn edit() -> impl Strategy<Value = Edit> {
        (any::<u8>(), any::<usize>(), any::<u64>()).prop_map(|(k, at, x)| Edit::from_raw(k, at, x))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_bytes_never_panic_the_parser(bytes in vec(any::<u8>(), 0..2048)) {
            for target in TARGETS {
                run_reporting(target, &bytes, "arbitrary bytes");
            }
        }

        #[test]
        fn mutated_answers_never_panic_the_parser(
            seed in any::<usize>(),
            edits in vec(edit(), 1..6),
        ) {
            for target in TARGETS {
                let seeds = (target.seeds)();
                let input = apply(&seeds[seed % seeds.len()], &edits, &seeds);
                run_reporting(target, &input, "a mutated seed");
            }
        }
    }
}
