#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Matrix /sync against SSE (benchmark 11, issue 14), run by `make bench` (bench/run.sh).

Starts its own qund (matrix=on, matrix_server_name=bench.test), sets everything up through
/v1 and the Matrix login in Python, and leaves the measuring to bench/mx_sync_load.c (one
epoll loop in C, so the client is not what is measured).  Every figure is a ratio to a
baseline measured on the same qund in the same run:

  1. wake-up: one group of the owner and N members (default 500).  Each member holds one
     parked GET /_matrix/client/v3/sync?since=<its next_batch>&timeout=30000; the owner
     posts one message through POST /v1/groups/{id}/messages; the time from the post to
     the last member's sync answer holding it, over M rounds (each member re-parks with
     its answer's next_batch at once, as a client does; the next post waits until all
     are parked), and deliveries/s = N x M / the summed post -> last times.  Baseline:
     the same rounds to the same members each holding one GET /v1/events stream.
  2. RSS per parked sync: qund's VmRSS before and with 10 000 parked syncs (100 users x
     100 requests, same since, timeout=30000), against the same for 10 000 open event
     streams (8 per user, the per-user bound of GET /v1/events); each side on a freshly
     restarted qund over the same data.
  3. initial sync: one user in 100 groups of 100 messages; GET /_matrix/client/v3/sync
     ?timeout=0 (no since) against GET /v1/groups?limit=100 for the same user, alternating,
     median of 5 each; then (11d) the same sync once every group has a read receipt,
     against 11c's sync.

usage: /usr/bin/python3 bench/mx_sync.py [--qund build/qund] [--load build/bench/mx_sync_load]
       [--n 500] [--rounds 30] [--parked 10000] [--park-users 100] [--groups 100]
       [--messages 100] [--reps 5] [--threads 2] [--argon2-kib 8] [--settle-ms 300] [--only wake,rss,initial]
"""
import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import requests

PASSWORD = "correct horse"
STREAMS_PER_USER = 8  # src/http/events.c STREAMS_PER_USER


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nofile_max():
    """The soft descriptor limit raised to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Qund:
    """One qund on a free loopback port over a data directory; restartable."""

    def __init__(self, binary, tmp, threads, argon2_kib):
        self.binary, self.tmp, self.threads, self.argon2_kib = binary, tmp, threads, argon2_kib
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log = open(os.path.join(tmp, "qund.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}", "--data", os.path.join(self.tmp, "data"),
             "--threads", str(self.threads), "--set", f"argon2_memlimit_kib={self.argon2_kib}", "--set", "argon2_opslimit=1",
             "--set", "log_requests=false", "--set", "matrix=on", "--set", "matrix_server_name=bench.test"],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=nofile_max)
        for _ in range(300):
            try:
                if requests.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("qund did not become ready; see " + os.path.join(self.tmp, "qund.log"))

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cpu_s(self):
        """qund's user + system CPU seconds so far (/proc/PID/stat)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self):
        return requests.get(self.url + "/metrics", timeout=10).text


def register(url, name):
    r = requests.post(url + "/v1/users", json={"username": name, "password": PASSWORD}, timeout=60)
    assert r.status_code == 201, r.text
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": PASSWORD,
                                                 "device_id": "d", "platform": "android"}, timeout=60)
    assert r.status_code == 201, r.text
    return dict(r.json(), username=name)


def mx_login(url, name):
    r = requests.post(url + "/_matrix/client/v3/login", timeout=60, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def initial_sync(url, token):
    r = requests.get(url + "/_matrix/client/v3/sync", params={"timeout": "0"},
                     headers={"Authorization": "Bearer " + token}, timeout=120)
    assert r.status_code == 200, f"initial sync answered {r.status_code}: {r.text[:300]}"
    nb = r.json().get("next_batch")
    assert isinstance(nb, str) and nb, f"initial sync without next_batch: {r.text[:300]}"
    return nb


def woken_cpu(text):
    """The loops' CPU seconds answering woken syncs, from /metrics (None when qund has no such counter)."""
    m = re.search(r"^qun_mx_sync_woken_cpu_seconds_total ([0-9.]+)$", text, re.M)
    return float(m.group(1)) if m else None


def parked_gauge(text):
    """The name of a gauge of parked /sync requests on /metrics, if qund has one."""
    for name in re.findall(r"^# TYPE (\w+) gauge$", text, re.M):
        if re.search(r"sync", name) and re.search(r"park|wait|poll|pending", name):
            return name
    return None


