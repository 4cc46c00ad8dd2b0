#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark: online backup (`qun admin backup`, docs/admin.md) against `cp -a` of the
stopped data directory, and request latency during the backup.

A group with BENCH_BACKUP_MESSAGES messages (default 200k) and BENCH_BACKUP_FILE_MB MiB
of files (default 256, in 1 MiB files of random bytes) is seeded straight into a fresh
qund's SQLite store and blob directory (the issue's target is 1M messages and 1 GiB; the
defaults fit in a couple of minutes on the 2-core machine).  With qund serving, a client
reads the group's newest messages in a loop: first idle, then while `qun admin backup`
runs; the p99 of each is printed.  Then qund stops and `cp -a` copies the data directory.
ratio = cp time / backup time (the issue aims at >= 0.8; above 1 the backup is faster).
Run it directly with a release build (`make -j2 binaries`); it prints `backup_* k=v`."""
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time

from seeding import index_seeded

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
DIR = os.environ.get("BENCH_DIR", os.path.join(ROOT, "build/bench"))
QUND = os.environ.get("QUND", os.path.join(ROOT, "build/qund"))
QUN = os.environ.get("QUN", os.path.join(ROOT, "build/qun"))
MESSAGES = int(os.environ.get("BENCH_BACKUP_MESSAGES", "200000"))
FILE_MB = int(os.environ.get("BENCH_BACKUP_FILE_MB", "256"))
DATA = os.path.join(DIR, "backup_data")
OUT = os.path.join(DIR, "backup_out")
COPY = os.path.join(DIR, "backup_cp")


def log(*a):
    print("backup:", *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body) if body is not None else None, h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def start(port):
    p = subprocess.Popen([QUND, "--listen", f"127.0.0.1:{port}", "--data", DATA, "--set", "argon2_memlimit_kib=8192",
                          "--set", "argon2_opslimit=1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if call(port, "GET", "/readyz")[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("qund did not start")


def stop(p):
    p.terminate()
    p.wait(30)


def seed(gid, openid):
    con = sqlite3.connect(os.path.join(DATA, "qun.db"))
    g = con.execute("SELECT id FROM groups WHERE gid = ?", (gid,)).fetchone()[0]
    u = con.execute("SELECT id FROM users WHERE openid = ?", (openid,)).fetchone()[0]
    now = int(time.time())
    con.executemany("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
                    ((g, i + 1, u, f"message {i} " + "x" * 80, now) for i in range(MESSAGES)))
    con.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (MESSAGES + 1, g))
    import hashlib
    for i in range(FILE_MB):
        body = os.urandom(1 << 20)
        sha = hashlib.sha256(body).hexdigest()
        os.makedirs(os.path.join(DATA, "blobs", sha[:2]), exist_ok=True)
        with open(os.path.join(DATA, "blobs", sha[:2], sha), "wb") as f:
            f.write(body)
        con.execute("INSERT INTO blobs(sha256, size, refcount, created_at) VALUES (?, ?, 1, ?)", (sha, len(body), now))
        con.execute("INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at)"
                    " VALUES (?, ?, ?, 'application/octet-stream', ?, ?, ?)", (g, sha, f"f{i}", len(body), u, now))
    con.commit()
    index_seeded(con)  # as qund would have indexed them when posted
    con.close()


def latencies(port, token, gid, until):
    """Read the newest messages in a loop until until() is true; the latencies in ms."""
    out = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not until():
        t = time.perf_counter()
        c.request("GET", f"/v1/groups/{gid}/messages?limit=50", headers={"Authorization": "Bearer " + token})
        c.getresponse().read()
        out.append((time.perf_counter() - t) * 1000)
    c.close()
    return out


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")


def main():
    for d in (DATA, OUT, COPY):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(DIR, exist_ok=True)
    port = free_port()
    p = start(port)
    call(port, "POST", "/v1/users", {"username": "bencher", "password": "bench-password-1"})
    s = call(port, "POST", "/v1/sessions", {"username": "bencher", "password": "bench-password-1",
                                            "device_id": "bench", "platform": "cli"})[1]
    gid = call(port, "POST", "/v1/groups", {"name": "bench"}, s["token"])[1]["id"]
    stop(p)
    t = time.time()
    seed(gid, s["openid"])
    log(f"seeded {MESSAGES} messages and {FILE_MB} MiB in {time.time() - t:.1f} s")
    subprocess.run(["sync"])
    p = start(port)
    try:
        t_end = time.time() + 5
        idle = latencies(port, s["token"], gid, lambda: time.time() > t_end)
        done = threading.Event()
        during = []
        th = threading.Thread(target=lambda: during.extend(latencies(port, s["token"], gid, done.is_set)))
        th.start()
        t = time.perf_counter()
        r = subprocess.run([QUN, "admin", "backup", OUT, "--data", DATA], capture_output=True, text=True)
        backup_s = time.perf_counter() - t
        done.set()
        th.join()
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        log(r.stdout.strip())
    finally:
        stop(p)
    subprocess.run(["sync"])
    t = time.perf_counter()
    subprocess.run(["cp", "-a", DATA, COPY], check=True)
    subprocess.run(["sync"])
    cp_s = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(DATA) for f in fs)
    print(f"backup_result messages={MESSAGES} file_mib={FILE_MB} data_mib={size / 2**20:.0f} "
          f"backup_s={backup_s:.2f} cp_s={cp_s:.2f} ratio={cp_s / backup_s:.2f} "
          f"p99_idle_ms={p99(idle):.2f} p99_during_ms={p99(during):.2f} "
          f"p99_ratio={p99(during) / p99(idle):.2f} requests_idle={len(idle)} requests_during={len(during)}",
          flush=True)
    for d in (DATA, OUT, COPY):
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
