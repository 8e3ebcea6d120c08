#!/usr/bin/env bash
# Disk use of a local 4-validator testnet over time: under `ordo bench`'s default load
# (closed loop, 6,500 in flight, transfers) for LOAD minutes, then idle for IDLE minutes.
# Prints one line a minute: elapsed time, phase, validator 0's executed height and oldest
# height kept, and each validator's data folder in MiB. The validators keep their default
# configuration (20,000 blocks of history, a snapshot every 10,000) unless RETAIN_BLOCKS
# or SNAPSHOT_INTERVAL say otherwise: a small window shows the plateau within minutes.
# `ordo bench` signs at most 3 million transactions up front: about 5 minutes of load
# here. Needs release binaries (`cargo build --release --workspace`).
#
#   [RETAIN_BLOCKS=N] [SNAPSHOT_INTERVAL=N] scripts/disk-growth.sh [LOAD_MINUTES] [IDLE_MINUTES]
#   (defaults: 5 and 10)
set -euo pipefail
cd "$(dirname "$0")/.."
load=${1:-5}
idle=${2:-10}
bin="${CARGO_TARGET_DIR:-target}/release"
dir=$(mktemp -d /tmp/ordo-disk-growth.XXXXXX)
trap '"$bin/ordo" testnet down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

"$bin/ordo" testnet up --dir "$dir" --port-base 17300 >/dev/null
if [ -n "${RETAIN_BLOCKS:-}${SNAPSHOT_INTERVAL:-}" ]; then
    "$bin/ordo" testnet down --dir "$dir" >/dev/null
    for config in "$dir"/v*/config.toml; do
        python3 - "$config" "${RETAIN_BLOCKS:-}" "${SNAPSHOT_INTERVAL:-}" <<'PY'
import re, sys
path, retain, interval = sys.argv[1:]
text = open(path).read()
for key, value in (("retain_blocks", retain), ("snapshot_interval_blocks", interval)):
    if value:
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, f"{key} not in {path}"
open(path, "w").write(text)
PY
    done
    "$bin/ordo" testnet up --dir "$dir" >/dev/null
fi
rpc=127.0.0.1:17301
metrics=127.0.0.1:17302
start=$(date +%s)

sample() {
    local phase=$1
    local status height oldest sizes
    status=$(curl -s "http://$rpc/v1/status" || true)
    height=$(echo "$status" | sed -n 's/.*"executed_height":\([0-9]*\).*/\1/p')
    oldest=$(curl -s "http://$metrics/metrics" | awk '/^ordo_storage_pruned_below /{print $2}')
    sizes=$(for v in 0 1 2 3; do du -sm "$dir/v$v/data" | cut -f1; done | paste -sd' ')
    printf '%5d s  %-5s  height %-7s oldest kept %-7s  MiB per validator: %s\n' \
        $(( $(date +%s) - start )) "$phase" "${height:-?}" "${oldest:-0}" "$sizes"
}

"$bin/ordo" bench --dir "$dir" --duration "${load}m" --warmup 5s --quiet \
    --json "$dir/bench.json" > "$dir/bench.out" 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
    sample load
    sleep 60
done
grep -E "committed|TPS" "$dir/bench.out" | head -5 || true
for _ in $(seq "$idle"); do
    sample idle
    sleep 60
done
sample idle
