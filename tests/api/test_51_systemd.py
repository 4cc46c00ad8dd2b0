# SPDX-License-Identifier: MIT
"""qund under a service manager (debian/qund.service, docs/package.md): READY=1 on
$NOTIFY_SOCKET once it listens, WATCHDOG=1 at half of $WATCHDOG_USEC, STOPPING=1 on TERM,
and SIGHUP reloads the policy packs whole, keeping the running ones when a pack is broken."""
import json
import os
import shutil
import signal
import socket
import tempfile
import time

from conftest import Server, expect, register, stop_clean

REPO = os.path.join(os.path.dirname(__file__), "../..")


def messages(sock, until, seconds):
    """Datagrams received on sock until one contains `until` (or seconds pass)."""
    got, deadline = [], time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if any(until in m for m in got):
            break
    return got


def test_ready_watchdog_and_stopping_reach_the_notify_socket():
    tmp = tempfile.mkdtemp(prefix="qun-notify-")
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        s = Server(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        s.start()  # ready on /readyz
        got = messages(sock, "READY=1", 5)
        assert any("READY=1" in m for m in got), got
        register(s.url)  # it serves after telling
        pings = [m for m in messages(sock, "never", 1.0) if "WATCHDOG=1" in m]
        assert 2 <= len(pings) <= 8, pings  # every 200 ms from the first loop
        s.proc.send_signal(signal.SIGHUP)  # a reload says so, then ready again
        got = messages(sock, "READY=1", 5)
        assert any("RELOADING=1" in m for m in got) and any("READY=1" in m for m in got), got
        s.proc.send_signal(signal.SIGTERM)
        got = messages(sock, "STOPPING=1", 5)
        assert any("STOPPING=1" in m for m in got), got
        # An impatient operator (or a script) signals again while qund settles: each
        # of these must leave the stop under way to end with exit 0, not kill it.
        deadline = time.time() + 10
        while s.proc.poll() is None and time.time() < deadline:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                try:
                    s.proc.send_signal(sig)
                except ProcessLookupError:
                    break
            time.sleep(0.002)
        stop_clean(s)
    finally:
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def cooling_off(u):
    g = expect(u.post("/v1/groups", {"name": "x", "kind": "cross_border", "regions": ["eu", "sg"]}), 201)["id"]
    p = expect(u.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
    return p["timing"]["policy"]["cooling_off_seconds"]


def test_sighup_reloads_policies_and_keeps_them_when_a_pack_breaks():
    pol = tempfile.mkdtemp(prefix="qun-policies-")
    for f in ("kinds.json", "regions.json", "verification.json"):
        shutil.copy(os.path.join(REPO, "policies", f), pol)
    s = Server(extra=["--set", f"policies={pol}"]).start()
    try:
        u = register(s.url)
        assert cooling_off(u) == {"value": 259200, "source": "region:eu"}
        regions = os.path.join(pol, "regions.json")
        with open(regions) as f:
            doc = json.load(f)
        doc["regions"]["eu"]["cooling_off_seconds"] = 345600
        with open(regions, "w") as f:
            json.dump(doc, f)
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "reload: policies from" not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)
        assert cooling_off(u) == {"value": 345600, "source": "region:eu"}
        # A broken pack: the running policies stay and the log says why.
        with open(regions, "w") as f:
            f.write('{"version": 1, "regions": {"eu": {"cooling_off_seconds": "soon"}}}')
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "not reloaded" not in s.read_log() and time.time() < deadline:
            time.sleep(0.05)
        log = s.read_log()
        line = next(l for l in log.splitlines() if "not reloaded" in l)
        assert "regions.json" in line and "the running ones stay" in line, line
        assert cooling_off(u) == {"value": 345600, "source": "region:eu"}
    finally:
        stop_clean(s)
        shutil.rmtree(pol, ignore_errors=True)
