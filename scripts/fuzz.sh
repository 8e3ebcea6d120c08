#!/usr/bin/env bash
# The long fuzz run: each cargo-fuzz target in turn for SECONDS_PER_TARGET (default 60),
# coverage-guided by libFuzzer, starting from the committed seeds (fuzz/seeds/<target>)
# and from what earlier runs kept (fuzz/corpus/<target>).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     e.g. scripts/fuzz.sh 600 config frames
#
# Runs on stable Rust: `-s none` builds without a sanitizer (AddressSanitizer needs nightly;
# the decoders are safe Rust, so what a fuzzer can find here is panics, overflows, hangs and
# failed round trips, all caught without it). The first build instruments every dependency,
# RocksDB and libp2p included, into fuzz/target: count 30 to 50 minutes on 2 cores.
# Ends with one line per target (executions, executions per second, corpus size) and a
# non-zero status if any target failed; a failing input is kept in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
case "$seconds" in
    '' | *[!0-9]*)
        echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
        exit 2
        ;;
esac

scripts/ensure-deps.sh
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "ordo: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

echo "== building ${#targets[@]} fuzz targets (cargo fuzz build -s none)"
(cd fuzz && cargo fuzz build -s none)

mkdir -p fuzz/logs
failed=()
summary=()
for t in "${targets[@]}"; do
    if [ ! -d "fuzz/seeds/$t" ]; then
        echo "ordo: no fuzz target called $t (see fuzz/fuzz_targets)" >&2
        exit 2
    fi
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/logs/$t.log"
    echo "== $t for ${seconds} s (log: $log)"
    status=0
    # The first corpus folder is where libFuzzer keeps new inputs; the seeds stay as committed.
    (cd fuzz && cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1) >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    line=$(printf '%-18s %12s executions %9s exec/s %6s corpus inputs' "$t" "${runs:-?}" "${speed:-?}" "$corpus")
    if [ "$status" -ne 0 ]; then
        line="$line  FAILED (exit $status)"
        failed+=("$t")
        grep -E 'panicked at|^SUMMARY|Test unit written to' "$log" | head -n 5 >&2 || true
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; replay one with: (cd fuzz && cargo fuzz run -s none <target> artifacts/<target>/<file>)" >&2
    exit 1
fi
