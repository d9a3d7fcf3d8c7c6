#!/usr/bin/env bash
# The access log's cost per request: the router process's CPU time per request with
# `--access-log FILE` and without, measured side by side on this machine.
#
#   scripts/access-log-cost.sh
#   DURATION=5s ROUNDS=3 CONNS=8 scripts/access-log-cost.sh
#   SLUICE=path/to/sluice scripts/access-log-cost.sh   # skip the build, use this binary
#
# Two `sluice serve` (release build), one logging to a file, each serving Knative's
# helloworld-go sample; wrk runs against one then the other, ROUNDS times, and the CPU time of
# each serve process (/proc/PID/stat, utime + stime) is divided by the requests it answered.
# The sample instances are separate processes, so they are not counted. Nothing is pinned;
# compare the two figures from one run.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-8}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "access-log-cost: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "access-log-cost: curl is not installed" >&2; exit 2; }

if [[ -z ${SLUICE:-} ]]; then
    cargo build --release -q --bin sluice
    SLUICE=${CARGO_TARGET_DIR:-$PWD/target}/release/sluice
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

poll() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || { echo "access-log-cost: timed out waiting for: $*" >&2; exit 1; }
        sleep 0.005
    done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HOST=helloworld-go.default.localhost

# start NAME [serve args...]: a serve with the sample applied; sets PID_NAME and HTTP_NAME.
start() {
    local name=$1; shift
    local state="$WORK/$name"
    "$SLUICE" serve --state-dir "$state" --api 127.0.0.1:0 --http 127.0.0.1:0 --metrics 127.0.0.1:0 "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=("$!")
    printf -v "PID_$name" %s "$!"
    poll 30 test -s "$state/endpoints.json"
    local api http
    api=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$state/endpoints.json")
    http=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$state/endpoints.json")
    printf -v "HTTP_$name" %s "$http"
    poll 30 curl -sf "$api/version"
    "$SLUICE" apply --api "$api" --state-dir "$state" -f manifests/samples/knative/helloworld-go.service.yaml >/dev/null
    poll 60 curl -sf -H "Host: $HOST" "http://$http/"
    wrk -t1 "-c$CONNS" -d2s -H "Host: $HOST" "http://$http/" >/dev/null
}

start off
start on --access-log "$WORK/access.log"

# measure NAME: prints "requests cpu_ticks".
measure() {
    local pid_var=PID_$1 http_var=HTTP_$1
    local before after
    before=$(cpu_ticks "${!pid_var}")
    wrk -t1 "-c$CONNS" "-d$DURATION" -H "Host: $HOST" "http://${!http_var}/" >"$WORK/wrk.out"
    after=$(cpu_ticks "${!pid_var}")
    if grep -q "Non-2xx\|Socket errors" "$WORK/wrk.out"; then
        echo "access-log-cost: errors during the run:" >&2; cat "$WORK/wrk.out" >&2; exit 1
    fi
    echo "$(awk '/ requests in / { print $1 }' "$WORK/wrk.out") $(( after - before ))"
}

HZ=$(getconf CLK_TCK)
declare -A n t
for ((r = 1; r <= ROUNDS; r++)); do
    for name in off on; do
        read -r req ticks < <(measure "$name")
        n[$name]=$(( ${n[$name]:-0} + req )); t[$name]=$(( ${t[$name]:-0} + ticks ))
        awk -v name="$name" -v r="$r" -v req="$req" -v ticks="$ticks" -v hz="$HZ" 'BEGIN {
            printf "log %-3s round %d: %8d requests, %.2f µs CPU/request\n", name, r, req, ticks * 1e6 / hz / req }'
    done
done
sleep 1
lines=$(wc -l <"$WORK/access.log")
echo
echo "== summary ($(nproc) cores, unpinned; wrk -t1 -c$CONNS -d$DURATION, $ROUNDS rounds each) =="
awk -v n0="${n[off]}" -v t0="${t[off]}" -v n1="${n[on]}" -v t1="${t[on]}" -v hz="$HZ" -v lines="$lines" 'BEGIN {
    off = t0 * 1e6 / hz / n0; on = t1 * 1e6 / hz / n1
    printf "router CPU per request: log off %.2f µs, log on %.2f µs (+%.2f µs, %+.0f%%)\n", off, on, on - off, 100 * (on - off) / off
    printf "access-log lines written: %d (requests sent with the log on, warm-up and probes included: at least %d)\n", lines, n1 }'
