#!/usr/bin/env bash
# Cold start, measured: a thin wrapper of `sluice bench cold-start` (benches/src/scenario/
# cold_start.rs), which scales one revision from zero again and again and times request sent →
# first response byte through the router, beside the sample app's own spawn → first response,
# and prints Sluice's share (the difference at p50) and the instance's spawn → ready time.
#
#   scripts/cold-start.sh              # 10 cold starts each
#   scripts/cold-start.sh -n 30        # 30 each
#   SLUICE=path/to/sluice scripts/cold-start.sh   # skip the build, use this binary
#   SERVE_ARGS=--network-namespaces scripts/cold-start.sh   # more `sluice serve` flags
#   scripts/cold-start.sh -n 5 --json  # anything after -n goes to `sluice bench cold-start`
#
# Every cold start waits about 8 s for the revision to scale to zero (6 s window, 1 s grace).
set -euo pipefail

N=10
if [[ ${1:-} == -n ]]; then
    N=${2:?usage: $0 [-n COUNT] [sluice bench cold-start flags]}
    shift 2
fi
cd "$(dirname "$0")/.."
if [[ -z ${SLUICE:-} ]]; then
    cargo build --release -q --bin sluice
    SLUICE=${CARGO_TARGET_DIR:-$PWD/target}/release/sluice
fi
serve_args=()
for arg in ${SERVE_ARGS:-}; do
    serve_args+=("--serve-arg=$arg")
done
exec "$SLUICE" bench cold-start --iterations "$N" "${serve_args[@]}" "$@"
