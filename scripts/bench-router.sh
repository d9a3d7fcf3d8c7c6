#!/usr/bin/env bash
# Retired in favour of the harness: a thin wrapper of `sluice bench steady` (the hello sample
# direct, through `sluice serve`, and through nginx when installed; trials interleaved; medians,
# ratios to direct, and CPU time per request), at 32 connections and then at 1.
#
#   scripts/bench-router.sh                      # 10 s per trial, 3 trials per target
#   DURATION=5s ROUNDS=1 scripts/bench-router.sh
#   SLUICE=path/to/sluice scripts/bench-router.sh   # skip the build, use this binary
#   scripts/bench-router.sh --pin load=0 --pin sluice=1 --pin nginx=1 --pin backend=1
#
# Extra arguments go to `sluice bench steady` (see `sluice bench steady --help`). Then the cold
# start, as this script timed it before: `sluice bench cold-start --new-service` (apply → first
# 200 through the router, against the app's own spawn → first 200; scale from zero, the
# default of `sluice bench cold-start`, is scripts/cold-start.sh).
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
cd "$(dirname "$0")/.."

if [[ -z ${SLUICE:-} ]]; then
    cargo build --release -q
    SLUICE=${CARGO_TARGET_DIR:-$PWD/target}/release/sluice
fi
for conns in 32 1; do
    echo "== sluice bench steady -c $conns --duration $DURATION --trials $ROUNDS $*"
    "$SLUICE" bench steady -c "$conns" --duration "$DURATION" --trials "$ROUNDS" "$@"
done
echo "== sluice bench cold-start --new-service --iterations 10"
"$SLUICE" bench cold-start --new-service --iterations 10
