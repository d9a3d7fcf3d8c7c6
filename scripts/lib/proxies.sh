# Sourced by scripts/kernel-split.sh and scripts/relay-floor.sh, from the repository's root:
# starts the hello backend of proxy-cost/src/main.rs, the router in front of it (the
# same program, one current-thread worker), `proxy_cost relay` with RELAY=1, and nginx (the
# scenarios' config from `sluice bench nginx-config`); stops them all on exit. Sets `dir`,
# `backend`, `router_addr`, `router_pid`, `relay_addr`, `relay_pid`, `nginx_addr`, `worker` (the
# nginx worker's pid) and `sluice`. The tools a script needs beyond these are in NEEDS.
bin=target/release/proxy_cost
sluice=target/release/sluice
nginx=$(command -v nginx || echo /usr/sbin/nginx)
for tool in ${NEEDS:-} "$nginx" "$bin" "$sluice"; do
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

"$bin" backend > "$dir/backend.addr" & pids+=($!)
wait_for "$dir/backend.addr"
backend=$(cat "$dir/backend.addr")
"$bin" router "$backend" 100000000000 > "$dir/router.addr" & router_pid=$!; pids+=("$router_pid")
wait_for "$dir/router.addr"
router_addr=$(cat "$dir/router.addr")
if [ "${RELAY:-0}" = 1 ]; then
  "$bin" relay "$backend" > "$dir/relay.addr" & relay_pid=$!; pids+=("$relay_pid")
  wait_for "$dir/relay.addr"
  relay_addr=$(cat "$dir/relay.addr")
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nginx_addr=127.0.0.1:$port
conf=$("$sluice" bench nginx-config --listen "$nginx_addr" --upstream "$backend" --prefix "$dir/nginx")
"$nginx" -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$conf" & pids+=($!)
deadline=$((SECONDS + 10))
until [ -s "$dir/nginx/nginx.pid" ] && worker=$(pgrep -f "nginx: worker process" -P "$(cat "$dir/nginx/nginx.pid")"); do
  [ $SECONDS -lt $deadline ] || { echo "nginx did not start" >&2; exit 1; }
  sleep 0.05
done
