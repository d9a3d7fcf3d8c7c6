#!/usr/bin/env python3
"""Memory per idle client keep-alive connection of `sluice serve`'s router (issue 13's target:
at most 4 KiB). Starts serve, applies Knative's helloworld-go sample, then opens N connections
that each send one keep-alive request, read the whole response and stay open; prints VmRSS of
serve before and after, and the difference per connection. Twice (N, then N more), so a
one-off growth shows up as a difference between the two rounds. Connections are opened in
batches of 100, 1.5 s apart: the router parks a connection idle for 1 s and frees its buffers,
which malloc keeps for the next batch rather than returning them to the system, so opening all
at once would count buffers every connection held for a moment as if they were held for good.
Usage: scripts/idle-conn-memory.py [path/to/sluice] [N]   (default target/release/sluice 2000)"""
import json, os, resource, socket, subprocess, sys, tempfile, time, urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/sluice"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
HOST = "helloworld-go.default.localhost"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * N + 1024), hard))

d = tempfile.mkdtemp()
p = subprocess.Popen([BIN, "serve", "--state-dir", d, "--api", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metrics", "off"],
                     stderr=open(d + "/serve.log", "w"), stdout=subprocess.DEVNULL)
conns = []
try:
    def until(what, f, secs=60):
        end = time.time() + secs
        while time.time() < end:
            try:
                v = f()
                if v:
                    return v
            except Exception:
                pass
            time.sleep(0.05)
        sys.exit(f"timed out waiting for {what}")

    ep = until("endpoints.json", lambda: json.load(open(d + "/endpoints.json")))
    http_host, http_port = ep["http"].rsplit(":", 1)
    until("the API", lambda: urllib.request.urlopen(ep["api"] + "/version").status == 200)
    subprocess.run([BIN, "apply", "--api", ep["api"], "--state-dir", d, "-f",
                    os.path.join(ROOT, "manifests/samples/knative/helloworld-go.service.yaml")],
                   check=True, stdout=subprocess.DEVNULL)

    def one_request(s):
        s.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            c = s.recv(4096)
            if not c:
                raise ConnectionError("closed")
            data += c
        head, body = data.split(b"\r\n\r\n", 1)
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(body) < length:
            body += s.recv(4096)
        return head.split(b" ")[1] == b"200"

    def connect():
        s = socket.create_connection((http_host, int(http_port)))
        if not one_request(s):
            raise RuntimeError("not 200")
        return s

    until("the sample to answer through the router", lambda: connect().close() or True)
    def rss():
        for l in open(f"/proc/{p.pid}/status"):
            if l.startswith("VmRSS"):
                return int(l.split()[1]) * 1024
    # Warm: the router's pools, the instance, a few hundred connections opened and closed.
    for _ in range(300):
        connect().close()
    time.sleep(1)
    base = rss()
    print(f"{N} idle keep-alive connections, each after one request; serve pid {p.pid}")
    print(f"base: VmRSS {base / 1024:.0f} KiB")
    before = base
    for round in (1, 2):
        for i in range(N):
            conns.append(connect())
            if i % 100 == 99:
                time.sleep(1.5)
        time.sleep(2)
        now = rss()
        print(f"round {round}: {len(conns)} open: VmRSS {now / 1024:.0f} KiB, "
              f"+{(now - before) / 1024:.0f} KiB: {(now - before) / N:.0f} bytes per connection")
        before = now
    # Still served: the connections of the last batches answer a second request (older ones
    # may have passed the keep-alive, the shorter of the idle and header-read timeouts).
    recent = conns[-300:]
    ok = sum(one_request(s) for s in recent)
    print(f"second request on the last {len(recent)}: {ok} answered 200")
finally:
    for s in conns:
        s.close()
    p.terminate()
    p.wait(timeout=30)
