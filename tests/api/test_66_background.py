# SPDX-License-Identifier: MIT
"""Background work gives way on the CPU: the job thread runs at SCHED_IDLE, and the
writer goes there only for batches of background work (a purge's steps), so the HTTP
loops answer first when the cores are busy (docs/architecture.md, "Background work").
What an operator sees: the threads' names and classes in `ps -L -o comm,cls`, the
`qun_background_yields` gauge, and `background_priority=normal` to turn it off."""
import os
import resource
import shutil
import subprocess
import time

import pytest
import requests


from conftest import QUND, Server, expect, free_port, metric, register

SCHED_OTHER, SCHED_IDLE = 0, 5


def may_leave_idle():
    """Whether this process may return a thread from SCHED_IDLE (the kernel's rule)."""
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20


def threads(pid):
    """{thread name: {scheduling policy}} from /proc (field 41 of stat is the policy)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            policy = int(open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[38])
        except FileNotFoundError:
            continue
        out.setdefault(name, set()).add(policy)
    return out


def test_the_job_thread_gives_way_and_the_loops_do_not():
    srv = Server(extra=["--set", "background_priority=idle"]).start()  # the default, in every lane
    try:
        owner = register(srv.url)
        gid = expect(owner.post("/v1/groups", json={"name": "g"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{gid}/messages", json={"text": "hello"}), 201)
        t = threads(srv.proc.pid)
        assert {"qun-writer", "qun-jobs", "qun-loop"} <= set(t), t
        yields = may_leave_idle()
        assert t["qun-jobs"] == {SCHED_IDLE if yields else SCHED_OTHER}
        assert t["qun-loop"] == {SCHED_OTHER}
        assert metric(srv.url, "qun_background_yields") == int(yields)
        # The writer answers a foreground write at normal priority whatever it ran before.
        expect(owner.post(f"/v1/groups/{gid}/messages", json={"text": "again"}), 201)
    finally:
        srv.stop()


def test_background_priority_normal_keeps_every_thread_normal():
    srv = Server(extra=["--set", "background_priority=normal"]).start()
    try:
        t = threads(srv.proc.pid)
        assert all(p == {SCHED_OTHER} for p in t.values()), t
        assert metric(srv.url, "qun_background_yields") == 0
    finally:
        srv.stop()


def test_an_unknown_background_priority_stops_qund(tmp_path):
    p = subprocess.run([QUND, "--listen", "127.0.0.1:1", "--data", str(tmp_path / "d"),
                        "--set", "background_priority=lowest"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "background_priority" in p.stderr and "idle or normal" in p.stderr, p.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("prlimit"),
                    reason="needs root to take CAP_SYS_NICE away")
def test_without_the_right_to_come_back_nothing_goes_idle(tmp_path):
    """Without CAP_SYS_NICE and with RLIMIT_NICE 0, a thread could go to SCHED_IDLE but
    never come back: qund's trial finds that out, keeps every thread normal, says so once
    in the log, and the gauge reads 0."""
    port = free_port()
    log = tmp_path / "qund.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["setpriv", "--bounding-set=-sys_nice", "prlimit", "--nice=0", QUND,
                                 "--listen", f"127.0.0.1:{port}", "--data", str(tmp_path / "d"),
                                 "--set", "argon2_memlimit_kib=64"], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 15
        while True:
            try:
                if requests.get(url + "/readyz", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.05)
        assert metric(url, "qun_background_yields") == 0
        t = threads(proc.pid)
        assert "qun-jobs" in t and all(p == {SCHED_OTHER} for p in t.values()), t
        text = log.read_text()
        assert text.count("runs at normal CPU priority") == 1, text
    finally:
        proc.terminate()
        proc.wait(10)
