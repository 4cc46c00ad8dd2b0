#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Matrix media and read receipts (benchmark 12, issue 15), run by `make bench` (bench/run.sh).

Starts its own qund (matrix=on, matrix_server_name=bench.test), sets everything up through /v1
and the Matrix API in Python, and leaves the timed part to bench/mx_media_load.c (one epoll loop
in C, keep-alive connections, so the client is not what is measured).  Each figure is a ratio
to a baseline measured on the same qund in the same run:

  12a. media throughput, per size (64 KiB, 1 MiB, 16 MiB by default), uploads and downloads
       separately: Matrix (POST /_matrix/media/v3/upload, GET /_matrix/client/v1/media/download)
       against the /v1 file routes (POST /v1/groups/{id}/files?name=, GET .../files/{sha256}),
       alternating sides in rounds, 4 requests in flight.  Uploads: every file is the same
       pseudo-random bytes but for its first 32 (so no upload finds its blob stored).
       Downloads: the very same files (blobs) on both sides: Matrix uploads attached to the
       group by an m.file message, fetched by their mxc id and by their digest.
  12b. /sync with receipts and unread counts: two sets of 100 groups built the same way (the
       reader, a poster and 8 others in each, 20 messages by the poster); in set A every member
       has a read receipt in every group, in set B nobody has one.  Initial sync of A's reader
       against B's, alternating; then a sync woken by one post to one of the reader's groups,
       A against B, alternating.  Both are measured once before any receipt is written (the
       two sets must then agree: the calibration) and once after.

usage: /usr/bin/python3 bench/mx_media.py [--qund build/qund] [--load build/bench/mx_media_load]
       [--post-load build/bench/mx_sync_load] [--sizes 65536,1048576,16777216] [--rounds 6]
       [--batch-seconds 0.75] [--inflight 4] [--groups 100] [--members 10]
       [--messages 20] [--reps 41] [--wake-rounds 50] [--only media,sync]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests

PASSWORD = "correct horse"
SERVER = "bench.test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Qund:
    """One qund on a free loopback port over a temporary data directory."""

    def __init__(self, binary, tmp, threads, argon2_kib):
        self.binary, self.tmp, self.threads, self.argon2_kib = binary, tmp, threads, argon2_kib
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log = open(os.path.join(tmp, "qund.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}", "--data", os.path.join(self.tmp, "data"),
             "--threads", str(self.threads), "--set", f"argon2_memlimit_kib={self.argon2_kib}", "--set",
             "argon2_opslimit=1", "--set", "log_requests=false", "--set", "matrix=on", "--set",
             f"matrix_server_name={SERVER}"],
            stdout=self.log, stderr=subprocess.STDOUT)
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


