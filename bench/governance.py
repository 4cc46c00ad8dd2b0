# SPDX-License-Identifier: MIT
"""governance.py QUND DIR OUT: the dissolution and purge benchmarks of bench/run.sh.

One data directory, two qund runs on a free loopback port (each started like
bench/run.sh starts its qund and stopped with TERM, then KILL):

  setup     qund creates the owner, the groups and their sessions over HTTP; qund is
            stopped and the bulk (users, memberships, messages) is written straight
            into the SQLite file, as tests/api/test_09_crash_purge.py does; the
            groups' member_count and next_seq are set to match.
  dissolve  qund with cooling_off=0, notice=0, purge_grace=86400: groups of 10, 1k
            and 100k members and groups of 1M messages are dissolved, interleaved,
            BENCH_DISSOLVE_REPS times each (one group per dissolution).  Measured:
            the request (POST .../dissolution, 202) and the time from sending it
            until GET .../dissolution shows the group `dissolved` (polled every 2 ms).
  purge     qund with purge_grace=0: idle p99 of GET /v1/groups/{other} and of
            message posts to that group (wrk, bench/report.lua), then one group of
            BENCH_PURGE_MESSAGES messages is dissolved and, while it purges, the same
            two wrk runs again; then the purge is followed to its end.

Prints `key=value` lines on stdout for bench/run.sh; progress goes to stderr."""
import http.client
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import time

from seeding import index_seeded

QUND, DIR, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
REPS = int(os.environ.get("BENCH_DISSOLVE_REPS", "5"))
BIG_REPS = int(os.environ.get("BENCH_DISSOLVE_REPS_1M", "2"))
PURGE_MSGS = int(os.environ.get("BENCH_PURGE_MESSAGES", "1000000"))
LOAD_S = int(os.environ.get("BENCH_PURGE_LOAD_SECONDS", "3"))
LOAD_CONNS = int(os.environ.get("BENCH_PURGE_CONNECTIONS", "8"))
THREADS = os.environ.get("BENCH_QUND_THREADS", "2")
OFFSET = float(os.environ.get("BENCH_DISSOLVE_OFFSET_MS", "150")) / 1e3
SIZES = [10, 1_000, 100_000]
BIG_MSGS = 1_000_000
PASSWORD = "bench-password-1"
DATA = os.path.join(DIR, "gov")


def log(*a):
    print("governance:", *a, file=sys.stderr, flush=True)


def emit(name, **kv):
    print(name, " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


class Qund:
    def __init__(self, extra):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(DIR, "gov_qund.log"), "a")
        args = [QUND, "--listen", f"127.0.0.1:{self.port}", "--data", DATA, "--threads", THREADS,
                "--set", "argon2_memlimit_kib=8192", "--set", "log_requests=false",
                "--set", "cooling_off=0", "--set", "notice=0",
                # one owner dissolves many groups here: the risk engine would ask for step-up
                "--set", "risk_frequency_max=1000000", "--set", "risk_frequency_deny=1000000"] + extra
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.conn = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"governance: qund exited with {self.proc.returncode}, see {self.log.name}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                self.conn = None
            time.sleep(0.1)
        sys.exit("governance: qund not ready after 30s")

    def request(self, method, path, body=None, token=None):
        """One request on a kept-alive connection: (status, parsed JSON or None)."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, None if body is None else json.dumps(body), headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, None

    def must(self, status, method, path, body=None, token=None):
        got, out = self.request(method, path, body, token)
        if got != status:
            sys.exit(f"governance: {method} {path}: {got} {out}")
        return out

    def metric(self, name):
        """An unlabelled value of /metrics."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return next(int(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))

    def stop(self):
        if self.conn:
            self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---- setup ----

