#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark 15, run by `make bench` (bench/run.sh): others' reads while people sign in
(15a) and share photos (15b).

One qund with its default password cost (argon2id, 64 MiB and two passes: about 100 ms of
CPU a password), two loops.  wrk reads `GET /v1/groups/{id}` with a bearer token on 16
connections for S seconds (report.lua), in alternating rounds: alone; while two clients
sign in at R sign-ins a second in all (each a new device, as phones do in the morning);
while two clients upload photos of P MiB at R a second in all.  Each figure is the p99 of
the reads beside that work against the p99 alone, same qund, same run, summed over the
rounds; the sign-ins' and uploads' own p50 and max are reported too.

Until 2026-12-07 the loops checked passwords and stored uploads' bytes themselves: 15a was
71.7 (p99 176 ms against 2.45 ms) and 15b 16.2 (40 ms); 3.75 and 3.80 since
(src/http/slow.c).

usage: /usr/bin/python3 bench/signins.py [--qund build/qund] [--seconds 6] [--rounds 3] [--rate 4]
       [--photo-mib 4]
"""
import argparse
import os
import subprocess
import sys
import threading
import time

import requests

import throwaway

HERE = os.path.dirname(os.path.abspath(__file__))


def wrk(url, token, seconds):
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", os.path.join(HERE, "report.lua"),
                          "-H", "Authorization: Bearer " + token, url], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    line = [x for x in out.splitlines() if x.startswith("WRK ")][0]
    f = dict(kv.split("=") for kv in line.split()[1:])
    if int(f["non2xx"]) or int(f["sockerr"]):
        sys.exit(f"signins: wrk saw errors: {line}")
    return int(f["requests"]), int(f["p99_us"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qund", default=os.path.join(HERE, "../build/qund"))
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=4.0)
    ap.add_argument("--photo-mib", type=int, default=4)
    a = ap.parse_args()
    with throwaway.qund(a.qund, ["--threads", "2", "--set", "log_requests=false"], "signins") as (url, _):
        r = requests.post(url + "/v1/users", json={"username": "reader", "password": "correct horse"}, timeout=30)
        assert r.status_code == 201, r.text
        token = requests.post(url + "/v1/sessions", json={"username": "reader", "password": "correct horse",
                                                          "device_id": "bench", "platform": "cli"}, timeout=30).json()["token"]
        gid = requests.post(url + "/v1/groups", json={"name": "bench"}, headers={"Authorization": "Bearer " + token},
                            timeout=30).json()["id"]
        auth = {"Authorization": "Bearer " + token}
        target = f"{url}/v1/groups/{gid}"
        wrk(target, token, 1)  # warm-up
        photo = os.urandom(a.photo_mib << 20)

        def sign_in(s, k):
            return s.post(url + "/v1/sessions", json={"username": "reader", "password": "correct horse",
                                                      "device_id": os.urandom(8).hex(), "platform": "android"},
                          timeout=60), 201

        def upload(s, k):  # each photo other bytes: a new file, stored anew
            body = os.urandom(16) + photo[16:]
            return s.post(f"{target}/files?name=photo{k}.jpg", data=body,
                          headers=dict(auth, **{"Content-Type": "image/jpeg"}), timeout=60), 201

        def beside(call, took, stop):
            s, k = requests.Session(), 0
            period = 2 / a.rate  # two clients
            while not stop.is_set():
                t, k = time.monotonic(), k + 1
                r, want = call(s, k)
                if r.status_code != want:
                    sys.exit(f"signins: answered {r.status_code}: {r.text[:200]}")
                took.append(time.monotonic() - t)
                stop.wait(max(0.0, period - (time.monotonic() - t)))

        kinds = [("15a", "sign-ins", sign_in), ("15b", f"{a.photo_mib} MiB photo uploads", upload)]
        alone_p99 = alone_n = 0
        busy = {name: [0, 0, []] for _, name, _ in kinds}  # p99 sum, reads, the work's own times
        for k in range(a.rounds):
            n, p99 = wrk(target, token, a.seconds)
            alone_n, alone_p99 = alone_n + n, alone_p99 + p99
            line = f"  round {k + 1}: GET p99 alone {p99 / 1000:.2f} ms"
            for _, name, call in kinds:
                stop = threading.Event()
                threads = [threading.Thread(target=beside, args=(call, busy[name][2], stop)) for _ in range(2)]
                for t in threads:
                    t.start()
                time.sleep(0.3)
                n2, p99b = wrk(target, token, a.seconds)
                stop.set()
                for t in threads:
                    t.join()
                busy[name][0] += p99b
                busy[name][1] += n2
                line += f", with {name} {p99b / 1000:.2f} ms"
            print(line)
        secs = a.rounds * a.seconds
        for tag, name, _ in kinds:
            p99_sum, reads, took = busy[name]
            took.sort()
            ratio = p99_sum / alone_p99
            print(f"  {tag}. {name}: {len(took)} at about {a.rate:g}/s, p50 {took[len(took) // 2] * 1000:.0f} ms, "
                  f"max {took[-1] * 1000:.0f} ms")
            print(f"  {tag}. GET /v1/groups/{{id}} p99 with {name} / alone: {p99_sum / a.rounds / 1000:.2f} / "
                  f"{alone_p99 / a.rounds / 1000:.2f} ms = {ratio:.2f} (aim <= 5: {'met' if ratio <= 5 else 'MISSED'}); "
                  f"reads/s {reads / secs:,.0f} / {alone_n / secs:,.0f}")


if __name__ == "__main__":
    main()
