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


def thread_stats(pid):
    """(name, the fields of stat after the command) of each of pid's threads."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        yield name, fields


def threads(pid):
    """{thread name: {scheduling policy}} from /proc (field 41 of stat is the policy)."""
    out = {}
    for name, fields in thread_stats(pid):
        out.setdefault(name, set()).add(int(fields[38]))
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


def nice_of(pid, name):
    """{nice} of the threads called name (field 19 of stat)."""
    return {int(fields[16]) for n, fields in thread_stats(pid) if n == name}


@pytest.mark.alone  # its busy loops would slow every test beside it (pytest.ini)
@pytest.mark.skipif(not may_leave_idle(), reason="background work yields only where threads may leave SCHED_IDLE")
def test_background_work_beside_busy_processes_is_late_not_starved():
    """Other processes keep every core busy: SCHED_IDLE alone would leave the purges
    nothing (purges of 200 messages took 30 to 40 s beside four busy loops on two cores
    instead of 1.2 s).  qund sees its scheduler owe progress for half a second and runs
    its background work at nice 10 until it catches up: the purges finish, the gauge
    counts the hurry, and with nothing left the job thread is back at SCHED_IDLE."""
    srv = Server(extra=["--set", "background_priority=idle", "--set", "cooling_off=0",
                        "--set", "purge_grace=0"]).start()
    hogs = []
    try:
        groups = []
        for i in range(6):  # one owner each: one owner dissolving six groups at once is a risk to review
            owner = register(srv.url)
            gid = expect(owner.post("/v1/groups", json={"name": f"g{i}"}), 201)["id"]
            for k in range(200):
                expect(owner.post(f"/v1/groups/{gid}/messages", json={"text": f"message {k}"}), 201)
            groups.append((owner, gid))
        hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(4 * (os.cpu_count() or 1))]
        for owner, gid in groups:
            p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", json={"messages": "delete"}), 200)
            expect(owner.post(f"/v1/groups/{gid}/dissolution", json={
                "messages": "delete", "typed_name": p["name"], "confirmation_token": p["confirmation_token"]}), 202)
        left, seen_gentle = set(groups), False
        deadline = time.time() + 60
        while left and time.time() < deadline:
            seen_gentle |= nice_of(srv.proc.pid, "qun-jobs") == {10}
            for owner, gid in list(left):
                if expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)["state"] == "purged":
                    left.discard((owner, gid))
            time.sleep(0.2)
        assert not left, f"{len(left)} of 6 purges unfinished after 60 s beside busy processes"
        assert metric(srv.url, "qun_background_hurries_total") >= 1
        assert seen_gentle
        assert srv.read_log().count("for a CPU at SCHED_IDLE: it runs at nice 10 while it is late") == 1
        for h in hogs:
            h.kill()
        deadline = time.time() + 10  # nothing owed: back to SCHED_IDLE at nice 0
        while (threads(srv.proc.pid)["qun-jobs"], nice_of(srv.proc.pid, "qun-jobs")) != ({SCHED_IDLE}, {0}):
            assert time.time() < deadline, (threads(srv.proc.pid), nice_of(srv.proc.pid, "qun-jobs"))
            time.sleep(0.1)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        srv.stop()
