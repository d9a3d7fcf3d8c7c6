#!/usr/bin/env bash
# Router overhead and cold start, measured side by side on this machine.
#
#   scripts/bench-router.sh            # 10 s per wrk run
#   DURATION=5s ROUNDS=1 scripts/bench-router.sh
#   SLUICE=path/to/sluice scripts/bench-router.sh   # skip the build, use this binary
#
# What it does (release build):
#   1. cold start: `sluice serve` on free ports, apply Knative's helloworld-go sample, and time
#      apply → first 200 through the router (controller + process spawn + readiness probe);
#   2. the same sample app (`sluice sample hello`) started directly on its own port: the baseline;
#   3. wrk against the baseline and through the router, alternating, ROUNDS times each, at
#      32 connections (throughput) and 1 connection (per-request latency);
#   4. the router process's CPU time per request, from /proc/PID/stat.
# Nothing is pinned: wrk (-t1), the router and the backend share the machine's cores, so compare
# the ratios from one run, not absolute figures across machines.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench-router: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "bench-router: curl is not installed" >&2; exit 2; }

if [[ -z ${SLUICE:-} ]]; then
    cargo build --release -q
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
# Poll until a command succeeds, for at most $1 seconds.
poll() {
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || { echo "bench-router: timed out waiting for: $*" >&2; exit 1; }
        sleep 0.005
    done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# --- Sluice, and the cold start of the helloworld sample through it ---
"$SLUICE" serve --state-dir "$WORK/state" --api 127.0.0.1:0 --http 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVE=$!
PIDS+=("$SERVE")
poll 30 test -s "$WORK/state/endpoints.json"
API=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$WORK/state/endpoints.json")
HTTP=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$WORK/state/endpoints.json")
HOST=helloworld-go.default.localhost
poll 30 curl -sf "$API/version"

start=$(now_ms)
"$SLUICE" apply --api "$API" --state-dir "$WORK/state" -f manifests/samples/knative/helloworld-go.service.yaml >/dev/null
poll 30 curl -sf -H "Host: $HOST" "http://$HTTP/"
cold=$(( $(now_ms) - start ))

# --- the baseline: the same app, direct ---
DIRECT_PORT=$(free_port)
PORT=$DIRECT_PORT TARGET="Go Sample v1" "$SLUICE" sample hello >"$WORK/direct.log" 2>&1 &
PIDS+=("$!")
poll 10 curl -sf "http://127.0.0.1:$DIRECT_PORT/"

[[ $(curl -s -H "Host: $HOST" "http://$HTTP/") == "$(curl -s "http://127.0.0.1:$DIRECT_PORT/")" ]] \
    || { echo "bench-router: the router and the direct app answer differently" >&2; exit 1; }

# wrk against a URL (with an optional Host header); prints "rps p50 p99 requests".
run_wrk() {
    local conns=$1 url=$2 host=${3:-}
    local args=(-t1 "-c$conns" "-d$DURATION" --latency)
    [[ -n $host ]] && args+=(-H "Host: $host")
    wrk "${args[@]}" "$url" >"$WORK/wrk.out"
    if grep -q "Non-2xx\|Socket errors" "$WORK/wrk.out"; then
        echo "bench-router: errors during the run:" >&2; cat "$WORK/wrk.out" >&2; exit 1
    fi
    awk '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        / requests in / { n = $1 }
        END { printf "%.0f %.0f %.0f %d\n", rps, p50, p99, n }' "$WORK/wrk.out"
}

# Warm both paths (connection pools, page cache) before measuring.
wrk -t1 -c8 -d2s "http://127.0.0.1:$DIRECT_PORT/" >/dev/null
wrk -t1 -c8 -d2s -H "Host: $HOST" "http://$HTTP/" >/dev/null

HZ=$(getconf CLK_TCK)
declare -A sum
for conns in 32 1; do
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r rps p50 p99 _ < <(run_wrk "$conns" "http://127.0.0.1:$DIRECT_PORT/")
        printf 'direct  c=%-2s round %d: %7s rps  p50 %5s µs  p99 %6s µs\n' "$conns" "$r" "$rps" "$p50" "$p99"
        sum[direct,$conns,rps]=$(( ${sum[direct,$conns,rps]:-0} + rps ))
        sum[direct,$conns,p50]=$(( ${sum[direct,$conns,p50]:-0} + p50 ))
        sum[direct,$conns,p99]=$(( ${sum[direct,$conns,p99]:-0} + p99 ))

        before=$(cpu_ticks "$SERVE")
        read -r rps p50 p99 n < <(run_wrk "$conns" "http://$HTTP/" "$HOST")
        after=$(cpu_ticks "$SERVE")
        cpu_us=$(( (after - before) * 1000000 / HZ / (n > 0 ? n : 1) ))
        printf 'router  c=%-2s round %d: %7s rps  p50 %5s µs  p99 %6s µs  router CPU %s µs/request\n' \
            "$conns" "$r" "$rps" "$p50" "$p99" "$cpu_us"
        sum[router,$conns,rps]=$(( ${sum[router,$conns,rps]:-0} + rps ))
        sum[router,$conns,p50]=$(( ${sum[router,$conns,p50]:-0} + p50 ))
        sum[router,$conns,p99]=$(( ${sum[router,$conns,p99]:-0} + p99 ))
        sum[router,$conns,cpu]=$(( ${sum[router,$conns,cpu]:-0} + cpu_us ))
    done
done

echo
echo "== summary ($(nproc) cores, unpinned; wrk -t1 -d$DURATION, $ROUNDS rounds each, means) =="
echo "cold start (apply → first 200 through the router): ${cold} ms"
for conns in 32 1; do
    d_rps=$(( sum[direct,$conns,rps] / ROUNDS )); r_rps=$(( sum[router,$conns,rps] / ROUNDS ))
    d_p50=$(( sum[direct,$conns,p50] / ROUNDS )); r_p50=$(( sum[router,$conns,p50] / ROUNDS ))
    d_p99=$(( sum[direct,$conns,p99] / ROUNDS )); r_p99=$(( sum[router,$conns,p99] / ROUNDS ))
    r_cpu=$(( sum[router,$conns,cpu] / ROUNDS ))
    awk -v c="$conns" -v dr="$d_rps" -v rr="$r_rps" -v dp="$d_p50" -v rp="$r_p50" -v d9="$d_p99" -v r9="$r_p99" -v cpu="$r_cpu" 'BEGIN {
        printf "c=%-2s  rps direct %d, router %d (router/direct %.2f)   p50 direct %d µs, router %d µs (+%d µs)   p99 direct %d µs, router %d µs   router CPU %d µs/request\n",
            c, dr, rr, rr / dr, dp, rp, rp - dp, d9, r9, cpu }'
done