def setup():
    q = Qund([])
    q.must(201, "POST", "/v1/users", {"username": "owner", "password": PASSWORD})
    token = q.must(201, "POST", "/v1/sessions", {"username": "owner", "password": PASSWORD,
                                                 "device_id": "bench", "platform": "android"})["token"]
    groups = []  # (label, gid, members, messages)
    for rep in range(REPS):
        for size in SIZES:
            groups.append((f"members_{size}", size, 0))
    groups.append(("warmup", 10, 0))
    for rep in range(BIG_REPS):
        groups.append(("messages_1m", 10, BIG_MSGS))
    made = []
    for label, members, messages in groups:
        gid = q.must(201, "POST", "/v1/groups", {"name": label}, token)["id"]
        made.append((label, gid, members, messages))
    doomed = q.must(201, "POST", "/v1/groups", {"name": "doomed"}, token)["id"]
    other = q.must(201, "POST", "/v1/groups", {"name": "other"}, token)["id"]
    q.stop()

    t0 = time.time()
    con = sqlite3.connect(os.path.join(DATA, "qun.db"))
    cur = con.cursor()
    owner = cur.execute("SELECT id FROM users WHERE username = 'owner'").fetchone()[0]
    now = int(time.time())
    need = max(SIZES) - 1
    # Users, generated inside SQLite: unique openid and username, a pwhash string.
    cur.execute(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
        "INSERT INTO users(openid, username, pwhash, password_changed_at, created_at) "
        "SELECT printf('u_seed%07d', i), printf('seed%07d', i), '$argon2id$seeded', ?, ? FROM c",
        (need, now, now))
    first = cur.execute("SELECT MIN(id) FROM users WHERE username LIKE 'seed%'").fetchone()[0]

    def add_messages(gid_row, n):
        nxt = cur.execute("SELECT next_seq FROM groups WHERE id = ?", (gid_row,)).fetchone()[0]
        cur.execute(
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1) "
            "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
            "SELECT ?, ? + i, ?, 'bulk message ' || i, ? FROM c", (n, gid_row, nxt, owner, now))
        cur.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (nxt + n, gid_row))

    for label, gid, members, messages in made:
        row = cur.execute("SELECT id FROM groups WHERE gid = ?", (gid,)).fetchone()[0]
        cur.execute("INSERT INTO members(group_id, user_id, role, joined_at) "
                    "SELECT ?, id, 'member', ? FROM users WHERE id >= ? AND id < ?",
                    (row, now, first, first + members - 1))
        cur.execute("UPDATE groups SET member_count = ? WHERE id = ?", (members, row))
        if messages:
            add_messages(row, messages)
    doomed_row = cur.execute("SELECT id FROM groups WHERE gid = ?", (doomed,)).fetchone()[0]
    add_messages(doomed_row, PURGE_MSGS)
    con.commit()
    index_seeded(con)  # as qund would have indexed them when posted
    counts = cur.execute("SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM members), "
                         "(SELECT COUNT(*) FROM messages)").fetchone()
    con.close()
    log(f"seeded {counts[0]} users, {counts[1]} memberships, {counts[2]} messages in {time.time() - t0:.1f}s")
    emit("seed", users=counts[0], members=counts[1], messages=counts[2], seconds=f"{time.time() - t0:.1f}")
    return token, made, doomed, other


def dissolve(q, token, gid, send_at):
    """Preview, wait until send_at (perf_counter), then time the request and the wait
    for `dissolved`.  Returns (preview, request, dissolved, observed_at) in seconds."""
    p0 = time.perf_counter()
    ct = q.must(200, "POST", f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"},
                token)["confirmation_token"]
    preview = time.perf_counter() - p0
    body = {"messages": "delete", "confirmation_token": ct}
    if send_at > time.perf_counter():
        time.sleep(send_at - time.perf_counter())
    t0 = time.perf_counter()
    q.must(202, "POST", f"/v1/groups/{gid}/dissolution", body, token)
    t1 = time.perf_counter()
    while True:
        st = q.must(200, "GET", f"/v1/groups/{gid}/dissolution", None, token)
        if st["state"] == "dissolved":
            break
        if time.perf_counter() - t0 > 30:
            sys.exit(f"governance: {gid} not dissolved after 30s: {st}")
        time.sleep(0.002)
    t2 = time.perf_counter()
    return preview, t1 - t0, t2 - t0, t2


def bench_dissolve(token, made):
    """The job scheduler wakes every 250 ms (nothing kicks it when a dissolution is
    due at once), so the wait for `dissolved` is mostly the rest of its sleep.  Each
    request is therefore sent OFFSET after the previous group was seen dissolved,
    i.e. at the same point of the scheduler's cycle, so the waits are comparable
    and what differs between sizes is the marking itself.  A warm-up dissolution
    (not counted) sets the phase."""
    q = Qund(["--set", "purge_grace=86400"])
    order = [m for m in made if m[0] != "warmup"]
    random.Random(7).shuffle(order)  # sizes interleaved: drift hits every size alike
    warm = [m for m in made if m[0] == "warmup"][0]
    _, _, _, seen = dissolve(q, token, warm[1], 0)
    res = {}
    for label, gid, members, messages in order:
        preview, req, done, seen_now = dissolve(q, token, gid, seen + OFFSET)
        res.setdefault(label, []).append((preview, req, done, seen_now - done - seen))
        seen = seen_now
    q.stop()
    for label in [f"members_{s}" for s in SIZES] + ["messages_1m"]:
        r = res.get(label, [])
        if not r:
            continue
        med = lambda i: statistics.median(x[i] * 1e3 for x in r)
        emit("dissolve_" + label, reps=len(r), preview_ms=f"{med(0):.1f}", request_ms=f"{med(1):.2f}",
             request_max_ms=f"{max(x[1] for x in r) * 1e3:.2f}", dissolved_ms=f"{med(2):.1f}",
             dissolved_min_ms=f"{min(x[2] for x in r) * 1e3:.1f}",
             dissolved_max_ms=f"{max(x[2] for x in r) * 1e3:.1f}",
             sent_after_ms=f"{med(3):.1f}")


