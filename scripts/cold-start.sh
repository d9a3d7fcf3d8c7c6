#!/usr/bin/env bash
# Cold start, measured: Sluice's request → first response byte at zero instances, beside the
# sample app's own start → ready time, so Sluice's share is the difference.
#
#   scripts/cold-start.sh              # 10 cold starts each
#   scripts/cold-start.sh -n 30        # 30 each
#   SLUICE=path/to/sluice scripts/cold-start.sh   # skip the build, use this binary
#   KEEP=dir scripts/cold-start.sh    # keep the revision logs (markers: starting, ready, stopped)
#   SERVE_ARGS=--network-namespaces scripts/cold-start.sh   # more `sluice serve` flags
#
# What it does (release build):
#   1. `sluice serve` on free ports with a temporary state dir; config-autoscaler with
#      `scale-to-zero-grace-period: 1s`, then the helloworld sample with
#      `autoscaling.knative.dev/window: 6s` (the shortest stable window Knative allows);
#   2. N times: wait until the revision's instance has stopped (its log says so), send one
#      request through the router and time request sent → first response byte;
#   3. after each, start `sluice sample hello` (what the sample's image runs) directly on a free
#      port and time spawn → first HTTP response, polling every 1 ms (the process's own start →
#      ready) and every 50 ms (Sluice's fixed readiness poll before this script existed);
#   4. p50/p90/max of each, where Sluice's time went (from the revision log's markers), and
#      Sluice's p50 minus the process's.
# Every 7-8 s cold start waits for the scale to zero, so N=10 takes about two minutes.
set -euo pipefail

N=10
while (($#)); do
    case $1 in
        -n) N=${2:?}; shift 2 ;;
        *) echo "usage: $0 [-n COUNT]" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "cold-start: python3 is not installed" >&2; exit 2; }

if [[ -z ${SLUICE:-} ]]; then
    cargo build --release -q
    SLUICE=${CARGO_TARGET_DIR:-$PWD/target}/release/sluice
