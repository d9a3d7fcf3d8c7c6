#!/usr/bin/env bash
# The router's instructions per proxied request, counted by callgrind: the real router
# (proxy-cost/src/main.rs) under valgrind, a backend and a keep-alive client in other
# processes. Two runs, N1 and N2 requests; (I(N2) - I(N1)) / (N2 - N1) is one request's cost
# with start-up and shutdown cancelled out.
#
#   cargo build --release -p sluice-proxy-cost
#   scripts/proxy-cost.sh target/release/proxy_cost with-metrics
#   TRACE=off N1=200 N2=2200 scripts/proxy-cost.sh BINARY LABEL   # no traceparent generation
set -euo pipefail
bin=$1; label=$2; n1=${N1:-200}; n2=${N2:-2200}; trace=${TRACE:-}
out=$(mktemp -d)
"$bin" backend > "$out/backend.addr" & backend_pid=$!
trap 'kill $backend_pid 2>/dev/null || true; rm -rf "$out"' EXIT
until [ -s "$out/backend.addr" ]; do sleep 0.05; done
backend=$(cat "$out/backend.addr")
total() {
  local n=$1
  # shellcheck disable=SC2086 # $trace is one word or none
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" "$bin" router "$backend" "$n" $trace \
    > "$out/router.$n.addr" 2> "$out/valgrind.$n.log" & local vg=$!
  until [ -s "$out/router.$n.addr" ]; do sleep 0.05; done
  "$bin" client "$(cat "$out/router.$n.addr")" "$n"
  wait $vg
  grep -E '^(summary|totals):' "$out/cg.$n" | head -1 | awk '{print $2}'
}
i1=$(total "$n1"); i2=$(total "$n2")
echo "$label: I($n1)=$i1 I($n2)=$i2 per request=$(( (i2 - i1) / (n2 - n1) ))"
