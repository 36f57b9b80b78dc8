#!/usr/bin/env bash
# Builds every fuzz target of this crate and runs each for SECONDS (default 20), one after the
# other, on the pinned stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo fuzz pass its -Z flags;
# -s none: no sanitizer). Each run starts from the committed seeds (seeds/<target>) plus
# whatever corpus/<target> has grown; a crash leaves its input in artifacts/<target>.
# Prints one line per target with libFuzzer's executions; exits non-zero if any target crashed.
# Usage: kernel_component/fuzz/run-all.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
export RUSTC_BOOTSTRAP=1
export CARGO_INCREMENTAL=0

cargo fuzz build -s none || exit 1
targets=$(cargo fuzz list)
failed=()
summary=()
for t in $targets; do
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    log=$(mktemp)
    echo "== fuzz $t (${seconds} s)"
    if cargo fuzz run "$t" -s none "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=CRASH
        failed+=("$t")
        # The crash report: libFuzzer's lines and the panic.
        grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written|deadly signal|Timeout|out-of-memory" "$log" | head -20
    fi
    # libFuzzer's final line: "Done N runs in S second(s)".
    runs=$(grep -Eo "Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1 | awk '{print $2}')
    [ -n "$runs" ] || runs=$(grep -Eo "stat::number_of_executed_units: *[0-9]+" "$log" | tail -1 | grep -Eo "[0-9]+$")
    line=$(printf "%-20s %-6s %12s executions" "$t" "$status" "${runs:-?}")
    echo "$line"
    summary+=("$line")
    rm -f "$log"
done
echo "== fuzz summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: crashed: ${failed[*]} (inputs in kernel_component/fuzz/artifacts/)" >&2
    exit 1
fi
