#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark 9: export throughput (bench/README.md).

A group with BENCH_EXPORT_MESSAGES messages (default 1M) and BENCH_EXPORT_FILE_MB MiB of
files (default 1024, in files of BENCH_EXPORT_FILE_KB KiB, default 1024; random bytes,
so incompressible, like photos) is seeded straight into a fresh qund's SQLite store and
blob directory.  qund exports it (POST /v1/groups/{id}/exports, one age recipient)
and the baseline archives the same member files, laid out as in the archive
(members.json, messages.jsonl, files.jsonl, payments.jsonl, files/<sha256> hard-linked
to the blobs), with the standard tools: `tar -c | zstd -3 | age -r` (Debian's tar,
zstd and age).  The ratio is the pipeline's time over qund's: above 1, qund is faster.
Both run back to back, twice each, alternating; the best time of each side counts.

qund's time is the export thread's own (`progress.elapsed_ms`: snapshot, reading,
JSON, staging, tar, zstd, age, hashing, fsync); the end-to-end time a client sees
(POST until GET shows `done`) adds the job scheduler's latency (the job polls its
thread once a second) and is printed too.  Peak RSS: qund's VmRSS sampled every 20 ms
during the export (and its idle RSS before), the pipeline's summed peak RSS of its
three processes (/usr/bin/time -f %M).  Prints `export_* key=value` lines for run.sh."""
import hashlib
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
MESSAGES = int(os.environ.get("BENCH_EXPORT_MESSAGES", "1000000"))
FILE_MB = int(os.environ.get("BENCH_EXPORT_FILE_MB", "1024"))
FILE_KB = int(os.environ.get("BENCH_EXPORT_FILE_KB", "1024"))
ROUNDS = int(os.environ.get("BENCH_EXPORT_ROUNDS", "2"))
DATA = os.path.join(DIR, "export_data")
SRC = os.path.join(DIR, "export_src")
PASSWORD = "bench-password-1"


def log(*a):
    print("export:", *a, file=sys.stderr, flush=True)


def emit(name, **kv):
    print(name, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Qund:
    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.log = open(os.path.join(DIR, "export_qund.log"), "a")
        self.proc = subprocess.Popen([QUND, "--listen", f"127.0.0.1:{self.port}", "--data", DATA,
                                      "--set", "argon2_memlimit_kib=8192", "--set", "log_requests=false"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"export: qund exited with {self.proc.returncode}, see {self.log.name}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit("export: qund not ready after 30s")

    def request(self, method, path, body=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        c.request(method, path, None if body is None else json.dumps(body), h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data) if data else None

    def must(self, status, method, path, body=None, token=None):
        got, out = self.request(method, path, body, token)
        if got != status:
            sys.exit(f"export: {method} {path}: {got} {out}")
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def seed():
    """The group through the API, then its messages and files straight into the store."""
    shutil.rmtree(DATA, ignore_errors=True)
    shutil.rmtree(SRC, ignore_errors=True)
    q = Qund()
    q.must(201, "POST", "/v1/users", {"username": "owner", "password": PASSWORD})
    token = q.must(201, "POST", "/v1/sessions", {"username": "owner", "password": PASSWORD,
                                                 "device_id": "bench", "platform": "cli"})["token"]
    gid = q.must(201, "POST", "/v1/groups", {"name": "export bench"}, token)["id"]
    q.stop()
    t0 = time.time()
    con = sqlite3.connect(os.path.join(DATA, "qun.db"))
    cur = con.cursor()
    owner = cur.execute("SELECT id FROM users WHERE username = 'owner'").fetchone()[0]
    row = cur.execute("SELECT id, next_seq FROM groups WHERE gid = ?", (gid,)).fetchone()
    now = int(time.time())
    # ~100-byte messages: a counter and 32 random hex digits, so zstd has real work.
    cur.execute(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1) "
        "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
        "SELECT ?, ? + i, ?, printf('message %d of the export benchmark, token %s', i, lower(hex(randomblob(16)))), "
        "? + i / 100 FROM c", (MESSAGES, row[0], row[1], owner, now - MESSAGES // 100))
    cur.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (row[1] + MESSAGES, row[0]))
    os.makedirs(os.path.join(SRC, "files"))
    nfiles = FILE_MB * 1024 // FILE_KB
    for i in range(nfiles):
        data = os.urandom(FILE_KB * 1024)
        sha = hashlib.sha256(data).hexdigest()
        d = os.path.join(DATA, "blobs", sha[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, sha), "wb") as f:
            f.write(data)
        os.link(os.path.join(d, sha), os.path.join(SRC, "files", sha))
        cur.execute("INSERT INTO blobs(sha256, size, refcount, created_at) VALUES (?, ?, 1, ?)", (sha, len(data), now))
        cur.execute("INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at) "
                    "VALUES (?, ?, ?, 'application/octet-stream', ?, ?, ?)",
                    (row[0], sha, f"file{i}.bin", len(data), owner, now))
    con.commit()
    index_seeded(con)  # as qund would have indexed them when posted
    # The same member files for the baseline, written as the archive holds them.
    openid = cur.execute("SELECT openid FROM users WHERE id = ?", (owner,)).fetchone()[0]
    with open(os.path.join(SRC, "members.json"), "w") as f:
        f.write("[\n" + json.dumps({"joined_at": now, "openid": openid, "role": "owner", "username": "owner"},
                                   sort_keys=True, separators=(",", ":")) + "\n]\n")
    with open(os.path.join(SRC, "messages.jsonl"), "w") as f:
        for seq, body, at in cur.execute("SELECT seq, body, created_at FROM messages WHERE group_id = ? ORDER BY seq",
                                         (row[0],)):
            f.write(json.dumps({"author": openid, "created_at": at, "kind": "text", "seq": seq, "text": body},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
    with open(os.path.join(SRC, "files.jsonl"), "w") as f:
        for sha, name, size, at in cur.execute("SELECT sha256, name, size, created_at FROM group_files "
                                               "WHERE group_id = ? ORDER BY id", (row[0],)):
            f.write(json.dumps({"content_type": "application/octet-stream", "created_at": at, "name": name,
                                "sha256": sha, "size": size, "uploader": openid},
                               sort_keys=True, separators=(",", ":")) + "\n")
    open(os.path.join(SRC, "payments.jsonl"), "w").close()
    con.close()
    src_bytes = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(SRC) for f in fs)
    log(f"seeded {MESSAGES} messages and {nfiles} files ({FILE_MB} MiB) in {time.time() - t0:.1f}s;"
        f" {src_bytes / 2**20:.0f} MiB of member files")
    emit("export_seed", messages=MESSAGES, files=nfiles, file_mib=FILE_MB, input_mib=f"{src_bytes / 2**20:.0f}",
         seconds=f"{time.time() - t0:.1f}")
    return token, gid, src_bytes


def keygen():
    key = os.path.join(DIR, "export_key.txt")
    if os.path.exists(key):
        os.unlink(key)
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
    return key, subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()


def run_qund(q, token, gid, recipient):
    idle = rss_kib(q.proc.pid)
    peak = [idle]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(q.proc.pid))
            time.sleep(0.02)

    t = threading.Thread(target=sample)
    t.start()
    t0 = time.time()
    x = q.must(202, "POST", f"/v1/groups/{gid}/exports", {"recipients": [recipient]}, token)
    while True:
        x = q.must(200, "GET", f"/v1/exports/{x['id']}", None, token)
        if x["state"] != "running":
            break
        time.sleep(0.02)
    wall = time.time() - t0
    done.set()
    t.join()
    if x["state"] != "done":
        sys.exit(f"export: the export failed: {x.get('error')}")
    os.unlink(os.path.join(DATA, "exports", x["id"] + ".age"))  # keep the disk for the next round
    return x["progress"]["elapsed_ms"] / 1000.0, wall, x["size"], idle, peak[0]


def run_pipeline(recipient):
    out = os.path.join(DIR, "export_pipeline.age")
    times = [os.path.join(DIR, f"export_time_{n}.txt") for n in ("tar", "zstd", "age")]
    tf = "/usr/bin/time -f %M -o"
    cmd = (f"{tf} {times[0]} tar -cf - -C {SRC} . | {tf} {times[1]} zstd -3 -q -c | "
           f"{tf} {times[2]} age -r {recipient} > {out} && sync -f {out}")
    t0 = time.time()
    subprocess.run(["sh", "-c", cmd], check=True)
    secs = time.time() - t0
    size = os.path.getsize(out)
    os.unlink(out)
    rss = 0
    for p in times:
        with open(p) as f:
            rss += int(f.read().split()[-1])
    return secs, size, rss


def main():
    os.makedirs(DIR, exist_ok=True)
    token, gid, src_bytes = seed()
    key, recipient = keygen()
    q = Qund()
    try:
        best_q = best_p = None
        for r in range(ROUNDS):
            secs, wall, size, idle, peak = run_qund(q, token, gid, recipient)
            log(f"round {r + 1}: qund {secs:.2f}s (end to end {wall:.2f}s), {size / 2**20:.0f} MiB, "
                f"RSS {idle // 1024} -> {peak // 1024} MiB")
            if best_q is None or secs < best_q[0]:
                best_q = (secs, wall, size, idle, peak)
            psecs, psize, prss = run_pipeline(recipient)
            log(f"round {r + 1}: tar | zstd | age {psecs:.2f}s, {psize / 2**20:.0f} MiB, peak RSS {prss // 1024} MiB")
            if best_p is None or psecs < best_p[0]:
                best_p = (psecs, psize, prss)
    finally:
        q.stop()
    secs, wall, size, idle, peak = best_q
    psecs, psize, prss = best_p
    mib = src_bytes / 2**20
    emit("export_qund", seconds=f"{secs:.2f}", end_to_end_seconds=f"{wall:.2f}", mib_per_s=f"{mib / secs:.1f}",
         archive_mib=f"{size / 2**20:.1f}", rss_idle_mib=f"{idle / 1024:.1f}", rss_peak_mib=f"{peak / 1024:.1f}")
    emit("export_pipeline", seconds=f"{psecs:.2f}", mib_per_s=f"{mib / psecs:.1f}", archive_mib=f"{psize / 2**20:.1f}",
         rss_peak_mib=f"{prss / 1024:.1f}")
    emit("export_ratio", ratio=f"{psecs / secs:.2f}", end_to_end_ratio=f"{psecs / wall:.2f}")
    shutil.rmtree(DATA, ignore_errors=True)
    shutil.rmtree(SRC, ignore_errors=True)


if __name__ == "__main__":
    main()
