#!/usr/bin/env bash
# The floor under any proxy on this machine: a byte relay (router/examples/proxy_cost.rs
# `relay`: one upstream connection per client connection, bytes copied both ways, no parsing,
# no routing) against nginx (1 worker, keep-alive upstream, the harness's config) and the router
# (the same example's `router`, one current-thread worker), all in front of the same hello
# backend, trials interleaved by `sluice bench --compare`. The relay's ratio to nginx bounds
# what any proxy's throughput could be here: it does the same system calls with almost no
# work of its own.
#
#   cargo build --release -p sluice-router --example proxy_cost && cargo build --release
#   scripts/relay-floor.sh                   # C=1 for one connection; TRIALS, DURATION
#
# Needs nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${C:-32}
bin=target/release/examples/proxy_cost
sluice=target/release/sluice
nginx=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$nginx" "$bin" "$sluice"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$(cat "$dir/nginx/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
wait_for() { until [ -s "$1" ]; do sleep 0.05; done; }

"$bin" backend > "$dir/backend.addr" & backend_pid=$!; pids+=("$backend_pid")
wait_for "$dir/backend.addr"
backend=$(cat "$dir/backend.addr")
"$bin" router "$backend" 100000000000 > "$dir/router.addr" & router_pid=$!; pids+=("$router_pid")
"$bin" relay "$backend" > "$dir/relay.addr" & relay_pid=$!; pids+=("$relay_pid")
wait_for "$dir/router.addr"
wait_for "$dir/relay.addr"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
conf=$("$sluice" bench nginx-config --listen "127.0.0.1:$port" --upstream "$backend" --prefix "$dir/nginx")
"$nginx" -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$conf" & pids+=($!)
deadline=$((SECONDS + 10))
until [ -s "$dir/nginx/nginx.pid" ] && worker=$(pgrep -f "nginx: worker process" -P "$(cat "$dir/nginx/nginx.pid")"); do
  [ $SECONDS -lt $deadline ] || { echo "nginx did not start" >&2; exit 1; }
  sleep 0.05
done

echo "layout: unpinned; the generator, the backend and the proxies share all $(nproc) cores; one worker each"
"$sluice" bench -c "$conns" -d "${DURATION:-5s}" --trials "${TRIALS:-3}" \
  --compare "nginx=http://127.0.0.1:$port/,host=bench.default" \
  --compare "relay=http://$(cat "$dir/relay.addr")/,host=bench.default" \
  --compare "router=http://$(cat "$dir/router.addr")/,host=bench.default" \
  --cpu-pid "nginx=$worker" --cpu-pid "relay=$relay_pid" --cpu-pid "router=$router_pid"
