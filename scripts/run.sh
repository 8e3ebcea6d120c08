#!/usr/bin/env bash
# The main job. Ordo's local testnet and end-to-end benchmark are not built yet, so this
# builds everything in release and runs the benchmarks of the parts that work today.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

echo "== cargo build --release (the first build compiles RocksDB and libp2p: 15-20 minutes on 2 cores)"
cargo build --release --locked --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"
echo
echo "== signatures, encoding and hashing (one core)"
"$bin/crypto-bench"
echo
echo "== execution: sequential vs parallel, 10,000-transaction blocks"
"$bin/exec-bench" --quick
echo
echo "== storage: per-block commit and state reads (RocksDB)"
"$bin/storage-bench"
echo
echo "== consensus: CPU per committed block and simulator figures"
"$bin/consensus-bench"
echo
echo "== network: batch dissemination across 4 local validators over libp2p"
"$bin/dissemination-bench"
