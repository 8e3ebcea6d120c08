//! Helpers shared by the testnet crate's process-level tests.

use std::path::PathBuf;

/// The `ordo-testnet` binary, after checking that the `ordo` it starts is next to it.
pub fn tool() -> PathBuf {
    let tool = PathBuf::from(env!("CARGO_BIN_EXE_ordo-testnet"));
    let ordo = tool.with_file_name("ordo");
    assert!(
        ordo.is_file(),
        "{} is missing: build it first with `cargo build -p ordo-cli --bin ordo`",
        ordo.display()
    );
    tool
}