fi
WORK=$(mktemp -d)
SERVE=
cleanup() {
    [[ -n $SERVE ]] && { kill -TERM "$SERVE" 2>/dev/null || true; wait "$SERVE" 2>/dev/null || true; }
    [[ -n ${KEEP:-} ]] && cp -r "$WORK/state/logs" "$KEEP"; rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
"$SLUICE" serve --state-dir "$WORK/state" --api 127.0.0.1:0 --http 127.0.0.1:0 ${SERVE_ARGS:-} >"$WORK/serve.log" 2>&1 &
SERVE=$!
for _ in $(seq 300); do [[ -s $WORK/state/endpoints.json ]] && break; sleep 0.01; done
API=$(sed -n 's/.*"api": *"\([^"]*\)".*/\1/p' "$WORK/state/endpoints.json")
HTTP=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$WORK/state/endpoints.json")
[[ -n $API && -n $HTTP ]] || { echo "cold-start: sluice serve did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }

cat >"$WORK/config.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: config-autoscaler
  namespace: knative-serving
data:
  scale-to-zero-grace-period: "1s"
EOF
sed 's|^  template:$|  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/window: "6s"|' \
    manifests/samples/knative/helloworld-go.service.yaml >"$WORK/hello.yaml"
grep -q 'autoscaling.knative.dev/window' "$WORK/hello.yaml" || { echo "cold-start: sample layout changed" >&2; exit 1; }
"$SLUICE" apply --api "$API" --state-dir "$WORK/state" -f "$WORK/config.yaml" >/dev/null
"$SLUICE" apply --api "$API" --state-dir "$WORK/state" -f "$WORK/hello.yaml" >/dev/null

python3 - "$N" "$SLUICE" "$HTTP" "$WORK/state/logs/default/helloworld-go-00001.log" <<'EOF'
import calendar, os, socket, subprocess, sys, time

n, sluice, http, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
host, port = http.rsplit(":", 1)
HOST = "helloworld-go.default.localhost"

def fail(msg):
    print(f"cold-start: {msg}", file=sys.stderr)
    sys.exit(1)

def first_byte(addr, host_header, timeout):
    """Seconds from sending a GET to its first response byte; None if it cannot connect."""
    try:
        s = socket.create_connection(addr, timeout=timeout)
    except OSError:
        return None
    with s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
        t = time.perf_counter()
        s.sendall(req)
        head = s.recv(64)
        elapsed = time.perf_counter() - t
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            fail(f"not a 200: {(head + rest)[:200]!r}")
        return elapsed

def instances_stopped():
    try:
        text = open(log, encoding="utf-8", errors="replace").read()
    except FileNotFoundError:
        return False
    lines = text.splitlines()
    started = sum(" starting on port " in l for l in lines)
    stopped = sum(l.startswith("[sluice] ") and l.endswith(" stopped") for l in lines)
    return started > 0 and started == stopped

def wait_for_zero(limit=60):
    deadline = time.monotonic() + limit
    while not instances_stopped():
        if time.monotonic() > deadline:
            fail("the revision did not scale to zero")
        time.sleep(0.1)
    time.sleep(0.2)  # let the stopped process's port and the gate settle

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def direct(poll):
    """Seconds from spawning the sample app to its first HTTP response, polling every `poll`."""
    p = free_port()
    env = dict(os.environ, PORT=str(p), TARGET="Go Sample v1")
    t = time.perf_counter()
    child = subprocess.Popen([sluice, "sample", "hello"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t + 10
        while True:
            if first_byte(("127.0.0.1", p), f"127.0.0.1:{p}", 1) is not None:
                return time.perf_counter() - t
            if time.perf_counter() > deadline:
                fail("the sample app did not answer")
            time.sleep(poll)
    finally:
        child.terminate()
        child.wait()

def stats(xs):
    xs = sorted(x * 1000 for x in xs)
    pick = lambda q: xs[min(len(xs) - 1, max(0, round(q * len(xs) + 0.5) - 1))]
    return pick(0.5), pick(0.9), xs[-1]

# Warm up: the first request after apply proves the path works (not counted).
deadline = time.monotonic() + 30
while first_byte((host, int(port)), HOST, 5) is None:
    if time.monotonic() > deadline:
        fail("the router did not answer")
    time.sleep(0.05)

def marker_times(kind):
    """Wall-clock seconds of the revision log's `instance N <kind>` markers, in order."""
    out = []
    for line in open(log, encoding="utf-8", errors="replace"):
        parts = line.split(" ", 4)
        if len(parts) >= 4 and parts[0] == "[sluice]" and parts[2] == "instance" and parts[4].startswith(kind):
            stamp = parts[1].rstrip("Z")
            whole, _, frac = stamp.partition(".")
            out.append(calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0")))
    return out

sluice_runs, phases, poll1, poll50 = [], [], [], []
for i in range(n):
    wait_for_zero()
    sent = time.time()
    t = first_byte((host, int(port)), HOST, 30)
    if t is None:
        fail("cannot connect to the router")
    sluice_runs.append(t)
    # Where the time went, from the revision log's markers (wall clock, so approximate).
    starting, ready = marker_times("starting")[-1], marker_times("ready")[-1]
    phases.append((starting - sent, ready - starting, sent + t - ready))
    # The app alone right after, so both see the same load on a shared machine.
    poll1.append(direct(0.001))
    poll50.append(direct(0.05))
    print(f"  cold start {i + 1}/{n}: through sluice {t * 1000:.1f} ms, "
          f"app alone {poll1[-1] * 1000:.1f} ms (1 ms polling)", file=sys.stderr)

rows = [("through sluice: request → first byte, at zero", sluice_runs),
        ("sample app alone, polled every 1 ms", poll1),
        ("sample app alone, polled every 50 ms", poll50)]
print(f"\n== cold start, {n} runs each ({os.cpu_count()} cores) ==")
print(f"{'':48} {'p50':>8} {'p90':>8} {'max':>8}")
for name, xs in rows:
    print(f"{name:48} " + " ".join(f"{v:6.1f}ms" for v in stats(xs)))
names = ("request → spawn", "spawn → probe passed", "probe passed → first byte")
print("through sluice, by phase (p50; from the log's markers): " +
      ", ".join(f"{name} {stats([p[k] for p in phases])[0]:.1f} ms" for k, name in enumerate(names)))
s50, p50 = stats(sluice_runs)[0], stats(poll1)[0]
print(f"Sluice's share at p50 (through sluice − app alone, 1 ms polling): {s50 - p50:.1f} ms")
EOF
