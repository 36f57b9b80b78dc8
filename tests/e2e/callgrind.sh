#!/usr/bin/env bash
# Instruction counts (valgrind --tool=callgrind) of the capsule, against a plain MQTT client.
# Counts repeat on a shared machine where wall time does not; the workloads are in
# tests/e2e/examples/callgrind.rs.
#
#   A  one syscall round trip as an app sees it (encode, Kernel::syscall, decode): a 64-byte
#      QoS 1 Publish, and Status as the floor. Counted only inside the round-trip functions
#      (--toggle-collect) over N1 and N2 calls; the figure is the difference / (N2 - N1).
#   B  the kernel side (runner + kernel + MQTT link + in-process app channel, plain TCP) per
#      QoS 1 publish of 64 bytes, against rumqttc publishing the same message. The emulator
#      runs as its own process, outside callgrind. Counted between the workload's
#      measure_start and measure_end (--zero-before / --dump-before), which the capsule calls
#      on its kernel thread only (--separate-threads=yes: the app thread is left out), over BN
#      publishes after the login; the figure is the median of REPS runs (min..max beside it:
#      thread interleaving moves the capsule's count by several per cent, rumqttc's much less).
#
# Reading B across builds: code layout alone moves counts by a few per cent (the same rumqttc
# code measured 12.4k and 12.8k per publish in two builds), so compare the ratio to rumqttc of
# one run. And B is a whole event loop: a faster kernel leaves the runtime idle more often, and
# parking and timers cost instructions too.
#
# Usage: tests/e2e/callgrind.sh        (env: N1 N2 BN REPS VERSIONS OUT TOP)
# Needs valgrind and callgrind_annotate. No timing asserts: it only reports.
set -euo pipefail

cd "$(dirname "$0")/../.."
N1=${N1:-1000}
N2=${N2:-2000}
BN=${BN:-1000}
REPS=${REPS:-5}
VERSIONS=${VERSIONS:-"v311 v5"}
TOP=${TOP:-5}
OUT=${OUT:-target/callgrind}

for tool in valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install valgrind)" >&2; exit 1; }
done

cargo build --release -p aliot-e2e --example callgrind -p aliot-emulator --bin aliot-emulator
BIN=target/release/examples/callgrind
EMULATOR=target/release/aliot-emulator
rm -rf "$OUT"
mkdir -p "$OUT"

# Total instructions of one callgrind output file.
total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

