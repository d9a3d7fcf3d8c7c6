#!/usr/bin/env bash
# Where a proxy's CPU per request goes: user and kernel time, and context switches, of
# `sluice serve` (all its threads) and of one nginx worker, each proxying to the hello sample
# under `wrk -t1`, rounds interleaved (sluice, nginx, sluice, …). From /proc/PID/stat (utime,
# stime) and /proc/PID/task/*/status (context switches) before and after each measured run.
# Needs wrk, nginx and a release build.
#
#   scripts/cpu-split.sh                                  # 32 connections, 3 rounds × 5 s
#   CONNS=1 ROUNDS=5 DURATION=5s SLUICE=path/to/sluice scripts/cpu-split.sh
#
# Both proxies send to an instance of the same program (Sluice to the one it runs, nginx to one
# started here); nginx runs 1 worker with a keep-alive upstream, no access log.
set -euo pipefail
SLUICE=${SLUICE:-target/release/sluice}
CONNS=${CONNS:-32}; ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-5s}
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
test -x "$NGINX" || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }
W=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"' EXIT
poll() { local d=$(( $(date +%s) + $1 )); shift; until "$@" >/dev/null 2>&1; do (( $(date +%s) < d )) || { echo "timeout: $*" >&2; exit 1; }; sleep 0.05; done; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HOST=helloworld-go.default.localhost

# Sluice with Knative's helloworld-go sample.
"$SLUICE" serve --state-dir "$W/s" --api 127.0.0.1:0 --http 127.0.0.1:0 --metrics off >"$W/serve.log" 2>&1 &
SLUICE_PID=$!; PIDS+=($SLUICE_PID)
poll 30 test -s "$W/s/endpoints.json"
API=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$W/s/endpoints.json")
HTTP=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$W/s/endpoints.json")
poll 30 curl -sf "$API/version"
"$SLUICE" apply --api "$API" --state-dir "$W/s" -f manifests/samples/knative/helloworld-go.service.yaml >/dev/null
poll 60 curl -sf -H "Host: $HOST" "http://$HTTP/"

# nginx in front of the same program.
BACKEND_PORT=$(free_port); NGINX_PORT=$(free_port)
PORT=$BACKEND_PORT TARGET="Go Sample v1" "$SLUICE" sample hello >"$W/backend.log" 2>&1 &
PIDS+=($!)
cat >"$W/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream hello { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://hello; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
"$NGINX" -c "$W/nginx.conf" -p "$W" &
NGINX_MASTER=$!; PIDS+=($NGINX_MASTER)
poll 30 curl -sf "http://127.0.0.1:$NGINX_PORT/"
NGINX_PID=$(pgrep -P "$NGINX_MASTER" | head -1)

HZ=$(getconf CLK_TCK)
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/voluntary_ctxt_switches/ { s += $2 } END { print s }'; }
cpu_ticks() { awk '{ print $14, $15 }' /proc/"$1"/stat; } # user, system
measure() { # name pid url [host]
  local name=$1 pid=$2 url=$3 host=${4:-}
  local header=()
  [ -n "$host" ] && header=(-H "Host: $host")
  wrk -t1 -c"$CONNS" -d1s "${header[@]}" "$url" >/dev/null # warm-up
  local u1 s1 c1 u2 s2 c2
  read -r u1 s1 < <(cpu_ticks "$pid"); c1=$(switches "$pid")
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${header[@]}" "$url" >"$W/wrk.out"
  read -r u2 s2 < <(cpu_ticks "$pid"); c2=$(switches "$pid")
  if grep -q "Non-2xx\|Socket errors" "$W/wrk.out"; then echo "$name: errors"; cat "$W/wrk.out"; fi
  local n rps p99
  n=$(awk '/requests in/ { print $1 }' "$W/wrk.out")
  rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$W/wrk.out")
  p99=$(awk '$1 == "99%" { print $2 }' "$W/wrk.out")
  awk -v name="$name" -v n="$n" -v rps="$rps" -v p99="$p99" -v hz="$HZ" \
      -v u="$((u2 - u1))" -v s="$((s2 - s1))" -v c="$((c2 - c1))" \
      'BEGIN { printf "%-7s %9s %8s %12.2f %12.2f %12.2f %14.3f\n", name, rps, p99, u * 1e6 / hz / n, s * 1e6 / hz / n, (u + s) * 1e6 / hz / n, c / n }'
}
echo "connections=$CONNS rounds=$ROUNDS duration=$DURATION sluice=$SLUICE (pid $SLUICE_PID) nginx worker pid $NGINX_PID"
printf "%-7s %9s %8s %12s %12s %12s %14s\n" target "req/s" p99 "user µs/req" "sys µs/req" "total µs/req" "ctx sw/req"
for _ in $(seq "$ROUNDS"); do
  measure sluice "$SLUICE_PID" "http://$HTTP/" "$HOST"
  measure nginx "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/"
done