def load(args, *argv, timeout=600):
    out = subprocess.run([args.load, *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                         preexec_fn=nofile_max)
    if out.returncode != 0:
        raise RuntimeError(f"mx_sync_load {argv[0]} {argv[1]}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def write_tokens(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def verdict(ok):
    return "met" if ok else "MISSED"


def bench_wake(args, q, owner, members, gauge):
    n = len(members)
    url = q.url
    auth = {"Authorization": "Bearer " + owner["token"]}
    gid = requests.post(url + "/v1/groups", json={"name": "wake"}, headers=auth, timeout=30).json()["id"]
    with ThreadPoolExecutor(8) as ex:
        for r in ex.map(lambda m: requests.post(f"{url}/v1/groups/{gid}/members", json={"openid": m["openid"]},
                                                headers=auth, timeout=30), members):
            assert r.status_code == 201, r.text
    tokens = os.path.join(q.tmp, "wake_tokens")
    # The baseline first: the same rounds over one event stream per member.
    write_tokens(tokens, [owner["token"]] + [m["token"] for m in members])
    c0 = q.cpu_s()
    sse = load(args, "wake", "sse", "127.0.0.1", q.port, gid, tokens, args.rounds, "-", args.settle_ms)
    sse_cpu = q.cpu_s() - c0
    # Matrix: log in and take each member's next_batch after the baseline's messages.
    with ThreadPoolExecutor(16) as ex:
        mx_tokens = list(ex.map(lambda m: mx_login(url, m["username"]), members))
        since = list(ex.map(lambda t: initial_sync(url, t), mx_tokens))
    for m, t in zip(members, mx_tokens):
        m["mx_token"] = t
    write_tokens(tokens, [owner["token"]] + [f"{t} {s}" for t, s in zip(mx_tokens, since)])
    c0, w0 = q.cpu_s(), woken_cpu(q.metrics())
    mx = load(args, "wake", "mx", "127.0.0.1", q.port, gid, tokens, args.rounds, gauge or "-", args.settle_ms)
    mx_cpu, w1 = q.cpu_s() - c0, woken_cpu(q.metrics())
    dr = mx["deliveries_per_s"] / sse["deliveries_per_s"]
    print(f"  11a. wake-up of {n} members, {args.rounds} rounds of one post: deliveries/s "
          f"sync {mx['deliveries_per_s']:,.0f} / SSE {sse['deliveries_per_s']:,.0f} = {dr:.3f} "
          f"(aim >= 0.5: {verdict(dr >= 0.5)})")
    print(f"  11a. post -> last member's sync answer: p50 {mx['last_p50_ms']:.1f} ms, p99 {mx['last_p99_ms']:.1f} ms, "
          f"max {mx['last_max_ms']:.1f} ms / SSE p50 {sse['last_p50_ms']:.1f} ms, p99 {sse['last_p99_ms']:.1f} ms, "
          f"max {sse['last_max_ms']:.1f} ms = {mx['last_p50_ms'] / sse['last_p50_ms']:.2f} at p50 "
          f"(aim <= 50 ms at {n}, judged on p50: {verdict(mx['last_p50_ms'] <= 50)})")
    per_mx = mx_cpu / (n * args.rounds) * 1e6
    per_sse = sse_cpu / (n * args.rounds) * 1e6
    print(f"       context: qund CPU per delivery, re-parks included: sync {per_mx:.0f} us / SSE {per_sse:.0f} us "
          f"= {per_mx / per_sse:.2f}; "
          + (f"re-park -> all {n} parked (gauge {gauge}): mean {mx['park_mean_ms']:.1f} ms, "
             f"{mx['metric_polls']} /metrics polls in all; " if gauge else
             f"no parked-sync gauge on /metrics: each post waits for {args.settle_ms} ms of quiet; ")
          + f"{mx['sync_answers']} sync answers of {mx['answer_bytes_mean']:,.0f} bytes on average, "
          f"{mx['answers_without_message']} without the awaited message")
    if w0 is not None and w1 is not None:
        print(f"       context: the loops' CPU per woken answer (qun_mx_sync_woken_cpu_seconds_total): "
              f"{(w1 - w0) / (n * args.rounds) * 1e6:.1f} us")
    sys.stdout.flush()
    return gid


def bench_initial(args, q):
    url = q.url
    reader = register(url, "reader")
    auth = {"Authorization": "Bearer " + reader["token"]}
    with ThreadPoolExecutor(8) as ex:
        gids = list(ex.map(lambda i: requests.post(url + "/v1/groups", json={"name": f"history {i}"}, headers=auth,
                                                   timeout=30).json()["id"], range(args.groups)))
    t0 = time.time()
    load(args, "post", "127.0.0.1", q.port, reader["token"], 32, args.messages, *gids)
    seeded = time.time() - t0
    token = mx_login(url, "reader")
    time.sleep(2)  # let the writer finish with the 10 000 posts (WAL checkpoint) before timing reads
    r = load(args, "get", "127.0.0.1", q.port, token, args.reps, "/_matrix/client/v3/sync?timeout=0",
             f"/v1/groups?limit={min(200, args.groups)}")
    # /v1/groups takes a Matrix token as well (one session table); check that it listed them all.
    listed = requests.get(url + f"/v1/groups?limit={min(200, args.groups)}", headers=auth, timeout=30).json()
    items = listed.get("items", listed.get("groups", [])) if isinstance(listed, dict) else listed
    ratio = r["a_median_ms"] / r["b_median_ms"]
    print(f"  11c. initial sync of a user in {args.groups} groups x {args.messages} messages: "
          f"{r['a_median_ms']:.1f} ms ({r['a_bytes']:,} bytes) / GET /v1/groups {r['b_median_ms']:.2f} ms "
          f"({r['b_bytes']:,} bytes, {len(items)} groups) = {ratio:.1f} (median of {args.reps} each, alternating)")
    print(f"       context: sync min/max {r['a_min_ms']:.1f}/{r['a_max_ms']:.1f} ms; the client acknowledges at once "
          f"(TCP_QUICKACK); as a default client (delayed ACK): sync {r['a_plain_median_ms']:.1f} ms / groups "
          f"{r['b_plain_median_ms']:.2f} ms = {r['a_plain_median_ms'] / r['b_plain_median_ms']:.1f}; "
          f"{args.groups * args.messages} messages posted in {seeded:.1f} s")
    # 11d. The same sync once every group has a read receipt (issue 15): each room then
    # carries an m.receipt and its unread count comes from a position, against 11c's
    # (no positions yet).  Both sides read the counts and receipts with one grouped query.
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda g: requests.post(url + f"/v1/groups/{g}/read", json={"seq": args.messages // 2},
                                            headers=auth, timeout=30).raise_for_status(), gids))
    time.sleep(1)
    r2 = load(args, "get", "127.0.0.1", q.port, token, args.reps, "/_matrix/client/v3/sync?timeout=0",
              "/_matrix/client/v3/sync?timeout=0")
    print(f"  11d. the same sync with a receipt and an unread count in each of the {args.groups} rooms: "
          f"{r2['a_median_ms']:.1f} ms ({r2['a_bytes']:,} bytes) / 11c's {r['a_median_ms']:.1f} ms "
          f"= {r2['a_median_ms'] / r['a_median_ms']:.2f}")
    sys.stdout.flush()


def bench_rss(args, q, users, gauge):
    limit = nofile_max()
    want = args.parked
    if limit < want + 200:
        want = max(100, limit - 200)
        print(f"  11b. NOTE: the descriptor limit is {limit} (hard), so {want} requests are parked, not {args.parked}")
    sse_users = -(-want // STREAMS_PER_USER)
    while len(users) < max(sse_users, args.park_users):
        with ThreadPoolExecutor(16) as ex:
            users += list(ex.map(lambda i: register(q.url, f"extra{i}"),
                                 range(len(users), max(sse_users, args.park_users))))
    tokens = os.path.join(q.tmp, "park_tokens")
    # SSE: a fresh qund process over the same data, 8 streams per user.
    q.stop()
    q.start()
    time.sleep(1)
    per_sse = -(-want // sse_users)
    write_tokens(tokens, [u["token"] for u in users[:sse_users]])
    sse = load(args, "park", "sse", "127.0.0.1", q.port, q.proc.pid, tokens, per_sse, "qun_events_streams",
               args.settle_ms)
    # Matrix: again a fresh process; each user's next_batch first, then the parked syncs.
    q.stop()
    q.start()
    mxu = users[:args.park_users]
    with ThreadPoolExecutor(16) as ex:
        for u, t in zip(mxu, ex.map(lambda u: u.get("mx_token") or mx_login(q.url, u["username"]), mxu)):
            u["mx_token"] = t
        since = list(ex.map(lambda u: initial_sync(q.url, u["mx_token"]), mxu))
    time.sleep(1)
    per_mx = -(-want // args.park_users)
    write_tokens(tokens, [f"{u['mx_token']} {s}" for u, s in zip(mxu, since)])
    mx = load(args, "park", "mx", "127.0.0.1", q.port, q.proc.pid, tokens, per_mx, gauge or "-", args.settle_ms)
    ratio = mx["kib_per_request"] / sse["kib_per_request"]
    print(f"  11b. RSS per parked sync: {mx['kib_per_request']:.2f} KiB ({mx['requests']} parked, "
          f"{mx['tokens']} users) / per open SSE stream {sse['kib_per_request']:.2f} KiB ({sse['requests']} streams, "
          f"{sse['tokens']} users) = {ratio:.2f}")
    print(f"       context: VmRSS sync {mx['rss_before_kib'] / 1024:.1f} -> {mx['rss_after_kib'] / 1024:.1f} MiB, "
          f"SSE {sse['rss_before_kib'] / 1024:.1f} -> {sse['rss_after_kib'] / 1024:.1f} MiB; all parked in "
          f"{mx['open_s']:.1f} s (" + (f"gauge {gauge} = {mx['gauge']}" if gauge else
                                       f"no parked-sync gauge: {args.settle_ms} ms of quiet")
          + f"), streams open in {sse['open_s']:.1f} s; {mx['answers_meanwhile']} syncs answered (and re-parked) "
          f"before the reading")
    sys.stdout.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--qund", default=os.path.join(here, "../build/qund"))
    ap.add_argument("--load", default=os.path.join(here, "../build/bench/mx_sync_load"))
    ap.add_argument("--n", type=int, default=500, help="members holding a parked sync (wake-up)")
    ap.add_argument("--rounds", type=int, default=30, help="posts in the wake-up benchmark")
    ap.add_argument("--parked", type=int, default=10000, help="parked syncs for the RSS figure")
    ap.add_argument("--park-users", type=int, default=100, help="users holding the parked syncs")
    ap.add_argument("--groups", type=int, default=100, help="groups of the initial-sync user")
    ap.add_argument("--messages", type=int, default=100, help="messages per group of the initial-sync user")
    ap.add_argument("--reps", type=int, default=5, help="timed requests per side for the initial sync")
    ap.add_argument("--threads", type=int, default=2, help="qund --threads")
    # No figure includes a password hash, but the setup hashes ~3 500 passwords (1 751 users
    # registered and logged in, 600 Matrix logins): at fanout.py's 8192 KiB that alone took
    # ~4 minutes on the shared 2-core machine.  8 KiB is libsodium's minimum.
    ap.add_argument("--argon2-kib", type=int, default=8, help="qund argon2_memlimit_kib (setup speed only)")
    ap.add_argument("--settle-ms", type=int, default=300,
                    help="quiet time that stands for 'all parked' when qund has no parked-sync gauge")
    ap.add_argument("--only", default="wake,rss,initial")
    args = ap.parse_args()
    only = set(args.only.split(","))
    limit = nofile_max()
    tmp = tempfile.mkdtemp(prefix="qund-mxsync-")
    q = Qund(os.path.abspath(args.qund), tmp, args.threads, args.argon2_kib)
    try:
        q.start()
        gauge = parked_gauge(q.metrics())
        print(f"  Matrix /sync vs SSE on one qund (--threads {args.threads}), descriptor limit {limit}"
              + (f", parked-sync gauge {gauge}" if gauge else ", no parked-sync gauge on /metrics"))
        sys.stdout.flush()
        took = []
        t = time.time()
        owner = register(q.url, "owner")
        with ThreadPoolExecutor(16) as ex:
            members = list(ex.map(lambda i: register(q.url, f"member{i}"), range(args.n)))
        took.append(f"{args.n + 1} users registered {time.time() - t:.0f}")
        for name, fn in (("wake", lambda: bench_wake(args, q, owner, members, gauge)),
                         ("initial", lambda: bench_initial(args, q)),
                         ("rss", lambda: bench_rss(args, q, members, gauge))):
            if name in only:
                t = time.time()
                fn()
                took.append(f"{name} {time.time() - t:.0f}")
        print("       seconds taken: " + ", ".join(took))
    finally:
        q.stop()
        q.log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
