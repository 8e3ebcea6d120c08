#!/usr/bin/env bash
# The main job. Ordo's local testnet and end-to-end benchmark are not built yet, so this
# builds everything in release and runs the benchmarks of the parts that work today.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

echo "== cargo build --release (the first build compiles RocksDB and libp2p: 10-15 minutes on 2 cores)"
cargo build --release --locked --workspace --bins
echo
echo "== signatures, encoding and hashing (one core)"
target/release/crypto-bench
