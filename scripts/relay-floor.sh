#!/usr/bin/env bash
# The floor under any proxy on this machine: a byte relay (proxy-cost/src/main.rs
# `relay`: one upstream connection per client connection, bytes copied both ways, no parsing,
# no routing) against nginx (1 worker, keep-alive upstream, the harness's config) and the router
# (the same program's `router`, one current-thread worker), all in front of the same hello
# backend, trials interleaved by `sluice bench --compare`. The relay's ratio to nginx bounds
# what any proxy's throughput could be here: it does the same system calls with almost no
# work of its own.
#
#   cargo build --release -p sluice-proxy-cost && cargo build --release
#   scripts/relay-floor.sh                   # C=1 for one connection; TRIALS, DURATION
#
# Needs nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${C:-32}
RELAY=1 source scripts/lib/proxies.sh

"$sluice" bench -c "$conns" -d "${DURATION:-5s}" --trials "${TRIALS:-3}" \
  --compare "nginx=http://$nginx_addr/,host=bench.default" \
  --compare "relay=http://$relay_addr/,host=bench.default" \
  --compare "router=http://$router_addr/,host=bench.default" \
  --cpu-pid "nginx=$worker" --cpu-pid "relay=$relay_pid" --cpu-pid "router=$router_pid"
