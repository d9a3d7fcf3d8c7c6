#!/usr/bin/env bash
# Where a proxy's CPU goes under the harness's closed-loop load: the router (the real router in
# proxy-cost/src/main.rs, one current-thread worker) and nginx (1 worker, keep-alive
# upstream, the harness's config) in front of the same hello backend. For each: its throughput,
# the share of its CPU samples in the kernel, its own code, libc and the vDSO (`perf record -e
# cpu-clock`, 6 s), and its system calls per request (`strace -c`, 4 s; a request is counted as
# two `recvfrom`s, one from the client and one from the instance, on both proxies).
#
#   cargo build --release -p sluice-proxy-cost && cargo build --release
#   scripts/kernel-split.sh                  # C=1 for one connection
#
# Needs perf (linux-perf), strace and nginx; the numbers are shares and ratios, the machine's
# noise aside (each proxy is measured while nothing else but the generator and backend runs).
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${C:-32}
NEEDS="perf strace" RELAY=0 source scripts/lib/proxies.sh

measure() {
  local name=$1 url=$2 pid=$3
  (sleep 2; perf record -q -F 2000 -e cpu-clock -p "$pid" -o "$dir/perf.$name" -- sleep 6 >/dev/null 2>&1) &
  local rate watcher=$!
  rate=$("$sluice" bench "$url" --host bench.default -c "$conns" -d 9s 2>&1 | sed -n 's/.*= \([0-9]*\) req\/s.*/\1/p')
  wait "$watcher" || true
  (sleep 2; timeout -s INT 4 strace -c -f -p "$pid" -o "$dir/strace.$name" >/dev/null 2>&1) &
  watcher=$!
  "$sluice" bench "$url" --host bench.default -c "$conns" -d 7s >/dev/null 2>&1
  wait "$watcher" || true
  echo "== $name: $rate req/s at $conns connections"
  echo "CPU samples by where they ran:"
  perf report -i "$dir/perf.$name" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5
  echo "system calls per request:"
  awk '/recvfrom$/ {req = $4 / 2} {line[NR] = $0} END {
         for (i = 1; i <= NR; i++) { n = split(line[i], f, " "); if (f[n] ~ /^[a-z_0-9]+$/ && f[n] != "total" && f[n] != "syscall") {
           printf "  %-14s %6.3f\n", f[n], f[4] / req } } }' "$dir/strace.$name"
}
measure sluice "http://$router_addr/" "$router_pid"
measure nginx "http://$nginx_addr/" "$worker"
