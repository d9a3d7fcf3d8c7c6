#!/usr/bin/env bash
# The router on the shared runtime (--router-threads 0) against its worker threads (the default,
# or THREADS=N), the same release binary as two serves side by side, wrk -t1 rounds interleaved;
# router CPU per request from /proc. Needs wrk and a release build (cargo build --release).
#   ROUNDS=3 DURATION=5s scripts/ab-router-threads.sh
set -euo pipefail
SLUICE=${SLUICE:-target/release/sluice}
DURATION=${DURATION:-5s}; ROUNDS=${ROUNDS:-3}
cd "$(dirname "$0")/.."
W=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM $p 2>/dev/null||true; done; wait 2>/dev/null; rm -rf $W' EXIT
poll() { local d=$(( $(date +%s) + $1 )); shift; until "$@" >/dev/null 2>&1; do (( $(date +%s) < d )) || { echo "timeout: $*"; exit 1; }; sleep 0.05; done; }
start() { # name threads
  "$SLUICE" serve --state-dir "$W/$1" --api 127.0.0.1:0 --http 127.0.0.1:0 --metrics off --router-threads "$2" >"$W/$1.log" 2>&1 &
  PIDS+=($!); eval "PID_$1=$!"
  poll 30 test -s "$W/$1/endpoints.json"
  local api=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$W/$1/endpoints.json")
  eval "HTTP_$1=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$W/$1/endpoints.json")"
  poll 30 curl -sf "$api/version"
  "$SLUICE" apply --api "$api" --state-dir "$W/$1" -f manifests/samples/knative/helloworld-go.service.yaml >/dev/null
  local h; eval "h=\$HTTP_$1"; poll 60 curl -sf -H "Host: helloworld-go.default.localhost" "http://$h/"
}
start shared 0; start workers ${THREADS:-2}
HZ=$(getconf CLK_TCK)
run() { # name conns
  local pid h; eval "pid=\$PID_$1; h=\$HTTP_$1"
  local b=$(awk '{print $14+$15}' /proc/$pid/stat)
  wrk -t1 -c$2 -d$DURATION --latency -H "Host: helloworld-go.default.localhost" "http://$h/" > $W/wrk.out
  local a=$(awk '{print $14+$15}' /proc/$pid/stat)
  grep -q "Non-2xx\|Socket errors" $W/wrk.out && { echo "errors:"; cat $W/wrk.out; }
  awk -v name=$1 -v c=$2 -v t=$((a-b)) -v hz=$HZ '
   function us(v){ if (v ~ /us$/) return v+0; if (v ~ /ms$/) return v*1000; if (v ~ /s$/) return v*1000000; return v }
   /Requests\/sec/ {rps=$2} $1=="50%" {p50=us($2)} $1=="99%" {p99=us($2)} / requests in / {n=$1}
   END { printf "%-8s c=%-2s %8.0f rps  p50 %6.0f us  p99 %6.0f us  cpu %5.1f us/req\n", name, c, rps, p50, p99, t*1e6/hz/n }' $W/wrk.out
}
for n in shared workers; do eval "h=\$HTTP_$n"; wrk -t1 -c8 -d2s -H "Host: helloworld-go.default.localhost" "http://$h/" >/dev/null; done
for c in 32 1; do for r in $(seq $ROUNDS); do run shared $c; run workers $c; done; done
