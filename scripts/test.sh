#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh --contracts

echo "== contracts: the committed bytecode is what the pinned Solidity compiler produces"
(cd contracts && npm ci --no-audit --no-fund --loglevel=error && node build.js --check)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== control: forged block sync without its defences must fork (consensus/src/control.rs)"
cargo test -p consensus --features insecure-sync --locked --test sync_control
