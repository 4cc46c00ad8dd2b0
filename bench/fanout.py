#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fan-out of GET /v1/events (docs/events.md), not part of `make bench`.

For each N (default 100 and 500): start a qund (cooling_off=0, so a dissolution marks at
once), register an owner and N members, put them in one group, open one event stream per
member (one selector thread reads all sockets), then
  1. post M messages from P concurrent posters and report deliveries/s (N*M frames
     received / time from the first post to the last frame) and the latency of each
     message to its last recipient (p50, p99, max);
  2. request the group's dissolution and report the time from the request to every
     member's `dissolution.pending` (same commit) and `group.dissolved` (after the
     dissolution timer job, which polls every 250 ms);
  3. check in /metrics that each message was one stored row read at most once per loop.

usage: /usr/bin/python3 bench/fanout.py [--qund build/qund] [--n 100,500] [--messages 200] [--posters 8]
"""
import argparse
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(url, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), requests.get(url + "/metrics", timeout=10).text, re.M)
    return int(m.group(1))


class Readers:
    """All streams on one selector thread; records when each (event, key) reached each stream."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.arrivals = {}  # (event, key) -> list of arrival times
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)

    def open(self, url, token):
        host, port = url.split("//")[1].split(":")
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall((f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        s.setblocking(False)
        # Chunk framing is left in the text: frames are found by their "event:" and "data:" lines.
        self.sel.register(s, selectors.EVENT_READ, {"buf": head.split(b"\r\n\r\n", 1)[1].decode()})

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                now = time.time()
                st = key.data
                st["buf"] += data.decode()
                while "\n\n" in st["buf"]:
                    frame, st["buf"] = st["buf"].split("\n\n", 1)
                    ev = dict(l.split(": ", 1) for l in frame.splitlines() if l.startswith(("event: ", "data: ")))
                    if "event" not in ev or "data" not in ev:
                        continue
                    d = json.loads(ev["data"])
                    k = (ev["event"], d.get("text") or d.get("group"))
                    with self.lock:
                        self.arrivals.setdefault(k, []).append(now)

    def count(self, event, key):
        with self.lock:
            return len(self.arrivals.get((event, key), []))

    def wait(self, event, key, n, timeout=60):
        deadline = time.time() + timeout
        while self.count(event, key) < n:
            if time.time() > deadline:
                raise TimeoutError(f"{event} {key}: {self.count(event, key)} of {n}")
            time.sleep(0.005)
        with self.lock:
            return max(self.arrivals[(event, key)])

    def close(self):
        self.stop = True
        self.t.join(2)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def register(url, name):
    r = requests.post(url + "/v1/users", json={"username": name, "password": "correct horse"}, timeout=60)
    assert r.status_code == 201, r.text
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": "correct horse",
                                                 "device_id": "d", "platform": "cli"}, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def run(qund, n, messages, posters, threads):
    tmp = tempfile.mkdtemp(prefix="qund-fanout-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(tmp, "qund.log"), "wb")
    proc = subprocess.Popen([qund, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(tmp, "data"),
                             "--threads", str(threads), "--set", "argon2_memlimit_kib=8192", "--set", "argon2_opslimit=1",
                             "--set", "log_requests=false", "--set", "cooling_off=0", "--set", "notice=0"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/readyz", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        owner = register(url, "owner")
        auth = {"Authorization": "Bearer " + owner["token"]}
        with ThreadPoolExecutor(16) as ex:
            members = list(ex.map(lambda i: register(url, f"member{i}"), range(n)))
        gid = requests.post(url + "/v1/groups", json={"name": "big"}, headers=auth, timeout=30).json()["id"]
        with ThreadPoolExecutor(8) as ex:
            for r in ex.map(lambda m: requests.post(f"{url}/v1/groups/{gid}/members", json={"openid": m["openid"]},
                                                   headers=auth, timeout=30), members):
                assert r.status_code == 201, r.text
        readers = Readers()
        for m in members:
            readers.open(url, m["token"])
        readers.t.start()
        emitted0, fetched0 = metric(url, "qun_events_emitted_total"), metric(url, "qun_events_fetched_total")

        # 1. Messages from concurrent posters.
        sent = {}
        sess = [requests.Session() for _ in range(posters)]

        def post(i):
            t = time.time()
            r = sess[i % posters].post(f"{url}/v1/groups/{gid}/messages", json={"text": f"msg {i}"}, headers=auth,
                                       timeout=30)
            assert r.status_code == 201, r.text
            sent[f"msg {i}"] = t

        t0 = time.time()
        with ThreadPoolExecutor(posters) as ex:
            list(ex.map(post, range(messages)))
        last = max(readers.wait("message.created", k, n) for k in sent)
        elapsed = last - t0
        lat = [readers.wait("message.created", k, n) - t for k, t in sent.items()]
        emitted = metric(url, "qun_events_emitted_total") - emitted0
        fetched = metric(url, "qun_events_fetched_total") - fetched0

        # 2. Dissolution: request -> every member's pending, then dissolved.
        prev = requests.post(f"{url}/v1/groups/{gid}/dissolution/preview", json={"messages": "keep"}, headers=auth,
                             timeout=30).json()
        t1 = time.time()
        r = requests.post(f"{url}/v1/groups/{gid}/dissolution", json={"messages": "keep",
                          "confirmation_token": prev["confirmation_token"]}, headers=auth, timeout=30)
        assert r.status_code == 202, r.text
        pending = readers.wait("dissolution.pending", gid, n) - t1
        dissolved = readers.wait("group.dissolved", gid, n) - t1
        readers.close()
        print(f"N={n} members, {threads} loops, {messages} messages from {posters} posters:")
        print(f"  deliveries: {n * messages} in {elapsed:.2f}s = {n * messages / elapsed:,.0f}/s "
              f"({messages / elapsed:,.0f} messages/s)")
        print(f"  message -> last recipient: p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms, "
              f"max {max(lat) * 1000:.1f} ms")
        print(f"  rows appended {emitted} (messages {messages}); rows read by loops {fetched} (<= {threads} per row)")
        print(f"  dissolution request -> every member's dissolution.pending {pending * 1000:.1f} ms, "
              f"group.dissolved {dissolved * 1000:.1f} ms")
        sys.stdout.flush()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qund", default=os.path.join(os.path.dirname(__file__), "../build/qund"))
    ap.add_argument("--n", default="100,500")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--posters", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    for n in (int(x) for x in a.n.split(",")):
        run(a.qund, n, a.messages, a.posters, a.threads)


if __name__ == "__main__":
    main()