# Instructions of the one dump --dump-before made: the measured window.
window() {
    local files=("$1".1*)
    [[ ${#files[@]} -eq 1 && -f ${files[0]} ]] || {
        echo "expected one dump for $1, got: ${files[*]}" >&2
        exit 1
    }
    total "${files[0]}"
}

# Self instructions of the window's functions that belong to the async event loop (tokio, mio,
# the runner's select, clock reads): the part that moves with thread interleaving. Frames that
# were on the stack when counting started carry the whole window as self cost; skipped.
event_loop() {
    local files=("$1".1*)
    callgrind_annotate --inclusive=no --threshold=100 "${files[0]}" 2>/dev/null |
        sed -n '/file:function/,$p' | awk -v total="$2" '
            NR > 2 && $1 ~ /^[0-9,]+$/ {
                ir = $1; gsub(",", "", ir)
                if (ir + 0 < total * 0.9 && $0 ~ /tokio::|mio::|Timespec|Instant|clock_gettime|HostClock|embassy_futures|epoll/)
                    sum += ir
            }
            END { print sum + 0 }'
}

cg() { valgrind --tool=callgrind "$@" >/dev/null 2>>"$OUT/valgrind.log"; }

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minmax() { tr ' ' '\n' | grep . | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo ".." hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ---- A
declare -A A
for case in publish status; do
    for n in "$N1" "$N2"; do
        cg --collect-atstart=no --toggle-collect="*::${case}_round_trip" \
            --callgrind-out-file="$OUT/a-$case-$n.out" "$BIN" syscall "$case" "$n"
    done
    A[$case]=$((($(total "$OUT/a-$case-$N2.out") - $(total "$OUT/a-$case-$N1.out")) / (N2 - N1)))
done

# ---- B: the emulator as a separate process on free ports.
"$EMULATOR" --registry tests/emulator/demo-registry.toml \
    --mqtt-port 0 --tls-port 0 --http-port 0 --https-port 0 >"$OUT/emulator.log" 2>&1 &
EMU_PID=$!
trap 'kill "$EMU_PID" 2>/dev/null || true' EXIT
PORT=
for _ in $(seq 300); do # 30 s at most
    PORT=$(sed -n 's|^MQTT  tcp://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$OUT/emulator.log")
    [[ -n $PORT ]] && break
    kill -0 "$EMU_PID" 2>/dev/null || { cat "$OUT/emulator.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $PORT ]] || { echo "the emulator did not start" >&2; exit 1; }

declare -A DEV RUM DEV_RANGE RUM_RANGE DEV_LOOP RUM_LOOP DEV_REST RUM_REST DEV_REST_RANGE RUM_REST_RANGE
WINDOW=(--zero-before='*::measure_start' --dump-before='*::measure_end')
for v in $VERSIONS; do
    dev=() rum=() dev_loop=() rum_loop=() dev_rest=() rum_rest=()
    for rep in $(seq "$REPS"); do
        cg "${WINDOW[@]}" --separate-threads=yes --callgrind-out-file="$OUT/b-device-$v-$rep.out" \
            "$BIN" device "$PORT" "$BN" "$v"
        cg "${WINDOW[@]}" --callgrind-out-file="$OUT/b-rumqttc-$v-$rep.out" \
            "$BIN" rumqttc "$PORT" "$BN" "$v"
        for side in device rumqttc; do
            file="$OUT/b-$side-$v-$rep.out"
            all=$(window "$file")
            loop=$(event_loop "$file" "$all")
            if [[ $side == device ]]; then
                dev+=($((all / BN))) dev_loop+=($((loop / BN))) dev_rest+=($(((all - loop) / BN)))
            else
                rum+=($((all / BN))) rum_loop+=($((loop / BN))) rum_rest+=($(((all - loop) / BN)))
            fi
        done
    done
    DEV[$v]=$(echo "${dev[*]}" | median)
    RUM[$v]=$(echo "${rum[*]}" | median)
    DEV_RANGE[$v]=$(echo "${dev[*]}" | minmax)
    RUM_RANGE[$v]=$(echo "${rum[*]}" | minmax)
    DEV_LOOP[$v]="$(echo "${dev_loop[*]}" | median) ($(echo "${dev_loop[*]}" | minmax))"
    RUM_LOOP[$v]="$(echo "${rum_loop[*]}" | median) ($(echo "${rum_loop[*]}" | minmax))"
    DEV_REST[$v]=$(echo "${dev_rest[*]}" | median)
    RUM_REST[$v]=$(echo "${rum_rest[*]}" | median)
    DEV_REST_RANGE[$v]=$(echo "${dev_rest[*]}" | minmax)
    RUM_REST_RANGE[$v]=$(echo "${rum_rest[*]}" | minmax)
done

echo
echo "Instructions (callgrind Ir), release build, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '%-52s %22s %32s %6s\n' figure capsule baseline ratio
printf '%-52s %22s %32s %6s\n' "A  Publish 64 B QoS 1: syscall round trip" "${A[publish]}" \
    "Status round trip ${A[status]}" "$(ratio "${A[publish]}" "${A[status]}")"
printf '%-52s %22s %32s %6s\n' "A  Status: syscall round trip" "${A[status]}" "" ""
for v in $VERSIONS; do
    label=$([[ $v == v311 ]] && echo 3.1.1 || echo 5)
    printf '%-52s %22s %32s %6s\n' "B  kernel side per QoS 1 publish, MQTT $label" \
        "${DEV[$v]} (${DEV_RANGE[$v]})" "rumqttc ${RUM[$v]} (${RUM_RANGE[$v]})" \
        "$(ratio "${DEV[$v]}" "${RUM[$v]}")"
    printf '%-52s %22s %32s %6s\n' "   of which the event loop (tokio, select, clock)" \
        "${DEV_LOOP[$v]}" "rumqttc ${RUM_LOOP[$v]}" ""
    printf '%-52s %22s %32s %6s\n' "   the rest" "${DEV_REST[$v]} (${DEV_REST_RANGE[$v]})" \
        "rumqttc ${RUM_REST[$v]} (${RUM_REST_RANGE[$v]})" "$(ratio "${DEV_REST[$v]}" "${RUM_REST[$v]}")"
done
echo
echo "A = (Ir of $N2 calls - Ir of $N1 calls) / $((N2 - N1)); B = Ir of $BN publishes / $BN, median of $REPS runs (min..max)"
echo
echo "Top $TOP functions of the Publish round trip, self instructions per call:"
callgrind_annotate --inclusive=no "$OUT/a-publish-$N2.out" 2>/dev/null |
    sed -n '/file:function/,$p' | sed -n "3,$((TOP + 2))p" | sed -E 's/ \[[^]]*\]$//; s/\?\?\?://' |
    awk -v n="$N2" '{ ir = $1; gsub(",", "", ir); $1 = sprintf("%7.0f", ir / n); print }'
echo
echo "callgrind outputs: $OUT (callgrind_annotate <file>)"