def register(url, name):
    r = requests.post(url + "/v1/users", json={"username": name, "password": PASSWORD}, timeout=60)
    assert r.status_code == 201, r.text
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": PASSWORD,
                                                 "device_id": "d", "platform": "android"}, timeout=60)
    assert r.status_code == 201, r.text
    u = dict(r.json(), username=name)
    r = requests.post(url + "/_matrix/client/v3/login", timeout=60, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": PASSWORD})
    assert r.status_code == 200, r.text
    u["mx"] = r.json()["access_token"]
    return u


def bearer(token):
    return {"Authorization": "Bearer " + token}


def room(gid):
    """The room id of a group, percent-encoded for a path as clients send it."""
    return quote(f"!{gid}:{SERVER}", safe="")


def load(args, *argv, timeout=900):
    out = subprocess.run([args.load, *map(str, argv)], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"mx_media_load {argv[0]}: {out.stderr.strip()[:600]}")
    return json.loads(out.stdout)


def human(size):
    return f"{size // 1048576} MiB" if size >= 1048576 else f"{size // 1024} KiB"


def verdict(ok):
    return "met" if ok else "MISSED"


# ---- 12a. media ----

def batch(args, size, warm):
    """Files per timed batch: about args.batch_seconds at the warm-up's mean rate, at least one
    per connection."""
    rate = sum(w["bytes"] for w in warm) / sum(w["seconds"] for w in warm)
    return max(args.inflight, int(rate * args.batch_seconds / size))


def bench_media(args, q, owner):
    url = q.url
    gid = requests.post(url + "/v1/groups", json={"name": "media"}, headers=bearer(owner["token"]),
                        timeout=30).json()["id"]
    probe = requests.post(url + "/_matrix/media/v3/upload?filename=probe.bin", data=b"probe",
                          headers=dict(bearer(owner["mx"]), **{"Content-Type": "application/octet-stream"}),
                          timeout=30)
    if probe.status_code != 200:
        print(f"  12a. SKIPPED: POST /_matrix/media/v3/upload answered {probe.status_code} "
              f"({probe.text[:120]}): this qund has no Matrix media")
        return
    sides = {
        "mx": (owner["mx"], "/_matrix/media/v3/upload?filename="),
        "v1": (owner["token"], f"/v1/groups/{gid}/files?name="),
    }
    answers = os.path.join(q.tmp, "answers")
    paths = os.path.join(q.tmp, "paths")
    for size in args.sizes:
        up = {"mx": [], "v1": []}
        mx_files = []
        # One untimed batch per side sets the batch size: about --batch-seconds at their mean rate.
        warm = [load(args, "upload", "127.0.0.1", q.port, sides[s][0], sides[s][1], size,
                     max(args.inflight, 8 * 1048576 // size), args.inflight, f"{s}{size}w", answers)
                for s in ("mx", "v1")]
        n_up = batch(args, size, warm)
        for r in range(args.rounds):
            for side in (("mx", "v1") if r % 2 == 0 else ("v1", "mx")):
                token, prefix = sides[side]
                res = load(args, "upload", "127.0.0.1", q.port, token, prefix, size, n_up, args.inflight,
                           f"{side}{size}r{r}", answers)
                up[side].append(res)
                if side == "mx" and not mx_files:
                    with open(answers) as f:
                        for line in f:
                            i, body = line.rstrip("\n").split("\t", 1)
                            mx_files.append((int(i), json.loads(body)["content_uri"]))
        # The same blobs on both sides: attach some of the Matrix uploads, find their digests.
        mx_paths, v1_paths = [], []
        for i, uri in sorted(mx_files)[:args.download_files]:
            server, media_id = uri[len("mxc://"):].split("/", 1)
            r = requests.put(f"{url}/_matrix/client/v3/rooms/{room(gid)}/send/m.room.message/att{size}-{i}",
                             json={"msgtype": "m.file", "body": f"bench-{size}-{i}.bin", "url": uri,
                                   "info": {"size": size, "mimetype": "application/octet-stream"}},
                             headers=bearer(owner["mx"]), timeout=60)
            assert r.status_code == 200, f"m.file message answered {r.status_code}: {r.text[:300]}"
            mx_path = f"/_matrix/client/v1/media/download/{server}/{media_id}"
            r = requests.get(url + mx_path, headers=bearer(owner["mx"]), timeout=120)
            assert r.status_code == 200 and len(r.content) == size, f"{mx_path}: {r.status_code}"
            sha = hashlib.sha256(r.content).hexdigest()
            r = requests.get(f"{url}/v1/groups/{gid}/files/{sha}", headers=bearer(owner["token"]), timeout=120)
            assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == sha, \
                f"the attached file {sha} is not served by /v1: {r.status_code}"
            mx_paths.append(mx_path)
            v1_paths.append(f"/v1/groups/{gid}/files/{sha}")
        down = {"mx": [], "v1": []}

        def fetch(side, n):
            with open(paths, "w") as f:
                f.write("\n".join(mx_paths if side == "mx" else v1_paths) + "\n")
            token = owner["mx"] if side == "mx" else owner["token"]
            return load(args, "download", "127.0.0.1", q.port, token, paths, size, n, args.inflight)

        n_down = batch(args, size, [fetch(s, max(args.inflight, 32 * 1048576 // size)) for s in ("mx", "v1")])
        for r in range(args.rounds):
            for side in (("v1", "mx") if r % 2 == 0 else ("mx", "v1")):
                down[side].append(fetch(side, n_down))
        for what, res, n in (("upload", up, n_up), ("download", down, n_down)):
            # MB/s of each side: all its bytes over all its seconds, over the rounds.
            rate = {s: sum(x["bytes"] for x in res[s]) / sum(x["seconds"] for x in res[s]) / 1e6 for s in res}
            ratio = rate["mx"] / rate["v1"]
            per = " ".join(f"{a['mb_per_s']:.0f}/{b['mb_per_s']:.0f}" for a, b in zip(res["mx"], res["v1"]))
            print(f"  12a. {what} {human(size):>7}: Matrix {rate['mx']:8.1f} MB/s / /v1 {rate['v1']:8.1f} MB/s "
                  f"= {ratio:.2f} (aim >= 0.9: {verdict(ratio >= 0.9)}); {args.rounds} rounds x {n} files per side, "
                  f"{args.inflight} in flight; per round mx/v1 MB/s {per}; last round's p50 per request "
                  f"{res['mx'][-1]['p50_ms']:.1f}/{res['v1'][-1]['p50_ms']:.1f} ms")
            print(f"media_{what}_{size} mx_mb_per_s={rate['mx']:.1f} v1_mb_per_s={rate['v1']:.1f} ratio={ratio:.3f}")
        sys.stdout.flush()


# ---- 12b. /sync with receipts and unread counts ----

def parked_gauge(url):
    text = requests.get(url + "/metrics", timeout=10).text
    for name in re.findall(r"^# TYPE (\w+) gauge$", text, re.M):
        if re.search(r"sync", name) and re.search(r"park|wait|poll|pending", name):
            return name
    return None


def initial_since(url, token):
    r = requests.get(url + "/_matrix/client/v3/sync", params={"timeout": "0"}, headers=bearer(token), timeout=120)
    assert r.status_code == 200, r.text[:300]
    return r.json()["next_batch"]


def build_set(args, q, reader, poster, others, name):
    """args.groups groups of the reader with the poster and members-2 of others, messages by the poster."""
    url = q.url
    with ThreadPoolExecutor(8) as ex:
        gids = list(ex.map(lambda i: requests.post(url + "/v1/groups", json={"name": f"{name} {i}"},
                                                   headers=bearer(reader["token"]), timeout=60).json()["id"],
                           range(args.groups)))
        adds = []
        for k, gid in enumerate(gids):
            chosen = [poster] + [others[(k + j) % len(others)] for j in range(args.members - 2)]
            adds += [(gid, u) for u in chosen]
        for r in ex.map(lambda a: requests.post(f"{url}/v1/groups/{a[0]}/members", json={"openid": a[1]["openid"]},
                                                headers=bearer(reader["token"]), timeout=60), adds):
            assert r.status_code == 201, r.text
    out = subprocess.run([args.post_load, "post", "127.0.0.1", str(q.port), poster["token"], "32",
                          str(args.messages), *gids], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    members = {gid: [reader, poster] + [others[(k + j) % len(others)] for j in range(args.members - 2)]
               for k, gid in enumerate(gids)}
    return gids, members


def receipts(q, gids, members):
    """Every member's m.read receipt in every group, each at a different recent message."""
    url = q.url
    todo = []
    for gid in gids:
        r = requests.get(f"{url}/_matrix/client/v3/rooms/{room(gid)}/messages",
                         params={"dir": "b", "limit": "50"}, headers=bearer(members[gid][0]["mx"]), timeout=60)
        assert r.status_code == 200, r.text[:300]
        events = [e["event_id"] for e in r.json()["chunk"] if e.get("type") == "m.room.message"]
        assert events, f"no messages in {gid}"
        for j, u in enumerate(members[gid]):
            # The reader (j = 0) has read half of the messages; the others are near the end.
            at = len(events) // 2 if j == 0 else min(j - 1, len(events) - 1)
            todo.append((gid, u, events[at]))

    def post(t):
        gid, u, ev = t
        return requests.post(f"{url}/_matrix/client/v3/rooms/{room(gid)}/receipt/m.read/{quote(ev, safe='')}",
                             json={}, headers=bearer(u["mx"]), timeout=60)

    t0 = time.time()
    with ThreadPoolExecutor(8) as ex:
        for r in ex.map(post, todo):
            assert r.status_code == 200, f"receipt answered {r.status_code}: {r.text[:300]}"
    return len(todo), time.time() - t0


def sync_pair(args, q, ra, rb, gids_a, gids_b, gauge):
    url = q.url
    g = load(args, "get", "127.0.0.1", q.port, args.reps, ra["mx"], "/_matrix/client/v3/sync?timeout=0",
             rb["mx"], "/_matrix/client/v3/sync?timeout=0")
    v = load(args, "get", "127.0.0.1", q.port, args.reps, ra["token"], f"/v1/groups?limit={args.groups}",
             rb["token"], f"/v1/groups?limit={args.groups}")
    files = {}
    for side, gids in (("a", gids_a), ("b", gids_b)):
        files[side] = os.path.join(q.tmp, f"gids_{side}")
        with open(files[side], "w") as f:
            f.write("\n".join(gids) + "\n")
    w = load(args, "wake", "127.0.0.1", q.port, args.poster_token, args.wake_rounds, gauge or "-", 300,
             ra["mx"], initial_since(url, ra["mx"]), files["a"], rb["mx"], initial_since(url, rb["mx"]), files["b"])
    return g, v, w


def bench_sync(args, q):
    url = q.url
    with ThreadPoolExecutor(8) as ex:
        ra, rb, poster, *others = ex.map(lambda n: register(url, n),
                                         ["reader_a", "reader_b", "poster"] + [f"member{i}" for i in range(16)])
    args.poster_token = poster["token"]
    t0 = time.time()
    gids_a, members_a = build_set(args, q, ra, poster, others, "set a")
    gids_b, _ = build_set(args, q, rb, poster, others, "set b")
    seeded = time.time() - t0
    gauge = parked_gauge(url)
    time.sleep(1)
    before = sync_pair(args, q, ra, rb, gids_a, gids_b, gauge)
    n, took = receipts(q, gids_a, members_a)
    time.sleep(1)
    after = sync_pair(args, q, ra, rb, gids_a, gids_b, gauge)
    # Unread counts as the readers see them now: A's must be lower (its reader read half).
    body = {}
    for side, r in (("A", ra), ("B", rb)):
        s = requests.get(url + "/_matrix/client/v3/sync", params={"timeout": "0"}, headers=bearer(r["mx"]),
                         timeout=120).json()
        rooms = s.get("rooms", {}).get("join", {})
        unread = sum(x.get("unread_notifications", {}).get("notification_count", 0) for x in rooms.values())
        rec = sum(1 for x in rooms.values() for e in x.get("ephemeral", {}).get("events", [])
                  if e.get("type") == "m.receipt")
        body[side] = (len(rooms), unread, rec)
    print(f"  12b. {args.groups} groups per reader, {args.members} members each, {args.messages} messages each by "
          f"another member; {n} receipts written to set A in {took:.1f} s (setup {seeded:.0f} s); now A: "
          f"{body['A'][0]} rooms, unread {body['A'][1]}, {body['A'][2]} rooms with m.receipt; B: {body['B'][0]} "
          f"rooms, unread {body['B'][1]}, {body['B'][2]} with m.receipt")
    (g0, v0, w0), (g1, v1, w1) = before, after
    rows = (("initial /sync (timeout=0, no since)", g0, g1, "median_ms"),
            ("incremental /sync woken by one post", w0, w1, "median_ms"),
            ("GET /v1/groups (context: unread)", v0, v1, "median_ms"))
    for label, b0, b1, key in rows:
        cal = b0["a_" + key] / b0["b_" + key]
        ratio = b1["a_" + key] / b1["b_" + key]
        size = f", answers {b1['a_bytes']:,} / {b1['b_bytes']:,} bytes" if "a_bytes" in b1 else \
            f", answers {b1['a_bytes_mean']:,.0f} / {b1['b_bytes_mean']:,.0f} bytes"
        print(f"  12b. {label}: with receipts {b1['a_' + key]:.2f} ms / without {b1['b_' + key]:.2f} ms = "
              f"{ratio:.2f} ({ratio / cal:.2f} of the calibration); before any receipt A/B {b0['a_' + key]:.2f}/"
              f"{b0['b_' + key]:.2f} ms = {cal:.2f} (calibration){size}; quartiles with {b1['a_q1_ms']:.2f}-{b1['a_q3_ms']:.2f}, without "
              f"{b1['b_q1_ms']:.2f}-{b1['b_q3_ms']:.2f} ms")
        tag = label.split()[0].strip("/").replace("GET", "v1_groups")
        print(f"sync_{tag} with_ms={b1['a_' + key]:.3f} without_ms={b1['b_' + key]:.3f} ratio={ratio:.3f} "
              f"calibration={cal:.3f}")
    print(f"       wake: {w1['a_extra']}/{w1['b_extra']} sync answers without the awaited post; parked check "
          + (f"by gauge {gauge}" if gauge else "by 300 ms of quiet (no parked-sync gauge)"))
    sys.stdout.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--qund", default=os.path.join(here, "../build/qund"))
    ap.add_argument("--load", default=os.path.join(here, "../build/bench/mx_media_load"))
    ap.add_argument("--post-load", default=os.path.join(here, "../build/bench/mx_sync_load"))
    ap.add_argument("--sizes", default="65536,1048576,16777216")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds per side, size and direction")
    ap.add_argument("--batch-seconds", type=float, default=0.75, help="length of one side's batch, about")
    ap.add_argument("--download-files", type=int, default=8, help="distinct files downloaded in turn")
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--members", type=int, default=10, help="members per group, the reader and poster included")
    ap.add_argument("--messages", type=int, default=20, help="messages per group")
    ap.add_argument("--reps", type=int, default=41, help="timed syncs per side")
    ap.add_argument("--wake-rounds", type=int, default=50, help="woken syncs per side")
    ap.add_argument("--threads", type=int, default=2, help="qund --threads")
    ap.add_argument("--argon2-kib", type=int, default=8, help="qund argon2_memlimit_kib (setup speed only)")
    ap.add_argument("--only", default="media,sync")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.load, args.post_load = os.path.abspath(args.load), os.path.abspath(args.post_load)
    only = set(args.only.split(","))
    tmp = tempfile.mkdtemp(prefix="qund-mxmedia-")
    q = Qund(os.path.abspath(args.qund), tmp, args.threads, args.argon2_kib)
    try:
        q.start()
        print(f"  Matrix media and receipts on one qund (--threads {args.threads}), {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        sys.stdout.flush()
        took = []
        if "media" in only:
            t = time.time()
            bench_media(args, q, register(q.url, "owner"))
            took.append(f"media {time.time() - t:.0f}")
        if "sync" in only:
            t = time.time()
            bench_sync(args, q)
            took.append(f"sync {time.time() - t:.0f}")
        print("       seconds taken: " + ", ".join(took) + f"; load average now {os.getloadavg()[0]:.1f}")
    finally:
        q.stop()
        q.log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
