#!/usr/bin/env bash
# The main job: build in release, then bring a local 4-validator testnet up, load it with
# signed transfers for 30 s (after a 5 s warm-up), bring it down, and print the summary:
# committed TPS, latency percentiles, the accounting identity and the core count.
# Extra arguments go to `ordo bench` (for example `--validators 1` or `--rate 8000`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh

echo "== cargo build --release (the first build compiles RocksDB and libp2p: 15-20 minutes on 2 cores)"
cargo build --release --locked --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"
echo
echo "== ordo bench --local --validators 4 --duration 30s --warmup 5s (closed loop, 10,000 accounts)"
"$bin/ordo" bench --local --validators 4 --duration 30s --warmup 5s --json bench-report.json "$@"
