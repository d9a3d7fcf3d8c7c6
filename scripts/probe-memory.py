#!/usr/bin/env python3
"""Memory of `sluice serve` under the API abuse of issue 8 (large bodies, watchers that never
read while 1 MiB values are written, YAML alias bombs), printed as VmRSS after each step.
Usage: scripts/probe-memory.py [path/to/sluice]"""
import subprocess, json, time, os, socket, threading, ssl, sys, tempfile, urllib.request
BIN=sys.argv[1] if len(sys.argv) > 1 else "target/release/sluice"
d=tempfile.mkdtemp()
p=subprocess.Popen([BIN,"serve","--state-dir",d,"--api","127.0.0.1:0","--http","127.0.0.1:0"],stderr=open(d+"/serve.log","w"),stdout=subprocess.DEVNULL)
for _ in range(200):
    if os.path.exists(d+"/endpoints.json"): break
    time.sleep(0.05)
time.sleep(0.3)
ep=json.load(open(d+"/endpoints.json")); api=ep["api"].replace("http://",""); host,port=api.split(":")
tok=open(d+"/token").read().strip()
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return l.split()[1]+" kB"
def req(method,path,body=b"",ctype="application/json",read=True):
    s=socket.create_connection((host,int(port)))
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()+body)
    out=b""
    if read:
        while True:
            c=s.recv(65536)
            if not c: break
            out+=c
    s.close(); return out
print("start", rss())
# 1. big bodies
big=json.dumps({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"a"*(2*1024*1024)}}).encode()
ts=[threading.Thread(target=req,args=("POST","/api/v1/namespaces/default/configmaps",big)) for _ in range(30)]
[t.start() for t in ts]; [t.join() for t in ts]
print("after 30 x 2MiB posts", rss())
# 2. non reading watchers + 1MB patches
ws=[]
for i in range(10):
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); s.connect((host,int(port)))
    s.sendall(f"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\r\n".encode()); ws.append(s)
for i in range(20):
    body=json.dumps({"data":{"x":str(i)*(1024*1024)}}).encode()
    req("PATCH","/api/v1/namespaces/default/configmaps/big",body,"application/merge-patch+json")
print("after watchers + 20 x 1MiB patches", rss())
# 3. alias bomb yaml
bomb=b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
for i in range(50): req("POST","/api/v1/namespaces/default/configmaps",bomb,"application/yaml")
print("after yaml bombs", rss())
for s in ws: s.close()
time.sleep(8)
print("8s later", rss())
# repeat the whole thing to see whether it grows further
for r in range(3):
    ts=[threading.Thread(target=req,args=("POST","/api/v1/namespaces/default/configmaps",big)) for _ in range(30)]
    [t.start() for t in ts]; [t.join() for t in ts]
    for i in range(20):
        body=json.dumps({"data":{"x":str(i)*(1024*1024)}}).encode()
        req("PATCH","/api/v1/namespaces/default/configmaps/big",body,"application/merge-patch+json")
    print("round",r, rss())
time.sleep(3); print("end", rss())
p.terminate(); p.wait()
import shutil; shutil.rmtree(d, ignore_errors=True)