def wrk(name, url, token, script, group):
    env = dict(os.environ, QUN_BENCH_GROUP=group, QUN_BENCH_TOKEN=token)
    out = os.path.join(OUT, f"wrk_{name}.txt")
    args = ["wrk", "-t1", f"-c{LOAD_CONNS}", f"-d{LOAD_S}s", "--latency", "-s", script]
    if script.endswith("report.lua"):
        args += ["-H", f"Authorization: Bearer {token}", f"{url}/v1/groups/{group}"]
    else:
        args += [url]
    with open(out, "w") as f:
        subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, env=env, check=True)
    line = [l for l in open(out) if l.startswith("WRK ")][0].split()[1:]
    kv = dict(x.split("=") for x in line)
    if kv["non2xx"] != "0" or kv["sockerr"] != "0":
        sys.exit(f"governance: wrk {name} saw failures: {kv} (see {out})")
    return kv


def bench_purge(token, doomed, other):
    q = Qund(["--set", "purge_grace=0"] + os.environ.get("BENCH_PURGE_EXTRA", "").split())
    url = q.url
    get_script, post_script = "bench/report.lua", "bench/post_message.lua"
    wrk("purge_warmup", url, token, get_script, other)
    idle_get = wrk("idle_get", url, token, get_script, other)
    idle_post = wrk("idle_post", url, token, post_script, other)

    ct = q.must(200, "POST", f"/v1/groups/{doomed}/dissolution/preview", {"messages": "delete"},
                token)["confirmation_token"]
    t0 = time.perf_counter()
    q.must(202, "POST", f"/v1/groups/{doomed}/dissolution", {"messages": "delete", "confirmation_token": ct}, token)
    # Load starts once the purge deletes messages.
    while True:
        st = q.must(200, "GET", f"/v1/groups/{doomed}/dissolution", None, token)
        jobs = [j for j in st["jobs"] if j["kind"] == "purge_group"]
        if jobs and jobs[0]["progress"].get("messages_deleted", 0) > 0:
            break
        if time.perf_counter() - t0 > 60:
            sys.exit(f"governance: the purge did not start: {st}")
        time.sleep(0.01)
    t_start = time.perf_counter()
    busy_get = wrk("purge_get", url, token, get_script, other)
    busy_post = wrk("purge_post", url, token, post_script, other)
    t_load_end = time.perf_counter()
    st = q.must(200, "GET", f"/v1/groups/{doomed}/dissolution", None, token)
    deleted_at_load_end = st["jobs"][0]["progress"].get("messages_deleted", 0)
    # Follow the purge to the end of its message phase and then to `purged`.
    t_msgs_done = None
    deadline = time.perf_counter() + float(os.environ.get("BENCH_PURGE_TIMEOUT", "1200"))
    while True:
        st = q.must(200, "GET", f"/v1/groups/{doomed}/dissolution", None, token)
        jobs = [j for j in st["jobs"] if j["kind"] == "purge_group"]
        phase = jobs[0]["progress"].get("phase") if jobs else None
        if t_msgs_done is None and (st["state"] == "purged" or phase not in (None, "messages")):
            t_msgs_done = time.perf_counter()
        if st["state"] == "purged":
            break
        if time.perf_counter() > deadline:
            sys.exit(f"governance: purge not finished in time: {st}")
        time.sleep(0.05)
    t_end = time.perf_counter()
    # Times the purge's steps waited over half a second for a CPU (docs/architecture.md,
    # "Background work"): 0 when the loops alone shared the cores with it.
    hurries = q.metric("qun_background_hurries_total")
    q.stop()
    total = st["receipt"]["messages_deleted"]  # the group's rows plus the dissolution notice
    msgs_s = t_msgs_done - t0
    emit("purge", messages=total, seconds=f"{msgs_s:.2f}", rows_per_s=f"{total / msgs_s:.0f}",
         purged_seconds=f"{t_end - t0:.2f}",
         loaded_rows_per_s=f"{deleted_at_load_end / (t_load_end - t0):.0f}",
         unloaded_rows_per_s=f"{(total - deleted_at_load_end) / max(t_msgs_done - t_load_end, 1e-9):.0f}",
         purge_outlasted_load=int(deleted_at_load_end < total), first_batch_s=f"{t_start - t0:.2f}",
         hurries=hurries)
    for name, kv in (("idle_get", idle_get), ("purge_get", busy_get), ("idle_post", idle_post),
                     ("purge_post", busy_post)):
        emit(name, requests=kv["requests"], duration_us=kv["duration_us"], p50_us=kv["p50_us"],
             p99_us=kv["p99_us"])


def main():
    os.makedirs(DATA, exist_ok=True)
    token, made, doomed, other = setup()
    log(f"dissolving {len(made)} groups")
    bench_dissolve(token, made)
    log(f"purging {PURGE_MSGS} messages under load")
    bench_purge(token, doomed, other)


main()
