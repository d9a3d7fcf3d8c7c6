#!/usr/bin/env bash
# Two builds of Sluice side by side, measured by the harness in one interleaved run: each binary
# runs its own `sluice serve` with Knative's helloworld-go sample, and `sluice bench --compare`
# alternates their trials (A B A B …) and charges each serve's CPU time to its requests.
#
#   scripts/ab-binaries.sh OLD_BINARY NEW_BINARY              # 32 connections, 5 trials × 5 s
#   CONNS=1 TRIALS=3 DURATION=5s scripts/ab-binaries.sh A B   # other load
#
# The generator is NEW_BINARY's `sluice bench`. Nothing is pinned unless PIN is set, e.g.
# PIN="--pin load=0 --pin old=1 --pin new=1".
set -euo pipefail
OLD=${1:?usage: $0 OLD_BINARY NEW_BINARY}; NEW=${2:?usage: $0 OLD_BINARY NEW_BINARY}
CONNS=${CONNS:-32}; TRIALS=${TRIALS:-5}; DURATION=${DURATION:-5s}
cd "$(dirname "$0")/.."
W=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$W"' EXIT
poll() { local d=$(( $(date +%s) + $1 )); shift; until "$@" >/dev/null 2>&1; do (( $(date +%s) < d )) || { echo "timeout: $*" >&2; exit 1; }; sleep 0.05; done; }
HOST=helloworld-go.default.localhost
start() { # name binary
  "$2" serve --state-dir "$W/$1" --api 127.0.0.1:0 --http 127.0.0.1:0 --metrics off >"$W/$1.log" 2>&1 &
  PIDS+=($!); eval "PID_$1=$!"
  poll 30 test -s "$W/$1/endpoints.json"
  local api http
  api=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$W/$1/endpoints.json")
  http=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$W/$1/endpoints.json")
  eval "HTTP_$1=$http"
  poll 30 curl -sf "$api/version"
  "$2" apply --api "$api" --state-dir "$W/$1" -f manifests/samples/knative/helloworld-go.service.yaml >/dev/null
  poll 60 curl -sf -H "Host: $HOST" "http://$http/"
}
start old "$OLD"; start new "$NEW"
echo "old: $OLD (pid $PID_old)   new: $NEW (pid $PID_new)"
# shellcheck disable=SC2086 # PIN is a list of flags
"$NEW" bench --no-progress -c "$CONNS" -d "$DURATION" --trials "$TRIALS" ${PIN:-} \
  --compare "old=http://$HTTP_old/,host=$HOST" --compare "new=http://$HTTP_new/,host=$HOST" \
  --cpu-pid "old=$PID_old" --cpu-pid "new=$PID_new"
